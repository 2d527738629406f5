package b2bua

import (
	"bytes"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/sbc-project/sbc/b2bua/transport"
)

// TestINVITERetransmissionIdentical: leg B's INVITE retransmitted by Timer
// A is the same message, byte for byte, as the first one (RFC 3261
// 17.1.1.2): a UAS that already answered tells a retransmission from a
// new request by comparing them (SIPp does, and aborts its call on a
// differing one).
func TestINVITERetransmissionIdentical(t *testing.T) {
	callee := newRawPeerAt(t, "127.0.4.3")
	s := startUDPServer(t, callee.addr())
	sbc, err := s.Listen("udp", transport.UDP, "127.0.4.1:0", transport.ListenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	callee.sbc = net.UDPAddrFromAddrPort(sbc)
	caller := newRawPeer(t, "127.0.4.2", sbc)
	caller.send(fmt.Sprintf("INVITE sip:1000@%s SIP/2.0", sbc),
		fmt.Sprintf("Via: SIP/2.0/UDP %s;branch=z9hG4bKretrans1;rport", caller.addr()),
		"Max-Forwards: 70", "From: <sip:alice@127.0.4.2>;tag=a1", "To: <sip:1000@127.0.4.1>", "Call-ID: retrans-udp",
		"CSeq: 1 INVITE", "Contact: <sip:alice@"+caller.addr()+">", "Content-Type: application/sdp", "", callerSDP)
	buf := make([]byte, 65535)
	var got [][]byte
	deadline := time.Now().Add(wait)
	for len(got) < 2 {
		_ = callee.conn.SetReadDeadline(deadline)
		n, err := callee.conn.Read(buf)
		if err != nil {
			t.Fatalf("waiting for the INVITE and its retransmission: %v", err)
		}
		if strings.HasPrefix(string(buf[:n]), "INVITE ") {
			got = append(got, bytes.Clone(buf[:n]))
		}
	}
	if !bytes.Equal(got[0], got[1]) {
		t.Fatalf("the retransmission differs from the INVITE:\n--- first\n%s\n--- retransmission\n%s", got[0], got[1])
	}
}
