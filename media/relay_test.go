package media

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"
	"time"
)

// call is a session with a test peer on each side and the SBC's ports
// facing them, after one offer (from A) and answer (from B).
type call struct {
	s            *Session
	a, b         *udpPeer
	portA, portB int // the SBC's RTP ports facing A and B
}

func setupCall(t testing.TB, m *Manager) *call {
	t.Helper()
	return setupCallOpts(t, m, SideOptions{}, SideOptions{})
}

// setupCallOpts is setupCall with each side configured first.
func setupCallOpts(t testing.TB, m *Manager, optsA, optsB SideOptions) *call {
	t.Helper()
	c := &call{s: m.NewSession("call-relay"), a: newPeer(t, false), b: newPeer(t, true)}
	t.Cleanup(c.s.Close)
	c.s.Configure(SideA, optsA)
	c.s.Configure(SideB, optsB)
	toB, err := c.s.Offer(SideA, c.a.sdp())
	if err != nil {
		t.Fatalf("Offer: %v", err)
	}
	toA, err := c.s.Answer(SideB, c.b.sdp())
	if err != nil {
		t.Fatalf("Answer: %v", err)
	}
	c.portA, c.portB = mPort(t, toA, 0), mPort(t, toB, 0)
	return c
}

func TestRelayBothWays(t *testing.T) {
	m := newTestManager(t, 4, netip.Addr{}, nil)
	c := setupCall(t, m)
	const n = 5
	sbcB := netip.AddrPortFrom(loopback, uint16(c.portB))
	sbcA := netip.AddrPortFrom(loopback, uint16(c.portA))

	var ssrcAB, ssrcBA uint32
	for i := range n {
		pkt := rtpPacket(uint16(i))
		send(t, c.a.rtp, pkt, c.portA)
		got, from := recv(t, c.b.rtp)
		if !sameRTPPayload(got, pkt) || from != sbcB {
			t.Fatalf("A→B packet %d: %d bytes from %s, want %d bytes from %s", i, len(got), from, len(pkt), sbcB)
		}
		ssrcAB = checkOneSSRC(t, "A→B", ssrcAB, got)
		send(t, c.b.rtp, pkt, c.portB)
		got, from = recv(t, c.a.rtp)
		if !sameRTPPayload(got, pkt) || from != sbcA {
			t.Fatalf("B→A packet %d: %d bytes from %s, want %d bytes from %s", i, len(got), from, len(pkt), sbcA)
		}
		ssrcBA = checkOneSSRC(t, "B→A", ssrcBA, got)
	}

	// RTCP on port+1, both ways; A's RTCP port came from a=rtcp.
	rr := rtcpPacket()
	send(t, c.a.rtcp, rr, c.portA+1)
	if got, from := recv(t, c.b.rtcp); len(got) != len(rr) || got[1] != rr[1] || from.Port() != uint16(c.portB+1) {
		t.Fatalf("A→B RTCP: %x from %s", got, from)
	}
	send(t, c.b.rtcp, rr, c.portB+1)
	if got, from := recv(t, c.a.rtcp); len(got) != len(rr) || got[1] != rr[1] || from.Port() != uint16(c.portA+1) {
		t.Fatalf("B→A RTCP: %x from %s", got, from)
	}
	// RTCP multiplexed on A's RTP socket still reaches B's RTCP port.
	send(t, c.a.rtp, rr, c.portA)
	if got, from := recv(t, c.b.rtcp); len(got) != len(rr) || got[1] != rr[1] || from.Port() != uint16(c.portB+1) {
		t.Fatalf("muxed A→B RTCP: %x from %s", got, from)
	}

	want := Stats{
		AtoB: Flow{Packets: n, Bytes: n * 172, RTCPPackets: 2, RTCPBytes: 2 * uint64(len(rr))},
		BtoA: Flow{Packets: n, Bytes: n * 172, RTCPPackets: 1, RTCPBytes: uint64(len(rr))},
	}
	// A counter is bumped after the write the peer already read.
	waitFor(t, "stats", func() bool { return counts(c.s.Stats()) == want })
	c.s.Close()
	got := c.s.Stats()
	if counts(got) != want {
		t.Fatalf("Stats after Close = %+v, want %+v", got, want)
	}
	if got.AtoB.Lost != 0 || got.AtoB.MOS < 4 || got.BtoA.MOS < 4 {
		t.Fatalf("quality of a clean stream: %+v", got)
	}
}

