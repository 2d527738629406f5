package b2bua

import (
	"context"
	"fmt"
	"net/netip"
	"runtime"
	"strconv"
	"testing"
	"time"
	"unsafe"
	"weak"

	"github.com/ghettovoice/gosip/sip"

	"github.com/sbc-project/sbc/b2bua/sipmsg"
	"github.com/sbc-project/sbc/b2bua/txn"
	"github.com/sbc-project/sbc/policy"
)

// dialingPolicy passes every call as the dial rules and the auth stage
// would, with what they take from A's INVITE: the request-URI's user
// dialed as written (a name), the From user authenticated.
type dialingPolicy struct{}

func (dialingPolicy) Early(context.Context, *policy.Request) policy.Decision { return policy.Pass }
func (dialingPolicy) Late(_ context.Context, r *policy.Request) policy.Decision {
	r.Dial, r.User = r.RURIUser, r.FromUser
	return policy.Pass
}
func (dialingPolicy) Banned(netip.Addr, string) bool          { return false }
func (dialingPolicy) Report(netip.Addr, string, policy.Event) {}
func (dialingPolicy) MaxDuration() time.Duration              { return 0 }

// parseOwned parses raw from a buffer of its own, as the transport hands
// a datagram, and returns a weak pointer to that buffer.
func parseOwned(t *testing.T, raw string) (sip.Message, weak.Pointer[byte]) {
	t.Helper()
	buf := []byte(raw)
	msg, err := sipmsg.NewParser(sipmsg.Limits{}).ParseOwned(buf)
	if err != nil {
		t.Fatalf("parse: %v\n%s", err, raw)
	}
	return msg, weak.Make(&buf[0])
}

// within reports whether any of strs lies in the n bytes from start.
func within(start uintptr, n int, strs ...string) bool {
	for _, s := range strs {
		if s == "" {
			continue
		}
		p := uintptr(unsafe.Pointer(unsafe.StringData(s)))
		if p >= start && p < start+uintptr(n) {
			return true
		}
	}
	return false
}

// uriStrings are the user and host of a SIP URI.
func uriStrings(u sip.Uri) []string {
	su, ok := u.(*sip.SipUri)
	if !ok {
		return nil
	}
	out := []string{su.FHost}
	if su.FUser != nil {
		out = append(out, su.FUser.String())
	}
	return out
}

