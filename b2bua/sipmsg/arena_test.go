package sipmsg

import (
	"net/netip"
	"os"
	"testing"

	"github.com/ghettovoice/gosip/sip"
)

// TestSetTag: a tag set on a header without parameters, on an empty list
// and on a list with a tag, and set again.
func TestSetTag(t *testing.T) {
	for _, params := range []sip.Params{nil, NewParams(), NewParams().Add("tag", sip.String{Str: "old"}), NewParams().Add("x", nil)} {
		to := &sip.ToHeader{Address: &sip.SipUri{FHost: "h"}, Params: params}
		SetTag(to, "a1")
		if ToTag(to2msg(to)) != "a1" {
			t.Fatalf("%v: tag %q", params, to.Params.String())
		}
		before := to.Params.Clone()
		SetTag(to, "b2")
		to.Params.Add("y", sip.String{Str: "z"})
		if v, _ := to.Params.Get("tag"); v.String() != "b2" {
			t.Fatalf("set again: %q", to.Params.ToString(';'))
		}
		if v, _ := before.Get("tag"); v.String() != "a1" {
			t.Fatalf("copy changed: %q", before.ToString(';'))
		}
	}
}

func to2msg(to *sip.ToHeader) sip.Message {
	res := EmptyResponse("SIP/2.0", 200, "OK")
	res.AppendHeader(to)
	return res
}

// TestParseAllocations bounds what parsing a browser's INVITE allocates:
// 26 allocations before the arena (parameter lists, one-value headers in
// bulk, address headers with their URI), 18 after; and
// finding or adding a header of an uncommon name allocates nothing (it
// was a strings.ToLower each time).
func TestParseAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	data, err := os.ReadFile("testdata/torture/valid_invite.sip")
	if err != nil {
		t.Fatal(err)
	}
	p := NewParser(Limits{})
	if a := testing.AllocsPerRun(50, func() { _, _ = p.Parse(data) }); a > 18 {
		t.Errorf("Parse: %.0f allocations, want at most 18", a)
	}
	msg, _ := p.Parse(data)
	h := Generic("X-Uncommon-Name", "v")
	if a := testing.AllocsPerRun(50, func() {
		msg.AppendHeader(h)
		msg.RemoveHeader("X-UNCOMMON-name")
	}); a != 0 {
		t.Errorf("adding and removing an uncommon name: %.0f allocations, want 0", a)
	}
	msg.AppendHeader(h)
	if a := testing.AllocsPerRun(50, func() {
		if len(msg.GetHeaders("x-uncommon-NAME")) != 1 {
			t.Fatal("header not found")
		}
	}); a != 0 {
		t.Errorf("finding an uncommon name: %.0f allocations, want 0", a)
	}
}

// TestStampVia: received and rport set, replaced, and in three allocations.
func TestStampVia(t *testing.T) {
	p := NewParams().Add("branch", sip.String{Str: "z9hG4bK1"}).Add("rport", nil)
	StampVia(p, netip.MustParseAddr("192.0.2.7"), true, 5070, true)
	if got := p.ToString(';'); got != "branch=z9hG4bK1;rport=5070;received=192.0.2.7" {
		t.Fatalf("stamped: %q", got)
	}
	StampVia(p, netip.MustParseAddr("2001:db8::1"), true, 0, false)
	if got := p.ToString(';'); got != "branch=z9hG4bK1;rport=5070;received=2001:db8::1" {
		t.Fatalf("stamped again: %q", got)
	}
	if raceEnabled {
		return
	}
	if a := testing.AllocsPerRun(50, func() {
		StampVia(p, netip.MustParseAddr("192.0.2.7"), true, 5070, true)
	}); a > 3 {
		t.Errorf("StampVia: %.0f allocations, want 3 (the text, a box each)", a)
	}
}
