package sipmsg

import (
	"runtime"
	"strconv"
	"testing"

	"github.com/ghettovoice/gosip/sip"
)

// TestBoxes holds the interfaces boxes and withTag make to the usual
// ones: the dynamic type is sip.String (type switches, gosip's Equals),
// and each keeps its own value while more are made and the collector
// runs.
func TestBoxes(t *testing.T) {
	ar := newArena("=")
	bx := &ar // two boxes, then more arrays
	var got []sip.MaybeString
	for i := range 50 {
		got = append(got, bx.box("v"+strconv.Itoa(i)))
	}
	runtime.GC()
	for i, v := range got {
		want := "v" + strconv.Itoa(i)
		s, ok := v.(sip.String)
		if !ok || s.Str != want || v.String() != want {
			t.Fatalf("box %d: %#v, want sip.String %q", i, v, want)
		}
		if !v.Equals(sip.String{Str: want}) || !(sip.String{Str: want}).Equals(v) {
			t.Fatalf("box %d: not Equal to sip.String %q", i, want)
		}
		if v != sip.MaybeString(sip.String{Str: want}) {
			t.Fatalf("box %d: interface comparison differs", i)
		}
	}
	if v := (*arena)(nil).box("x"); v != sip.MaybeString(sip.String{Str: "x"}) {
		t.Fatalf("nil boxes: %#v", v)
	}
}

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
