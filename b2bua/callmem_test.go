package b2bua

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strconv"
	"testing"
	"time"
	"unsafe"
	"weak"

	"github.com/ghettovoice/gosip/sip"

	"github.com/sbc-project/sbc/b2bua/outcome"
	"github.com/sbc-project/sbc/b2bua/routing"
	"github.com/sbc-project/sbc/b2bua/sipmsg"
	"github.com/sbc-project/sbc/b2bua/transport"
	"github.com/sbc-project/sbc/b2bua/txn"
)

// legsOf returns the legs in the server's dialog index, by side name.
func legsOf(s *Server) map[string][]*leg {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string][]*leg{}
	for _, l := range s.dialogs {
		out[string(l.name)] = append(out[string(l.name)], l)
	}
	return out
}

// Legs of different calls with the same host, port and transport share
// one Contact header (it is never changed once made), which renders as
// each leg's own did.
func TestLegsShareTheirContact(t *testing.T) {
	h := newCallHarness(t, nil)
	for range 2 {
		h.call(t)
		h.txs.next(t, sip.INVITE)
	}
	legs := legsOf(h.s)
	for _, side := range []string{"a", "b"} {
		ls := legs[side]
		if len(ls) != 2 {
			t.Fatalf("%d legs %s in the dialog index, want 2", len(ls), side)
		}
		if ls[0].contact != ls[1].contact {
			t.Errorf("legs %s of two calls have Contacts %p and %p, want one shared", side, ls[0].contact, ls[1].contact)
		}
		want := ourContact(ls[0].viaHost, ls[0].viaPort, transport.UDP, false).String()
		if got := ls[0].contact.String(); got != want {
			t.Errorf("leg %s Contact %q, want %q", side, got, want)
		}
	}
}

// A server keeps at most maxContacts Contacts to share; past that a leg
// gets one of its own, still right.
func TestSharedContactsBounded(t *testing.T) {
	s := New(Config{}, Hooks{}, slog.New(slog.DiscardHandler))
	first := s.contactFor("192.0.2.1", 5060, transport.TCP, false)
	if again := s.contactFor("192.0.2.1", 5060, transport.TCP, false); again != first {
		t.Fatal("the same host, port and transport got two Contacts")
	}
	for port := range uint16(2 * maxContacts) {
		h := s.contactFor("192.0.2.1", 6000+port, transport.TCP, false)
		if want := "<sip:sbc@192.0.2.1:" + strconv.Itoa(6000+int(port)) + ";transport=tcp>"; h.String() != "Contact: "+want {
			t.Fatalf("Contact %q, want %q", h.String(), "Contact: "+want)
		}
	}
	kept := 0
	s.contacts.m.Range(func(any, any) bool { kept++; return true })
	if kept != maxContacts {
		t.Fatalf("%d Contacts kept, want the bound %d", kept, maxContacts)
	}
}

// Legs share the server's header whitelist; a trunk's own pass headers
// make a set for its leg B only, and never join the shared one.
func TestTrunkPassHeadersStayOnItsLeg(t *testing.T) {
	h := newCallHarnessWith(t, nil, routing.TrunkSpec{Name: "pbx", URI: "sip:192.0.2.20:5060",
		PassHeaders: []string{"X-Trunk-Only"}}, []string{"X-Everyone"})
	h.call(t)
	h.txs.next(t, sip.INVITE)
	legs := legsOf(h.s)
	a, b := legs["a"][0], legs["b"][0]
	if !a.pass["x-everyone"] || a.pass["x-trunk-only"] {
		t.Errorf("leg A passes %v, want x-everyone only", a.pass)
	}
	if !b.pass["x-everyone"] || !b.pass["x-trunk-only"] {
		t.Errorf("leg B passes %v, want x-everyone and x-trunk-only", b.pass)
	}
	if len(h.s.pass) != 1 || !h.s.pass["x-everyone"] {
		t.Errorf("the server's shared set is %v, want x-everyone only", h.s.pass)
	}
}

