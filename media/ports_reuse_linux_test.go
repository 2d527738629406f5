package media

import (
	"errors"
	"net/netip"
	"slices"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestKeptSocketsCarryNothingOver: a port pair's sockets outlive their
// call (the pool keeps them bound), and the next call that gets the pair
// gets the same sockets. What the old call's peers send to the ports
// after it ended, during the quarantine and after, never reaches the new
// call in either direction, and the new call's media flows both ways.
func TestKeptSocketsCarryNothingOver(t *testing.T) {
	m, clock, sbc := reuseManager(t, "127.0.42.1") // the second call must take the first one's pairs

	c1 := reuseCall(t, m, newPeerAt(t, "127.0.42.2", true), newPeerAt(t, "127.0.42.3", true))
	relayOnce(t, c1, sbc, 1)
	old := conns(c1)
	c1.s.Close()
	if got := m.pool.inUse(); got != 0 {
		t.Fatalf("%d pairs in use after Close", got)
	}

	// The old call's peers go on sending, RTP and RTCP, as a phone does
	// that has not seen the BYE yet.
	late := func() {
		for i := range 5 {
			sendTo(t, c1.a.rtp, rtpPacket(uint16(100+i)), sbc(c1.portA))
			sendTo(t, c1.b.rtp, rtpPacket(uint16(100+i)), sbc(c1.portB))
			sendTo(t, c1.a.rtcp, rtcpPacket(), sbc(c1.portA+1))
			sendTo(t, c1.b.rtcp, rtcpPacket(), sbc(c1.portB+1))
		}
	}
	late()
	clock.advance(3 * time.Second) // past the quarantine
	late()
	checkEmptied(t, m, netip.MustParseAddr("127.0.42.1"))
	clock.advance(3 * time.Second)
	late()

	c2 := reuseCall(t, m, newPeerAt(t, "127.0.42.4", true), newPeerAt(t, "127.0.42.5", true))
	if got := conns(c2); !sameConns(got, old) {
		t.Fatalf("the second call got new sockets, want the first call's kept ones (ports %d/%d, then %d/%d)",
			c1.portA, c1.portB, c2.portA, c2.portB)
	}
	if m.pool.reused != 4 {
		t.Fatalf("pool handed out %d kept pairs, want 4", m.pool.reused)
	}
	late() // and once the new call is set up

	// The new call's media flows both ways, to the new peers only.
	const n = 5
	for i := range n {
		relayOnce(t, c2, sbc, uint16(i))
	}
	for _, c := range []*udpPeer{c1.a, c1.b} {
		expectNothing(t, c.rtp, 100*time.Millisecond)
		expectNothing(t, c.rtcp, 10*time.Millisecond)
	}
	for _, c := range []*udpPeer{c2.a, c2.b} {
		expectNothing(t, c.rtp, 10*time.Millisecond)
		expectNothing(t, c.rtcp, 10*time.Millisecond)
	}
	st := c2.s.Stats()
	if st.AtoB.Packets != n || st.BtoA.Packets != n || st.AtoB.RTCPPackets != 0 || st.BtoA.RTCPPackets != 0 {
		t.Fatalf("second call relayed %+v, want %d RTP packets each way and no RTCP", counts(st), n)
	}
}

// checkEmptied takes both pairs of m's range out of the pool and fails
// unless they come with their kept sockets, holding no datagram; then it
// gives them back.
func checkEmptied(t *testing.T, m *Manager, ip netip.Addr) {
	t.Helper()
	before := m.pool.reused
	for range 2 {
		pr, rtp, rtcp, err := openPair(m.pool, ip)
		if err != nil {
			t.Fatalf("openPair: %v", err)
		}
		for _, c := range []*udpConn{rtp, rtcp} {
			var b [1]byte
			if n, _, err := unix.Recvfrom(c.s.FD.Sysfd(), b[:], unix.MSG_DONTWAIT); !errors.Is(err, unix.EAGAIN) {
				t.Fatalf("kept socket on port %d handed out holding a datagram (%d, %v)", c.port, n, err)
			}
		}
		defer pr.releaseKeeping(ip, rtp, rtcp)
	}
	if m.pool.reused != before+2 {
		t.Fatalf("pool handed out %d kept pairs, want 2", m.pool.reused-before)
	}
}

// reuseCall sets a call up between a and b (offer from A, answer from B).
// reuseManager is a Manager on bind with two port pairs (one stream's
// worth, so a call after another takes its pairs), a 2 s quarantine on
// a fake clock, and sbc, the address of one of its ports.
func reuseManager(t *testing.T, bind string) (m *Manager, clock *fakeClock, sbc func(port int) netip.AddrPort) {
	t.Helper()
	min, max := freeRange(t, 2)
	ip := netip.MustParseAddr(bind)
	m, err := NewManager(Config{Addrs: []Addr{{Bind: ip}}, PortMin: min, PortMax: max, Quarantine: 2 * time.Second}, testLog())
	if err != nil {
		t.Fatalf("NewManager: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	return m, useClock(m), func(port int) netip.AddrPort { return netip.AddrPortFrom(ip, uint16(port)) }
}

func reuseCall(t *testing.T, m *Manager, a, b *udpPeer) *call {
	t.Helper()
	c := &call{s: m.NewSession("call-reuse"), a: a, b: b}
	t.Cleanup(c.s.Close)
	toB, err := c.s.Offer(SideA, a.sdp())
	if err != nil {
		t.Fatalf("Offer: %v", err)
	}
	toA, err := c.s.Answer(SideB, b.sdp())
	if err != nil {
		t.Fatalf("Answer: %v", err)
	}
	c.portA, c.portB = mPort(t, toA, 0), mPort(t, toB, 0)
	return c
}

// relayOnce sends one RTP packet each way through c and checks it comes
// out of the SBC's port facing the receiver.
func relayOnce(t *testing.T, c *call, sbc func(int) netip.AddrPort, seq uint16) {
	t.Helper()
	pkt := rtpPacket(seq)
	sendTo(t, c.a.rtp, pkt, sbc(c.portA))
	if got, from := recv(t, c.b.rtp); !sameRTPPayload(got, pkt) || from != sbc(c.portB) {
		t.Fatalf("A→B packet %d: %d bytes from %s, want %d from %s", seq, len(got), from, len(pkt), sbc(c.portB))
	}
	sendTo(t, c.b.rtp, pkt, sbc(c.portB))
	if got, from := recv(t, c.a.rtp); !sameRTPPayload(got, pkt) || from != sbc(c.portA) {
		t.Fatalf("B→A packet %d: %d bytes from %s, want %d from %s", seq, len(got), from, len(pkt), sbc(c.portA))
	}
}

// sameConns reports whether a and b hold the same sockets, in any order.
func sameConns(a, b []*udpConn) bool {
	for _, c := range a {
		if !slices.Contains(b, c) {
			return false
		}
	}
	return len(a) == len(b)
}

// TestKeptSocketUnusable: when one socket of a kept pair cannot be taken
// back (here it was closed), the pair gets new sockets on the same ports
// and the kept one that could be is closed, not leaked.
func TestKeptSocketUnusable(t *testing.T) {
	min, max := freeRange(t, 1)
	p := newPortPool(min, max, time.Nanosecond)
	pr, rtp, rtcp, err := openPair(p, loopback)
	if err != nil {
		t.Fatalf("openPair: %v", err)
	}
	rtcp.close()
	pr.releaseKeeping(loopback, rtp, rtcp)
	waitFor(t, "quarantine over", func() bool { return p.now().After(p.pairs[0].freeAt) })
	pr2, rtp2, rtcp2, err := openPair(p, loopback)
	if err != nil {
		t.Fatalf("openPair after the kept socket closed: %v", err)
	}
	defer func() { rtp2.close(); rtcp2.close(); pr2.release() }()
	if rtp2 == rtp || rtcp2 == rtcp || pr2.port != pr.port || p.reused != 0 {
		t.Fatalf("got port %d (reused %d), the same sockets %v/%v; want new sockets on port %d",
			pr2.port, p.reused, rtp2 == rtp, rtcp2 == rtcp, pr.port)
	}
	checkClosed(t, []*udpConn{rtp, rtcp})
}