// An answered call keeps neither A's INVITE nor B's 2xx as received: its
// legs' tags, URIs, route sets and SDP, and what the policy stages read
// from the INVITE (the number dialed, the authenticated user), are copies
// (each text used to stay for the call's life, some 1 kB a call). B's text
// is seen to be freed; A's is checked to be no longer pointed into by
// the call (the fake transactions of the harness keep A's INVITE; the
// real layer lets it go once the 2xx is ACKed).
func TestAnsweredCallLetsReceivedTextsGo(t *testing.T) {
	h := newCallHarness(t, dialingPolicy{})
	sdp := callerSDP
	inv, invText := parseOwned(t, "INVITE sip:2125550100@sbc.example SIP/2.0\r\n"+
		"Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKtexts\r\nMax-Forwards: 70\r\n"+
		"From: \"Alice\" <sip:alice@caller.example>;tag=a1\r\nTo: <sip:2125550100@sbc.example>\r\n"+
		"Call-ID: texts-1\r\nCSeq: 1 INVITE\r\nContact: <sip:alice@192.0.2.10:5060;ob>\r\n"+
		"Record-Route: <sip:edge.caller.example;lr>\r\nContent-Type: application/sdp\r\n"+
		"Content-Length: "+strconv.Itoa(len(sdp))+"\r\n\r\n"+sdp)
	a := newFakeServerTx(inv.(sip.Request))
	h.s.newCall(a.req, a)
	b := h.txs.next(t, sip.INVITE)
	ok := txn.NewResponse(b.req, 200, "OK")
	to, _ := ok.To()
	sipmsg.SetTag(to, "callee")
	ok.AppendHeader(sipmsg.Generic("Contact", "<sip:callee@192.0.2.20:5060>"))
	ok.AppendHeader(sipmsg.Generic("Record-Route", "<sip:edge.callee.example;lr>"))
	sipmsg.SetBody(ok, "application/sdp", sdp)
	res, okText := parseOwned(t, string(sipmsg.Render(ok)))
	b.call.post(event{kind: evResponse, client: b, res: res.(sip.Response)})
	b.end()
	h.txs.ack(t)
	got := a.final(t)
	if got.StatusCode() != 200 {
		t.Fatalf("caller got %d, want 200", got.StatusCode())
	}
	ack, _ := parseOwned(t, "ACK sip:2125550100@sbc.example SIP/2.0\r\n"+
		"Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKtexts-ack\r\nMax-Forwards: 70\r\n"+
		"From: \"Alice\" <sip:alice@caller.example>;tag=a1\r\nTo: <sip:2125550100@sbc.example>;tag="+
		sipmsg.ToTag(got)+"\r\nCall-ID: texts-1\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n")
	h.s.inDialog(ack.(sip.Request), nil)
	invStart, invLen := uintptr(unsafe.Pointer(invText.Value())), len(inv.String())
	inv, a, res, b, got, ack = nil, nil, nil, nil, nil, nil // b: the INVITE to B names A's display name
	legs := legsOf(h.s)
	freed := func() bool {
		runtime.GC()
		return okText.Value() == nil
	}
	for i := 0; i < 200 && !freed(); i++ {
		time.Sleep(10 * time.Millisecond) // the ACK's event, on the call's goroutine
	}
	if okText.Value() != nil {
		t.Error("the answered call keeps the text of B's 2xx")
	}
	// Read on the call's goroutine: it handles the ACK meanwhile.
	checked := make(chan []string, 1)
	legs["a"][0].call.post(event{kind: evFunc, fn: func(c *Call) {
		la, lb := c.a, c.b
		kept := []string{la.callID, la.remoteTag, la.lastSDPIn, c.rec.ACallID, c.user}
		for _, a := range []*sip.Address{la.remote, la.local, lb.local, lb.remote} {
			if a.DisplayName != nil {
				kept = append(kept, a.DisplayName.String())
			}
		}
		for _, u := range []sip.Uri{la.remote.Uri, la.local.Uri, la.remoteTarget, lb.local.Uri} {
			kept = append(kept, uriStrings(u)...)
		}
		for _, r := range la.routeSet {
			kept = append(kept, uriStrings(r.(*sip.RouteHeader).Addresses[0])...)
		}
		var bad []string
		if within(invStart, invLen, kept...) {
			bad = append(bad, "the call still points into the text of A's INVITE")
		}
		if la.remote.String() != `"Alice" <sip:alice@caller.example>` || la.remoteTarget.String() != "sip:alice@192.0.2.10:5060;ob" ||
			la.remoteTag != "a1" || la.lastSDPIn != sdp || len(la.routeSet) != 1 || la.routeSet[0].String() != "Route: <sip:edge.caller.example;lr>" {
			bad = append(bad, fmt.Sprintf("leg A after detach: remote %q target %q tag %q route %v", la.remote, la.remoteTarget, la.remoteTag, la.routeSet))
		}
		if lb.remoteTarget.String() != "sip:callee@192.0.2.20:5060" || lb.remoteTag != "callee" || lb.lastSDPIn != sdp ||
			len(lb.routeSet) != 1 || lb.routeSet[0].String() != "Route: <sip:edge.callee.example;lr>" {
			bad = append(bad, fmt.Sprintf("leg B after detach: target %q tag %q route %v", lb.remoteTarget, lb.remoteTag, lb.routeSet))
		}
		checked <- bad
	}})
	select {
	case bad := <-checked:
		for _, b := range bad {
			t.Error(b)
		}
	case <-time.After(wait):
		t.Fatal("the call did not run the check")
	}
}

// ownURI copies a parsed SIP URI field by field: it renders as the
// original did, escapes and parameter order included, and none of its
// strings points into the message the original was parsed from.
func TestOwnURIKeepsNothingOfItsMessage(t *testing.T) {
	const contact = `<sip:alice:pw@192.0.2.10:5060;ob;transport=udp;x=%41?h=v&k>`
	msg, text := parseOwned(t, "INVITE sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKown\r\n"+
		"From: <sip:alice@example.com>;tag=a\r\nTo: <tel:+15551234;phone-context=example.com>\r\nCall-ID: own\r\nCSeq: 1 INVITE\r\n"+
		"Contact: "+contact+"\r\nContent-Length: 0\r\n\r\n")
	start, n := uintptr(unsafe.Pointer(text.Value())), len(msg.String())
	u := sipmsg.ContactURI(msg.(sip.Request))
	o := ownURI(u)
	if o.String() != u.String() || "<"+o.String()+">" != contact {
		t.Fatalf("own copy renders %q, the original %q", o.String(), u.String())
	}
	su := o.(*sip.SipUri)
	strs := append(uriStrings(o), su.FPassword.String())
	for _, p := range []sip.Params{su.FUriParams, su.FHeaders} {
		for _, k := range p.Keys() {
			v, _ := p.Get(k)
			strs = append(strs, k)
			if v != nil {
				strs = append(strs, v.String())
			}
		}
	}
	if within(start, n, strs...) {
		t.Errorf("the own copy %q still points into the message", o)
	}
	// A tel: URI (an AbsoluteURI) too.
	to, _ := msg.(sip.Request).To()
	ot, ok := ownURI(to.Address).(*sipmsg.AbsoluteURI)
	if !ok || ot.String() != "tel:+15551234;phone-context=example.com" || within(start, n, ot.Scheme, ot.Opaque) {
		t.Errorf("own copy of the To URI: %#v", ownURI(to.Address))
	}
	runtime.KeepAlive(msg)
}