// counts keeps the packet counters of st, for comparison.
func counts(st Stats) Stats {
	keep := func(f Flow) Flow {
		return Flow{Packets: f.Packets, Bytes: f.Bytes, RTCPPackets: f.RTCPPackets, RTCPBytes: f.RTCPBytes,
			Dropped: f.Dropped, Foreign: f.Foreign}
	}
	return Stats{AtoB: keep(st.AtoB), BtoA: keep(st.BtoA)}
}

// sameRTPPayload: got is sent, relayed: same payload type and payload;
// the SSRC, sequence and marker are the normalized stream's.
func sameRTPPayload(got, sent []byte) bool {
	return len(got) == len(sent) && got[1]&0x7f == sent[1]&0x7f && bytes.Equal(got[12:], sent[12:])
}

// checkOneSSRC fails unless pkt carries want (or want is 0, the first).
func checkOneSSRC(t *testing.T, dir string, want uint32, pkt []byte) uint32 {
	t.Helper()
	got := binary.BigEndian.Uint32(pkt[8:12])
	if want != 0 && got != want {
		t.Fatalf("%s: SSRC changed from %08x to %08x", dir, want, got)
	}
	return got
}

func TestRelayDropsUntilFarSideKnown(t *testing.T) {
	m := newTestManager(t, 4, netip.Addr{}, nil)
	s := m.NewSession("call-early")
	defer s.Close()
	a, b := newPeer(t, false), newPeer(t, true)
	toB, err := s.Offer(SideA, a.sdp())
	if err != nil {
		t.Fatalf("Offer: %v", err)
	}
	portB := mPort(t, toB, 0)

	// B sends early media before its answer: A is known from the offer, so
	// it flows B→A (and latches B); A→B flows only once B latched.
	send(t, b.rtp, rtpPacket(1), portB)
	got, _ := recv(t, a.rtp)
	if len(got) != 172 {
		t.Fatalf("early media: %d bytes", len(got))
	}

	s2 := m.NewSession("call-early-2")
	defer s2.Close()
	if _, err := s2.Offer(SideA, a.sdp()); err != nil {
		t.Fatalf("Offer: %v", err)
	}
	// A's RTP reaches s2's A-facing port before B answered or sent anything.
	toA2 := s2.streams[0].ends[SideA].(*rtpEndpoint).pair.port
	send(t, a.rtp, rtpPacket(1), toA2)
	waitFor(t, "dropped count", func() bool { return s2.Stats().AtoB.Dropped == 1 })
	if st := s2.Stats(); st.AtoB.Packets != 0 {
		t.Fatalf("relayed %d packets toward an unknown side", st.AtoB.Packets)
	}
}

