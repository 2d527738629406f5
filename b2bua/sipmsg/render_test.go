package sipmsg

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/ghettovoice/gosip/sip"
)

// Render must give exactly what gosip's String gives: for every message
// the parser accepts from the torture corpora (RFC 4475, RFC 5118 and the
// hand-made samples), and for messages built the way the B2BUA builds
// them (gosip's own parameter lists and headers, display names, a wildcard
// Contact, a sips URI with a password and URI headers, an IPv6 host).
func TestRenderIsString(t *testing.T) {
	var files []string
	for _, pattern := range []string{"../testdata/torture/*.dat", "../testdata/torture5118/*.dat", "testdata/torture/*.sip"} {
		f, err := filepath.Glob(pattern)
		if err != nil || len(f) == 0 {
			t.Fatalf("no messages in %s: %v", pattern, err)
		}
		files = append(files, f...)
	}
	p := NewParser(Limits{})
	parsed := 0
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		msg, err := p.Parse(data)
		if err != nil {
			continue
		}
		parsed++
		sameAsString(t, filepath.Base(f), msg)
	}
	if parsed < 40 {
		t.Fatalf("only %d messages of the corpora parsed", parsed)
	}
	for name, msg := range built(t) {
		sameAsString(t, name, msg)
	}
}

func sameAsString(t *testing.T, name string, msg sip.Message) {
	t.Helper()
	if got, want := string(Render(msg)), gosipString(msg); got != want {
		t.Errorf("%s: Render differs from String\n got: %q\nwant: %q", name, got, want)
	}
}

// gosipString is msg as gosip's own message type renders it: the SBC's
// messages render through Render, so the reference is gosip's String of
// a gosip message with the same parts.
func gosipString(msg sip.Message) string {
	switch m := msg.(type) {
	case sip.Request:
		return sip.NewRequest("x", m.Method(), m.Recipient(), m.SipVersion(), m.Headers(), m.Body(), nil).String()
	case sip.Response:
		return sip.NewResponse("x", m.SipVersion(), m.StatusCode(), m.Reason(), m.Headers(), m.Body(), nil).String()
	}
	return msg.String()
}

// built returns messages assembled from gosip's types as the B2BUA does.
func built(t *testing.T) map[string]sip.Message {
	t.Helper()
	port := sip.Port(5061)
	uri := &sip.SipUri{FIsEncrypted: true, FUser: sip.String{Str: "al ice"}, FPassword: sip.String{Str: "p@ss"},
		FHost: "example.com", FPort: &port,
		FUriParams: sip.NewParams().Add("transport", sip.String{Str: "tls"}).Add("lr", nil),
		FHeaders:   sip.NewParams().Add("subject", sip.String{Str: "a b"})}
	v6 := &sip.SipUri{FHost: "[2001:db8::1]", FUriParams: NewParams().Add("maddr", sip.String{Str: "x y"})}
	hopParams := NewParams().Add("branch", sip.String{Str: "z9hG4bK-1"}).Add("rport", nil).
		Add("received", sip.String{Str: `"q;uoted"`})
	hop := &sip.ViaHop{ProtocolName: "SIP", ProtocolVersion: "2.0", Transport: "UDP", Host: "192.0.2.1",
		Port: &port, Params: hopParams}
	hop2 := &sip.ViaHop{ProtocolName: "SIP", ProtocolVersion: "2.0", Transport: "WSS", Host: "h.invalid",
		Params: sip.NewParams().Add("branch", sip.String{Str: "z9hG4bK-2"})}
	cseq := sip.CSeq{SeqNo: 4711, MethodName: sip.INVITE}
	callID := sip.CallID("abc@192.0.2.1")
	maxFwd := sip.MaxForwards(69)
	length := sip.ContentLength(4)
	hdrs := []sip.Header{
		sip.ViaHeader{hop, hop2},
		&sip.FromHeader{DisplayName: sip.String{Str: "Alice A"}, Address: uri,
			Params: NewParams().Add("tag", sip.String{Str: "t1"})},
		&sip.ToHeader{Address: v6, Params: sip.NewParams().Add("tag", sip.String{Str: "needs quoting"})},
		&sip.ContactHeader{DisplayName: sip.String{Str: "C"}, Address: &sip.WildcardUri{},
			Params: NewParams().Add("expires", sip.String{Str: "0"})},
		&sip.ContactHeader{Address: &AbsoluteURI{Scheme: "tel", Opaque: "+15551234"}},
		&callID, &cseq, &maxFwd,
		&sip.RouteHeader{Addresses: []sip.Uri{uri, v6}},
		&sip.RecordRouteHeader{Addresses: []sip.Uri{v6}},
		&sip.GenericHeader{HeaderName: "X-Thing", Contents: "a, b"},
		&sip.SupportedHeader{Options: []string{"timer", "100rel"}},
		&sip.RequireHeader{Options: []string{"100rel"}},
		&sip.SupportedHeader{},
		sip.AllowHeader{sip.INVITE, sip.ACK, sip.BYE},
		sip.AllowHeader{},
		func() *sip.Expires { e := sip.Expires(3600); return &e }(),
		func() *sip.ServerHeader { v := sip.ServerHeader("sbc/1 (x)"); return &v }(),
		func() *sip.UserAgentHeader { v := sip.UserAgentHeader("ua 2"); return &v }(),
		func() *sip.Accept { v := sip.Accept("application/sdp"); return &v }(),
		func() *sip.ContentType { ct := sip.ContentType("text/plain"); return &ct }(),
		&length,
	}
	req := sip.NewRequest("", sip.INVITE, uri, "SIP/2.0", hdrs, "body", nil)
	res := sip.NewResponse("", "SIP/2.0", 486, "Busy Here", hdrs, "", nil)
	return map[string]sip.Message{"request": req, "response": res}
}

