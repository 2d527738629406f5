package media

import (
	"net"
	"net/netip"
	"testing"
	"time"
)

// forwardRig is a call whose A-facing RTP reader is driven by hand: its
// source is latched to src and side B is a loopback socket that drains.
type forwardRig struct {
	r   *reader
	src netip.AddrPort
	pkt []byte
}

func newForwardRig(tb testing.TB) *forwardRig {
	tb.Helper()
	m := newTestManager(tb, 4, netip.Addr{}, nil)
	a, b := newPeer(tb, false), newPeer(tb, true)
	s := m.NewSession("call-bench")
	tb.Cleanup(s.Close)
	if _, err := s.Offer(SideA, a.sdp()); err != nil {
		tb.Fatalf("Offer: %v", err)
	}
	if _, err := s.Answer(SideB, b.sdp()); err != nil {
		tb.Fatalf("Answer: %v", err)
	}
	go drain(b.rtp)
	st := s.streams[0]
	rig := &forwardRig{
		r:   &reader{in: st.ends[SideA].(*rtpEndpoint).rtp, f: st.flows[SideA]},
		src: a.rtp.LocalAddr().(*net.UDPAddr).AddrPort(),
		pkt: rtpPacket(1),
	}
	rig.r.forward(rig.pkt, rig.src) // latch once, outside the measurement
	return rig
}

// drain reads c until it is closed, so forwarded packets do not pile up.
func drain(c *net.UDPConn) {
	buf := make([]byte, maxPacket)
	for {
		if _, _, err := c.ReadFromUDPAddrPort(buf); err != nil {
			return
		}
	}
}

func TestForwardDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under the race detector")
	}
	rig := newForwardRig(t)
	if n := testing.AllocsPerRun(1000, func() { rig.r.forward(rig.pkt, rig.src) }); n != 0 {
		t.Fatalf("forward allocates %.1f times per packet, want 0", n)
	}
	if got := rig.r.f.c.packets.Load(); got < 1000 {
		t.Fatalf("forwarded %d packets, want at least 1000", got)
	}
}

// BenchmarkRelayPacket measures relaying one 172-byte RTP packet (PCMU,
// 20 ms) from side A to side B.
//
// forward: the per-packet step alone (latch check, receive statistics,
// payload-type map, SSRC/sequence normalization, counters, write to B's
// socket), without the socket read.
// loopback: the whole path over loopback sockets: A's peer writes to the
// SBC, the SBC's reader relays, B's peer reads; one packet in flight.
func BenchmarkRelayPacket(b *testing.B) {
	b.Run("forward", func(b *testing.B) {
		rig := newForwardRig(b)
		b.ReportAllocs()
		b.SetBytes(int64(len(rig.pkt)))
		for b.Loop() {
			rig.r.forward(rig.pkt, rig.src)
		}
	})
	b.Run("loopback", func(b *testing.B) {
		m := newTestManager(b, 4, netip.Addr{}, nil)
		c := setupCall(b, m)
		pkt := rtpPacket(1)
		buf := make([]byte, maxPacket)
		to := netip.AddrPortFrom(loopback, uint16(c.portA))
		c.b.rtp.SetReadDeadline(time.Now().Add(time.Minute))
		b.ReportAllocs()
		b.SetBytes(int64(len(pkt)))
		for b.Loop() {
			if _, err := c.a.rtp.WriteToUDPAddrPort(pkt, to); err != nil {
				b.Fatalf("write: %v", err)
			}
			if _, _, err := c.b.rtp.ReadFromUDPAddrPort(buf); err != nil {
				b.Fatalf("read: %v", err)
			}
		}
	})
}
