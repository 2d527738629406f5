package media

import (
	"errors"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestParkedSocketsDropLatePackets: a call's sockets stay in their poll
// loop after it ends, parked in the port pool's quarantine. The loop reads
// what the old call's peers still send and drops it: nothing is relayed
// or counted, and nothing waits in the sockets for the next call. No call
// gets the pair before the quarantine is over; the next call on the same
// sockets gets none of the old call's packets, not even one its loop read
// before the call took the socket, and relays its own.
func TestParkedSocketsDropLatePackets(t *testing.T) {
	m, clock, sbc := reuseManager(t, "127.0.43.1") // the next call takes the same pairs

	c1 := reuseCall(t, m, newPeerAt(t, "127.0.43.2", true), newPeerAt(t, "127.0.43.3", true))
	relayOnce(t, c1, sbc, 1)
	old := conns(c1)
	c1.s.Close()
	final, relayed := c1.s.Stats(), m.Relayed()

	// The quarantine holds: no pair for a call now.
	early := m.NewSession("call-early")
	defer early.Close()
	if _, err := early.Offer(SideA, newPeerAt(t, "127.0.43.6", true).sdp()); !errors.Is(err, ErrNoPorts) {
		t.Fatalf("Offer within the quarantine: %v, want ErrNoPorts", err)
	}

	for i := range 5 {
		sendTo(t, c1.a.rtp, rtpPacket(uint16(100+i)), sbc(c1.portA))
		sendTo(t, c1.b.rtp, rtpPacket(uint16(100+i)), sbc(c1.portB))
		sendTo(t, c1.a.rtcp, rtcpPacket(), sbc(c1.portA+1))
		sendTo(t, c1.b.rtcp, rtcpPacket(), sbc(c1.portB+1))
	}
	// Loopback delivers before sendto returns: the datagrams are in the
	// sockets now, and only their loop can take them out.
	waitFor(t, "the loop to read the parked sockets empty", func() bool {
		for _, c := range old {
			var b [1]byte
			if _, _, err := unix.Recvfrom(c.s.FD.Sysfd(), b[:], unix.MSG_PEEK|unix.MSG_DONTWAIT); !errors.Is(err, unix.EAGAIN) {
				return false
			}
		}
		return true
	})
	checkIdle(t, old)
	if got := c1.s.Stats(); got != final {
		t.Fatalf("the ended call counted late packets:\n%+v\n%+v", final, got)
	}
	if got := m.Relayed(); got != relayed {
		t.Fatalf("late packets relayed: %+v, then %+v", relayed, got)
	}
	for _, p := range []*udpPeer{c1.a, c1.b} {
		expectNothing(t, p.rtp, 50*time.Millisecond)
	}

	clock.advance(3 * time.Second)
	c2 := reuseCall(t, m, newPeerAt(t, "127.0.43.4", true), newPeerAt(t, "127.0.43.5", true))
	cs := conns(c2)
	if !sameConns(cs, old) {
		t.Fatal("the second call got new sockets, want the parked ones")
	}
	// A datagram the loop read before the call took the socket carries
	// the loop's clock of that read: the new call never sees it. One read
	// after is the call's (here refused: its source is a stranger).
	stale := netip.AddrPortFrom(netip.MustParseAddr("127.0.43.2"), 4000)
	before := c2.s.Stats()
	r := cs[0].cur.Load()
	cs[0].Datagram(rtpPacket(7), stale, r.since, nil)
	if got := c2.s.Stats(); got != before {
		t.Fatalf("a datagram read before the call took the socket reached it:\n%+v\n%+v", before, got)
	}
	cs[0].Datagram(rtpPacket(8), stale, r.since+1, nil)
	if got := c2.s.Stats(); got.AtoB.Foreign != before.AtoB.Foreign+1 {
		t.Fatalf("a datagram read after the call took the socket: foreign %d, want %d", got.AtoB.Foreign, before.AtoB.Foreign+1)
	}
	for i := range 3 {
		relayOnce(t, c2, sbc, uint16(i))
	}
	if st := c2.s.Stats(); st.AtoB.Packets != 3 || st.BtoA.Packets != 3 {
		t.Fatalf("second call relayed %+v, want 3 RTP packets each way", counts(st))
	}
}
