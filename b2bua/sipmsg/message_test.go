package sipmsg

import (
	"math/rand/v2"
	"os"
	"slices"
	"testing"

	"github.com/ghettovoice/gosip/sip"
)

// TestMessageLikeGosip applies the same random sequences of header
// operations to one of gosip's messages and to one of ours, and compares
// what every getter returns after each step: the SBC's code was written
// against gosip's behaviour and must not notice the swap.
func TestMessageLikeGosip(t *testing.T) {
	names := []string{"Via", "via", "VIA", "Route", "Contact", "X-Extra", "x-extra", "Content-Length", "CSeq", "From", "To", "Call-ID"}
	mk := func(r *rand.Rand, name string) sip.Header {
		switch name {
		case "Via", "via", "VIA":
			port := sip.Port(5060 + r.IntN(3))
			return sip.ViaHeader{&sip.ViaHop{ProtocolName: "SIP", ProtocolVersion: "2.0", Transport: "UDP", Host: "10.0.0.1", Port: &port,
				Params: sip.NewParams().Add("branch", sip.String{Str: NewToken(4)})}}
		case "Route":
			return &sip.RouteHeader{Addresses: []sip.Uri{&sip.SipUri{FHost: "proxy.example", FUriParams: sip.NewParams().Add("lr", nil)}}}
		case "Contact":
			return &sip.ContactHeader{Address: &sip.SipUri{FUser: sip.String{Str: "a"}, FHost: "h"}, Params: sip.NewParams()}
		case "Content-Length":
			cl := sip.ContentLength(r.IntN(100))
			return &cl
		case "CSeq":
			return &sip.CSeq{SeqNo: uint32(r.IntN(9)), MethodName: sip.INVITE}
		case "From":
			return &sip.FromHeader{Address: &sip.SipUri{FUser: sip.String{Str: "f"}, FHost: "h"}, Params: sip.NewParams().Add("tag", sip.String{Str: "t"})}
		case "To":
			return &sip.ToHeader{Address: &sip.SipUri{FUser: sip.String{Str: "t"}, FHost: "h"}, Params: sip.NewParams()}
		case "Call-ID":
			c := sip.CallID(NewToken(4))
			return &c
		}
		return &sip.GenericHeader{HeaderName: name, Contents: NewToken(3)}
	}
	for seed := range uint64(300) {
		r := rand.New(rand.NewPCG(seed, 7))
		ruri := &sip.SipUri{FUser: sip.String{Str: "bob"}, FHost: "example.com"}
		var theirs, ours sip.Message
		if seed%2 == 0 {
			theirs = sip.NewRequest("x", sip.INVITE, ruri, "SIP/2.0", nil, "", nil)
			ours = EmptyRequest(sip.INVITE, ruri, "SIP/2.0")
		} else {
			theirs = sip.NewResponse("x", "SIP/2.0", 180, "Ringing", nil, "", nil)
			ours = EmptyResponse("SIP/2.0", 180, "Ringing")
		}
		for step := range 25 {
			name := names[r.IntN(len(names))]
			h := mk(r, name)
			// What GetHeaders returned before a change stays as it was
			// (gosip's slices are never changed in place).
			held := names[r.IntN(len(names))]
			heldOurs, heldTheirs := ours.GetHeaders(held), theirs.GetHeaders(held)
			heldWas := headerStrings(heldOurs)
			var op string
			switch r.IntN(7) {
			case 0, 1, 2:
				op = "append " + name
				theirs.AppendHeader(h)
				ours.AppendHeader(h)
			case 3:
				op = "prepend " + name
				theirs.PrependHeader(h)
				ours.PrependHeader(h)
			case 4:
				after := names[r.IntN(len(names))]
				op = "prepend " + name + " after " + after
				theirs.PrependHeaderAfter(h, after)
				ours.PrependHeaderAfter(h, after)
			case 5:
				op = "remove " + name
				theirs.RemoveHeader(name)
				ours.RemoveHeader(name)
			case 6:
				op = "replace " + name
				theirs.ReplaceHeaders(name, []sip.Header{h})
				ours.ReplaceHeaders(name, []sip.Header{h})
			}
			if r.IntN(6) == 0 {
				body := NewToken(r.IntN(8) + 1)
				op += ", body"
				theirs.SetBody(body, true)
				ours.SetBody(body, true)
			}
			same(t, seed, step, op, theirs, ours, names)
			if got := headerStrings(heldOurs); !slices.Equal(got, heldWas) || !slices.Equal(got, headerStrings(heldTheirs)) {
				t.Fatalf("seed %d step %d (%s): GetHeaders(%s) taken before changed under its holder: %q, was %q (gosip's %q)",
					seed, step, op, held, got, heldWas, headerStrings(heldTheirs))
			}
		}
		// A clone is the same message and independent of the original.
		c := ours.Clone()
		same(t, seed, -1, "clone", theirs, c, names)
		c.AppendHeader(mk(r, "X-Extra"))
		same(t, seed, -2, "clone changed", theirs, ours, names)
	}
}

