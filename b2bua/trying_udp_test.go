package b2bua

import (
	"fmt"
	"net"
	"testing"

	"github.com/ghettovoice/gosip/sip"

	"github.com/sbc-project/sbc/b2bua/transport"
)

// A new INVITE gets no 100 Trying of its own when the callee rings at
// once: the caller's first response is the 180. A callee that stays
// silent still has the caller get 100 Trying from the transaction layer
// (200 ms, RFC 3261 17.2.1), which stops its retransmissions.
func TestTryingOnlyWhenTheCalleeIsSlow(t *testing.T) {
	callee := newRawPeerAt(t, "127.0.4.3")
	s := startUDPServer(t, callee.addr())
	sbc, err := s.Listen("udp", transport.UDP, "127.0.4.1:0", transport.ListenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	callee.sbc = net.UDPAddrFromAddrPort(sbc)
	invite := func(caller *rawPeer, callID string) {
		caller.send(fmt.Sprintf("INVITE sip:1000@%s SIP/2.0", sbc),
			fmt.Sprintf("Via: SIP/2.0/UDP %s;branch=z9hG4bK%s;rport", caller.addr(), callID),
			"Max-Forwards: 70", "From: <sip:alice@127.0.4.2>;tag=a1", "To: <sip:1000@127.0.4.1>", "Call-ID: "+callID,
			"CSeq: 1 INVITE", "Contact: <sip:alice@"+caller.addr()+">", "Content-Type: application/sdp", "", callerSDP)
	}
	isProvisional := func(m sip.Message) bool {
		res, ok := m.(sip.Response)
		return ok && res.StatusCode() < 200
	}

	fast := newRawPeer(t, "127.0.4.2", sbc)
	invite(fast, "trying-fast")
	callee.answer(callee.recv("INVITE", isRequest(sip.INVITE)), "180 Ringing")
	if res := fast.recv("a provisional response", isProvisional).(sip.Response); res.StatusCode() != 180 {
		t.Fatalf("first response with a callee ringing at once: %d, want 180", res.StatusCode())
	}

	slow := newRawPeer(t, "127.0.4.4", sbc)
	invite(slow, "trying-slow")
	callee.recv("INVITE", isRequest(sip.INVITE)) // and no answer
	if res := slow.recv("a provisional response", isProvisional).(sip.Response); res.StatusCode() != 100 {
		t.Fatalf("first response with a silent callee: %d, want 100", res.StatusCode())
	}
}