// A call's timers are a slice that is let go once the last one stops; a
// restarted timer keeps one slot, and a timer that fires after it was
// stopped is ignored.
func TestCallTimersLetGo(t *testing.T) {
	c := &Call{}
	c.startTimer(timerRing, time.Hour)
	c.startTimer(timerMaxDuration, time.Hour)
	first := c.timers[0].t
	c.startTimer(timerRing, time.Hour) // restarted: stops the first
	if len(c.timers) != 2 {
		t.Fatalf("%d timers after a restart, want 2", len(c.timers))
	}
	if first.Stop() {
		t.Error("the restarted timer's first run was not stopped")
	}
	c.stopTimer(timerRing)
	c.onTimer(timerRing) // fired after it was stopped: nothing to do
	if len(c.timers) != 1 || c.timers[0].kind != timerMaxDuration {
		t.Fatalf("timers %v, want the maximum duration only", c.timers)
	}
	c.stopTimer(timerMaxDuration)
	if c.timers != nil {
		t.Fatalf("timers %v kept after the last stopped, want nil", c.timers)
	}
}

// newHaltable is a call with the context newCall gives it.
func newHaltable() *Call {
	c := &Call{}
	c.ctx, c.stop = context.WithCancelCause(context.Background())
	return c
}

// A lookup's context ends when the call is halted (a CANCEL, a hang-up),
// also when the call was halted before the lookup began; the lookup's
// own deadline does not end the call's context.
func TestLookupEndsWithTheCall(t *testing.T) {
	c := newHaltable()
	ctx, done := c.lookupCtx(time.Hour)
	c.halt(&stopped{cause: outcome.CauseCallerCancel, side: outcome.SideA})
	if !errors.Is(ctx.Err(), context.Canceled) {
		t.Fatalf("lookup context after the call was halted: %v, want canceled", ctx.Err())
	}
	done()
	if c.lookupStop != nil {
		t.Fatal("the finished lookup is still registered")
	}
	if ctx, done := c.lookupCtx(time.Hour); ctx.Err() == nil {
		t.Fatal("a lookup that began after the call was halted is not cancelled")
	} else {
		done()
	}

	c = newHaltable()
	ctx, done = c.lookupCtx(time.Nanosecond)
	<-ctx.Done()
	done()
	if !errors.Is(ctx.Err(), context.DeadlineExceeded) || c.ctx.Err() != nil {
		t.Fatalf("lookup %v, call %v: want the lookup's deadline only", ctx.Err(), c.ctx.Err())
	}
}

// A call's done channel is made only for whoever waits on it, and is
// closed once the call is done, whether made before or after.
func TestCallDoneChanOnDemand(t *testing.T) {
	c := &Call{}
	if c.done != nil {
		t.Fatal("a new call has a done channel")
	}
	before := c.doneChan()
	select {
	case <-before:
		t.Fatal("done before the call is")
	default:
	}
	c.markDone()
	for _, ch := range []<-chan struct{}{before, c.doneChan()} {
		select {
		case <-ch:
		default:
			t.Fatal("not done after markDone")
		}
	}
	late := &Call{}
	late.markDone()
	select {
	case <-late.doneChan():
	default:
		t.Fatal("a channel made after the call was done is not closed")
	}
}

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
// legs' tags, URIs, route sets and SDP are copies (each text used to stay
// for the call's life, some 0.9 kB a call). B's text is seen to be freed;
// A's is checked to be no longer pointed into by leg A (the fake
// transactions of the harness keep A's INVITE; the real layer lets it go
// once the 2xx is ACKed).
func TestAnsweredCallLetsReceivedTextsGo(t *testing.T) {
	h := newCallHarness(t, nil)
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
		kept := []string{la.callID, la.remoteTag, la.lastSDPIn, c.rec.ACallID}
		for _, u := range []sip.Uri{la.remote.Uri, la.local.Uri, la.remoteTarget, lb.local.Uri} {
			kept = append(kept, uriStrings(u)...)
		}
		for _, r := range la.routeSet {
			kept = append(kept, uriStrings(r.(*sip.RouteHeader).Addresses[0])...)
		}
		var bad []string
		if within(invStart, invLen, kept...) {
			bad = append(bad, "leg A still points into the text of A's INVITE")
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