func BenchmarkRender(b *testing.B) {
	data, err := os.ReadFile("testdata/torture/valid_invite.sip")
	if err != nil {
		b.Fatal(err)
	}
	msg, err := NewParser(Limits{}).Parse(data)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("Render", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = Render(msg)
		}
	})
	b.Run("String", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = []byte(msg.String())
		}
	})
}

// TestRenderWireIsRender: a pooled rendering gives Render's bytes, also
// for a buffer that held a longer message before.
func TestRenderWireIsRender(t *testing.T) {
	long, err := os.ReadFile("testdata/torture/valid_invite.sip")
	if err != nil {
		t.Fatal(err)
	}
	p := NewParser(Limits{})
	big, err := p.Parse(long)
	if err != nil {
		t.Fatal(err)
	}
	small, err := p.Parse([]byte("BYE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n" +
		"From: <sip:a@b>;tag=1\r\nTo: <sip:b@c>;tag=2\r\nCall-ID: x\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		for _, msg := range []sip.Message{big, small} {
			w := RenderWire(msg)
			if got, want := string(w.Bytes()), string(Render(msg)); got != want {
				t.Fatalf("RenderWire gives\n%q\nRender gives\n%q", got, want)
			}
			w.Free()
		}
	}
}

// TestRenderWireAllocatesNothing: rendering a message to send costs no
// allocation once the pool holds a buffer (every message the SBC sends).
func TestRenderWireAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector's sync.Pool drops buffers on purpose")
	}
	data, err := os.ReadFile("testdata/torture/valid_invite.sip")
	if err != nil {
		t.Fatal(err)
	}
	msg, err := NewParser(Limits{}).Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(100, func() { RenderWire(msg).Free() })
	if allocs != 0 {
		t.Errorf("%.1f allocations per message", allocs)
	}
}

// TestURIString: URIString is String for the URIs of the corpora and of
// the built messages (request URIs, From, To, Contact, Route).
func TestURIString(t *testing.T) {
	msgs := built(t)
	p := NewParser(Limits{})
	files, _ := filepath.Glob("../testdata/torture/*.dat")
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if msg, err := p.Parse(data); err == nil {
			msgs[filepath.Base(f)] = msg
		}
	}
	n := 0
	check := func(name string, u sip.Uri) {
		n++
		if got, want := URIString(u), u.String(); got != want {
			t.Errorf("%s: URIString %q, String %q", name, got, want)
		}
	}
	for name, msg := range msgs {
		if req, ok := msg.(sip.Request); ok {
			check(name, req.Recipient())
		}
		for _, h := range msg.Headers() {
			switch h := h.(type) {
			case *sip.FromHeader:
				check(name, h.Address)
			case *sip.ToHeader:
				check(name, h.Address)
			case *sip.ContactHeader:
				check(name, h.Address)
			case *sip.RouteHeader:
				for _, u := range h.Addresses {
					check(name, u)
				}
			}
		}
	}
	if n < 100 {
		t.Fatalf("only %d URIs checked", n)
	}
}
