package sipmsg

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/ghettovoice/gosip/sip"
)

// TestCloneHeaderIsClone: CloneHeader gives what each header's own Clone
// gives (deeply equal, rendered alike) for every header of the torture
// corpora and of the messages the B2BUA builds, and the copy shares
// nothing: changing its parameters, URI or port leaves the original as
// it was.
func TestCloneHeaderIsClone(t *testing.T) {
	var files []string
	for _, pattern := range []string{"../testdata/torture/*.dat", "../testdata/torture5118/*.dat", "testdata/torture/*.sip"} {
		f, _ := filepath.Glob(pattern)
		files = append(files, f...)
	}
	msgs := built(t)
	p := NewParser(Limits{})
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if msg, err := p.Parse(data); err == nil {
			msgs[filepath.Base(f)] = msg
		}
	}
	if len(msgs) < 40 {
		t.Fatalf("only %d messages", len(msgs))
	}
	for name, msg := range msgs {
		for _, h := range msg.Headers() {
			before := h.String()
			got, want := CloneHeader(h), h.Clone()
			if !reflect.DeepEqual(got, want) || got.String() != want.String() {
				t.Errorf("%s: %s: CloneHeader gives %#v, Clone %#v", name, h.Name(), got, want)
				continue
			}
			scribble(got)
			if h.String() != before {
				t.Errorf("%s: changing the copy changed the original: %q, was %q", name, h.String(), before)
			}
		}
	}
}

// scribble changes every part of an address or Via header a caller may
// change in place.
func scribble(h sip.Header) {
	port := sip.Port(1)
	params := func(ps sip.Params) {
		if ps == nil {
			return
		}
		for _, k := range ps.Keys() {
			ps.Add(k, sip.String{Str: "scribbled"}) // in place
		}
		ps.Add("scribbled", nil)
	}
	addr := func(u sip.Uri, ps sip.Params) {
		params(ps)
		if su, ok := u.(*sip.SipUri); ok && su != nil {
			params(su.FUriParams)
			params(su.FHeaders)
			if su.FPort != nil {
				*su.FPort = port
			}
			su.FHost = "scribbled"
		}
	}
	switch h := h.(type) {
	case *sip.ToHeader:
		addr(h.Address, h.Params)
	case *sip.FromHeader:
		addr(h.Address, h.Params)
	case *sip.ContactHeader:
		addr(h.Address, h.Params)
	case sip.ViaHeader:
		for _, hop := range h {
			params(hop.Params)
			if hop.Port != nil {
				*hop.Port = port
			}
		}
	}
}
