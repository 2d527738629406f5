package media

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// t38Attrs are the T38Fax* attributes of a fax gateway's image m-line.
var t38Attrs = []string{
	"a=T38FaxVersion:0", "a=T38MaxBitRate:14400", "a=T38FaxRateManagement:transferredTCF",
	"a=T38FaxMaxBuffer:400", "a=T38FaxMaxDatagram:400", "a=T38FaxUdpEC:t38UDPRedundancy",
}

// faxSDP is an image-only SDP, as Asterisk re-INVITEs to T.38: the audio
// m-line's place taken by "m=image <port> udptl t38".
func faxSDP(ip string, port int) []byte {
	lines := append([]string{"v=0", "o=gw 1 3 IN IP4 " + ip, "s=-", "c=IN IP4 " + ip, "t=0 0",
		fmt.Sprintf("m=image %d udptl t38", port)}, t38Attrs...)
	return []byte(strings.Join(lines, "\r\n") + "\r\n")
}

// udptlPacket is a UDPTL datagram (sequence number, then an IFP). With
// rtpLike its first octets also read as RTP version 2, which the relay
// must not take for RTP: nothing in it may change on the way.
func udptlPacket(seq uint16, rtpLike bool) []byte {
	pkt := []byte{byte(seq >> 8), byte(seq), 0x06, 0xc0, 0x01, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x07}
	if rtpLike {
		pkt[0] = 0x80
	}
	return pkt
}

// TestFaxReinviteRelaysUDPTL: an audio call between two plain sides
// switches to T.38 by a re-offer from A, B answers with its image stream:
// the SDP each side gets names only the SBC (on the audio stream's ports)
// and keeps every T38Fax* attribute; UDPTL datagrams cross both ways
// byte for byte from the SBC's ports, RTP-looking ones too; a stranger
// is refused; a re-offer back to audio relays RTP again.
func TestFaxReinviteRelaysUDPTL(t *testing.T) {
	m := newTestManager(t, 8, netip.Addr{}, nil)
	a, b := newPeerAt(t, "127.0.17.102", true), newPeerAt(t, "127.0.17.103", true)
	s := m.NewSession("call-fax")
	t.Cleanup(s.Close)
	toB, err := s.Offer(SideA, a.sdp())
	if err != nil {
		t.Fatal(err)
	}
	toA, err := s.Answer(SideB, b.sdp())
	if err != nil {
		t.Fatal(err)
	}
	portA, portB := mPort(t, toA, 0), mPort(t, toB, 0)
	sbcA, sbcB := netip.AddrPortFrom(loopback, uint16(portA)), netip.AddrPortFrom(loopback, uint16(portB))
	send(t, a.rtp, rtpPacket(1), portA)
	if got, _ := recv(t, b.rtp); !sameRTPPayload(got, rtpPacket(1)) {
		t.Fatal("audio A→B not relayed")
	}

	// The fax gateways move to their UDPTL ports (their RTCP sockets).
	faxToB, err := s.Offer(SideA, faxSDP(a.ip, portOfConn(a.rtcp)))
	if err != nil {
		t.Fatalf("T.38 re-offer: %v", err)
	}
	checkFaxSDP(t, "offer toward B", faxToB, portB, a.ip)
	faxToA, err := s.Answer(SideB, faxSDP(b.ip, portOfConn(b.rtcp)))
	if err != nil {
		t.Fatalf("T.38 answer: %v", err)
	}
	checkFaxSDP(t, "answer toward A", faxToA, portA, b.ip)

	for i := range 4 {
		pkt := udptlPacket(uint16(i), i%2 == 1)
		send(t, a.rtcp, pkt, portA)
		if got, from := recv(t, b.rtcp); !bytes.Equal(got, pkt) || from != sbcB {
			t.Fatalf("UDPTL A→B %d: %x from %s, want %x from %s", i, got, from, pkt, sbcB)
		}
		send(t, b.rtcp, pkt, portB)
		if got, from := recv(t, a.rtcp); !bytes.Equal(got, pkt) || from != sbcA {
			t.Fatalf("UDPTL B→A %d: %x from %s, want %x from %s", i, got, from, pkt, sbcA)
		}
	}
	stranger := newPeerAt(t, "127.0.17.109", false)
	send(t, stranger.rtp, udptlPacket(9, false), portA)
	expectNothing(t, b.rtcp, 100*time.Millisecond)
	st := s.Stats()
	if st.AtoB.UDPTL != 4 || st.BtoA.UDPTL != 4 || st.AtoB.RefusedSource != 1 {
		t.Fatalf("counters: A→B %d UDPTL, B→A %d, A→B refused source %d; want 4, 4, 1",
			st.AtoB.UDPTL, st.BtoA.UDPTL, st.AtoB.RefusedSource)
	}

	// Back to audio: image gives way to m=audio on the same m-line.
	if _, err := s.Offer(SideA, a.sdp()); err != nil {
		t.Fatalf("audio re-offer: %v", err)
	}
	if _, err := s.Answer(SideB, b.sdp()); err != nil {
		t.Fatalf("audio answer: %v", err)
	}
	for i := range 3 {
		pkt := rtpPacket(uint16(100 + i))
		send(t, a.rtp, pkt, portA)
		if got, from := recv(t, b.rtp); !sameRTPPayload(got, pkt) || from != sbcB || bytes.Equal(got[8:12], pkt[8:12]) {
			t.Fatalf("RTP A→B after fax: %x from %s (the SSRC must be the SBC's again)", got[:12], from)
		}
	}
}