func TestLatching(t *testing.T) {
	m := newTestManager(t, 4, netip.Addr{}, nil)
	// A's SIP comes from 127.0.0.1.
	c := setupCallOpts(t, m, SideOptions{Signaling: loopback}, SideOptions{})
	// A is behind a NAT: its RTP leaves from another port than its SDP
	// says, from the address its SIP comes from.
	nat := newPeer(t, false)
	intruder := newPeerAt(t, "127.0.0.66", false)

	send(t, nat.rtp, rtpPacket(1), c.portA)
	recv(t, c.b.rtp)
	// The intruder's packet is dropped once A's source is latched.
	send(t, intruder.rtp, withSSRC(rtpPacket(2), 0x66), c.portA)
	waitFor(t, "foreign count", func() bool { return c.s.Stats().AtoB.Foreign == 1 })
	expectNothing(t, c.b.rtp, 50*time.Millisecond)

	// B's media goes to the latched source, not to the SDP address.
	send(t, c.b.rtp, rtpPacket(3), c.portB)
	recv(t, nat.rtp)
	expectNothing(t, c.a.rtp, 50*time.Millisecond)

	// A re-offer from A with a new address resets the latch: the new
	// address is accepted, the old source refused.
	moved := newPeer(t, false)
	if _, err := c.s.Offer(SideA, sipSDP("127.0.0.1", portOfConn(moved.rtp))); err != nil {
		t.Fatalf("re-offer: %v", err)
	}
	send(t, moved.rtp, rtpPacket(4), c.portA)
	recv(t, c.b.rtp)
	send(t, nat.rtp, rtpPacket(5), c.portA)
	waitFor(t, "foreign count", func() bool { return c.s.Stats().AtoB.Foreign == 2 })

	// The same address again keeps the latch.
	if _, err := c.s.Offer(SideA, sipSDP("127.0.0.1", portOfConn(moved.rtp))); err != nil {
		t.Fatalf("re-offer: %v", err)
	}
	send(t, nat.rtp, rtpPacket(6), c.portA)
	waitFor(t, "foreign count", func() bool { return c.s.Stats().AtoB.Foreign == 3 })
	if st := c.s.Stats().AtoB; st.RefusedSource != 3 || st.Relatched != 0 {
		t.Fatalf("refused for their source %d, relatched %d; want 3 and 0", st.RefusedSource, st.Relatched)
	}
}

// withSSRC sets the SSRC of an RTP packet.
func withSSRC(pkt []byte, ssrc uint32) []byte {
	binary.BigEndian.PutUint32(pkt[8:], ssrc)
	return pkt
}

func TestOldStyleHoldStopsSending(t *testing.T) {
	m := newTestManager(t, 4, netip.Addr{}, nil)
	c := setupCall(t, m)
	// A holds with c=0.0.0.0: nothing may be sent toward A.
	if _, err := c.s.Offer(SideA, sipSDP("0.0.0.0", portOfConn(c.a.rtp), "a=sendonly")); err != nil {
		t.Fatalf("hold offer: %v", err)
	}
	if _, err := c.s.Answer(SideB, c.b.sdp("a=recvonly")); err != nil {
		t.Fatalf("hold answer: %v", err)
	}
	send(t, c.b.rtp, rtpPacket(1), c.portB)
	waitFor(t, "dropped count", func() bool { return c.s.Stats().BtoA.Dropped == 1 })
	expectNothing(t, c.a.rtp, 50*time.Millisecond)
	// A's music on hold still reaches B, and latches A's source, yet
	// nothing goes back to that source while A holds.
	send(t, c.a.rtp, rtpPacket(2), c.portA)
	recv(t, c.b.rtp)
	send(t, c.b.rtp, rtpPacket(3), c.portB)
	waitFor(t, "dropped count", func() bool { return c.s.Stats().BtoA.Dropped == 2 })
	expectNothing(t, c.a.rtp, 50*time.Millisecond)

	// Resume.
	if _, err := c.s.Offer(SideA, c.a.sdp()); err != nil {
		t.Fatalf("resume offer: %v", err)
	}
	send(t, c.b.rtp, rtpPacket(4), c.portB)
	recv(t, c.a.rtp)
}

func TestIsRTCP(t *testing.T) {
	tests := []struct {
		name string
		pkt  []byte
		want bool
	}{
		{"pcmu", rtpPacket(1), false},
		{"rtp marker pt 0", []byte{0x80, 0x80, 0, 0}, false},
		{"rtp dynamic pt 111 marker", []byte{0x80, 0x80 | 111, 0, 0}, false},
		{"sender report", []byte{0x80, 200, 0, 6}, true},
		{"receiver report", rtcpPacket(), true},
		{"psfb", []byte{0x81, 206, 0, 2}, true},
		{"short", []byte{0x80}, false},
		{"not v2", []byte{0x40, 200, 0, 0}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := isRTCP(tc.pkt); got != tc.want {
				t.Fatalf("isRTCP(%x) = %v, want %v", tc.pkt, got, tc.want)
			}
		})
	}
}