func same(t *testing.T, seed uint64, step int, op string, theirs, ours sip.Message, names []string) {
	t.Helper()
	fail := func(what string, got, want any) {
		t.Fatalf("seed %d step %d (%s): %s: ours %v, gosip's %v", seed, step, op, what, got, want)
	}
	if got, want := Render(ours), theirs.String(); string(got) != want {
		fail("rendered", string(got), want)
	}
	if got, want := ours.String(), theirs.String(); got != want {
		fail("String", got, want)
	}
	if got, want := len(ours.Headers()), len(theirs.Headers()); got != want {
		fail("len(Headers)", got, want)
	}
	for _, n := range names {
		g, w := ours.GetHeaders(n), theirs.GetHeaders(n)
		if !slices.EqualFunc(g, w, func(a, b sip.Header) bool { return a.String() == b.String() }) {
			fail("GetHeaders("+n+")", g, w)
		}
	}
	if g, w := ours.Body(), theirs.Body(); g != w {
		fail("Body", g, w)
	}
	str := func(h sip.Header, ok bool) string {
		if !ok || h == nil {
			return "<none>"
		}
		return h.String()
	}
	gv, okv := ours.Via()
	wv, okw := theirs.Via()
	if str(gv, okv) != str(wv, okw) {
		fail("Via", str(gv, okv), str(wv, okw))
	}
	if g, w := ours.Transport(), theirs.Transport(); g != w {
		fail("Transport", g, w)
	}
	if g, w := ours.Source(), theirs.Source(); g != w {
		fail("Source", g, w)
	}
	if g, w := ours.Destination(), theirs.Destination(); g != w {
		fail("Destination", g, w)
	}
	gc, ok1 := ours.CSeq()
	wc, ok2 := theirs.CSeq()
	if ok1 != ok2 || (ok1 && gc.String() != wc.String()) {
		fail("CSeq", gc, wc)
	}
	gl, ok1 := ours.ContentLength()
	wl, ok2 := theirs.ContentLength()
	if ok1 != ok2 || (ok1 && *gl != *wl) {
		fail("ContentLength", gl, wl)
	}
}

// BenchmarkBuildResponse builds the 200 a UAS sends for an INVITE, the
// way the transaction layer does, with gosip's message and with ours:
//
//	go test -run '^$' -bench BuildResponse -benchmem ./b2bua/sipmsg/
func BenchmarkBuildResponse(b *testing.B) {
	data, err := os.ReadFile("testdata/torture/valid_invite.sip")
	if err != nil {
		b.Fatal(err)
	}
	inv, err := NewParser(Limits{}).Parse(data)
	if err != nil {
		b.Fatal(err)
	}
	req := inv.(sip.Request)
	build := func(res sip.Response) {
		for _, n := range []string{"Via", "From", "To", "Call-ID", "CSeq"} {
			for _, h := range req.GetHeaders(n) {
				res.AppendHeader(h.Clone())
			}
		}
		res.SetBody("", true)
		_ = Render(res)
	}
	b.Run("gosip", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			build(sip.NewResponse("m1", "SIP/2.0", 200, "OK", nil, "", nil))
		}
	})
	b.Run("sipmsg", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			build(EmptyResponse("SIP/2.0", 200, "OK"))
		}
	})
}

func headerStrings(hs []sip.Header) []string {
	out := make([]string, len(hs))
	for i, h := range hs {
		if h == nil {
			out[i] = "<nil>"
			continue
		}
		out[i] = h.String()
	}
	return out
}
