package b2bua

import (
	"fmt"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"
	"weak"

	"github.com/ghettovoice/gosip/sip"

	"github.com/sbc-project/sbc/b2bua/sipmsg"
	"github.com/sbc-project/sbc/b2bua/transport"
)

// TestEndedCallLetsGoWhileTransactionsLinger: once a call is done, the
// transactions that outlive it (B's INVITE transaction in Accepted,
// Timer M; A's BYE, Timer J: 64*T1 on UDP) keep nothing of it: the Call
// can be collected while they are still live. Real UDP sockets on
// 127.0.8.x, the real transaction layer (T1 50 ms: 3.2 s of linger).
func TestEndedCallLetsGoWhileTransactionsLinger(t *testing.T) {
	callee := newRawPeerAt(t, "127.0.8.3")
	s := startTappedUDPServer(t, callee.addr(), nil)
	sbc, err := s.Listen("udp", transport.UDP, "127.0.8.1:0", transport.ListenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	callee.sbc = net.UDPAddrFromAddrPort(sbc)
	caller := newRawPeer(t, "127.0.8.2", sbc)
	dialog := func(method string, seq int, toTag string, extra ...string) []string {
		to := "<sip:1000@127.0.8.1>"
		if toTag != "" {
			to += ";tag=" + toTag
		}
		return append([]string{
			fmt.Sprintf("%s sip:1000@%s SIP/2.0", method, sbc),
			fmt.Sprintf("Via: SIP/2.0/UDP %s;branch=z9hG4bK%s%d;rport", caller.addr(), strings.ToLower(method), seq),
			"Max-Forwards: 70", "From: <sip:alice@127.0.8.2>;tag=a1", "To: " + to, "Call-ID: release-udp",
			fmt.Sprintf("CSeq: %d %s", seq, method), "Contact: <sip:alice@" + caller.addr() + ">",
		}, extra...)
	}
	caller.send(dialog("INVITE", 1, "", "Content-Type: application/sdp", "", callerSDP)...)
	inv := callee.recv("INVITE", isRequest(sip.INVITE))
	callee.answer(inv, "200 OK", "Content-Type: application/sdp", "", calleeSDP)
	tag := sipmsg.ToTag(caller.recv("200 to INVITE", isResponse(200, sip.INVITE)))
	caller.send(dialog("ACK", 1, tag)...)

	call := theCall(t, s)
	caller.send(dialog("BYE", 2, tag)...)
	bye := callee.recv("BYE", isRequest(sip.BYE))
	callee.answer(bye, "200 OK")
	caller.recv("200 to BYE", isResponse(200, sip.BYE))
	for deadline := time.Now().Add(wait); s.ActiveCalls() > 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the call did not end")
		}
	}
	for range 3 { // a finalizer-free object goes in one cycle; spare two
		runtime.GC()
	}
	live := s.tx.Count()
	if call.Value() != nil {
		t.Errorf("the ended call is still held (%d transactions live)", live)
	}
	if live == 0 {
		t.Fatal("no transaction lingered: the check proves nothing")
	}
}

// theCall returns a weak pointer to the server's only call.
func theCall(t *testing.T, s *Server) weak.Pointer[Call] {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.calls) != 1 {
		t.Fatalf("%d calls, want 1", len(s.calls))
	}
	for c := range s.calls {
		return weak.Make(c)
	}
	panic("unreachable")
}