// checkFaxSDP: the SDP toward a side is image on the SBC's port for it,
// with the T38Fax* attributes, and names nothing of the other side.
func checkFaxSDP(t *testing.T, what string, body []byte, port int, hidden string) {
	t.Helper()
	s := string(body)
	if !strings.Contains(s, fmt.Sprintf("\r\nm=image %d udptl t38\r\n", port)) || strings.Contains(s, hidden) {
		t.Fatalf("%s: want m=image %d and nothing of %s:\n%s", what, port, hidden, s)
	}
	for _, a := range t38Attrs {
		if !strings.Contains(s, a+"\r\n") {
			t.Errorf("%s: %s lost:\n%s", what, a, s)
		}
	}
}

// TestFaxRefusedTowardBrowser: a T.38 re-offer toward a WebRTC side is
// refused with ErrNoFax and changes nothing: the next audio offer gets
// the ports it had.
func TestFaxRefusedTowardBrowser(t *testing.T) {
	m := newTestManager(t, 8, netip.Addr{}, nil)
	s := m.NewSession("call-fax-webrtc")
	t.Cleanup(s.Close)
	s.Configure(SideB, SideOptions{Kind: KindWebRTC})
	a := newPeerAt(t, "127.0.17.104", true)
	first, err := s.Offer(SideA, a.sdp())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Offer(SideA, faxSDP(a.ip, portOfConn(a.rtcp))); !errors.Is(err, ErrNoFax) {
		t.Fatalf("T.38 toward WebRTC: %v, want ErrNoFax", err)
	}
	again, err := s.Offer(SideA, a.sdp())
	if err != nil {
		t.Fatal(err)
	}
	if p, q := mPort(t, first, 0), mPort(t, again, 0); p != q || s.Kinds() != [2]Kind{KindRTP, KindWebRTC} {
		t.Fatalf("after the refused fax offer: port %d then %d, kinds %v", p, q, s.Kinds())
	}
}

// udptlRig is newForwardRig with the stream switched to T.38.
func udptlRig(tb testing.TB) *forwardRig {
	tb.Helper()
	rig := newForwardRig(tb)
	rig.r.in.udptl.Store(true)
	rig.pkt = udptlPacket(1, true)
	return rig
}

func TestUDPTLForwardDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under the race detector")
	}
	rig := udptlRig(t)
	if n := testing.AllocsPerRun(1000, func() { rig.r.forward(rig.pkt, rig.src) }); n != 0 {
		t.Fatalf("forward of UDPTL allocates %.1f times per datagram, want 0", n)
	}
	if got := rig.r.f.c.udptl.Load(); got < 1000 {
		t.Fatalf("%d datagrams relayed, want at least 1000", got)
	}
}

// BenchmarkRelayUDPTL measures relaying one 14-byte UDPTL datagram from
// side A to side B: the per-datagram step alone, as
// BenchmarkRelayPacket/forward does for RTP.
func BenchmarkRelayUDPTL(b *testing.B) {
	rig := udptlRig(b)
	b.ReportAllocs()
	b.SetBytes(int64(len(rig.pkt)))
	for b.Loop() {
		rig.r.forward(rig.pkt, rig.src)
	}
}

// TestFaxRefusedByFarEnd: B refuses A's T.38 re-offer (a 488 the B2BUA
// reports with Refused): A's media goes back to its audio port, both
// ways, and the call goes on in audio.
func TestFaxRefusedByFarEnd(t *testing.T) {
	m := newTestManager(t, 8, netip.Addr{}, nil)
	c := setupCallOpts(t, m, SideOptions{}, SideOptions{})
	send(t, c.a.rtp, rtpPacket(1), c.portA)
	recv(t, c.b.rtp)
	if _, err := c.s.Offer(SideA, faxSDP(c.a.ip, portOfConn(c.a.rtcp))); err != nil {
		t.Fatal(err)
	}
	c.s.Refused(SideA)
	for i := range 3 {
		pkt := rtpPacket(uint16(10 + i))
		send(t, c.b.rtp, pkt, c.portB)
		if got, _ := recv(t, c.a.rtp); !sameRTPPayload(got, pkt) {
			t.Fatalf("B→A %d after the refused fax offer: %x", i, got[:12])
		}
		send(t, c.a.rtp, pkt, c.portA)
		if got, _ := recv(t, c.b.rtp); !sameRTPPayload(got, pkt) {
			t.Fatalf("A→B %d after the refused fax offer: %x", i, got[:12])
		}
	}
	if _, err := c.s.Answer(SideB, c.b.sdp()); !errors.Is(err, ErrNoOffer) {
		t.Fatalf("an answer after Refused: %v, want ErrNoOffer", err)
	}
}
