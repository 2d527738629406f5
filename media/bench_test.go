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
	e := st.ends[SideA].(*rtpEndpoint)
	rig := &forwardRig{
		r:   newReader(e, e.rtp, st.flows[SideA]),
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
	// RTCP with SDES items, multiplexed on the RTP port: its SDES is
	// rewritten in place.
	compound := rtcpWithSDES(t, 0xdeadbeef, "alice@192.0.2.10", "Linphone/5.2")
	buf := make([]byte, 0, maxPacket)
	if n := testing.AllocsPerRun(1000, func() { rig.r.forward(append(buf[:0], compound...), rig.src) }); n != 0 {
		t.Fatalf("forwarding RTCP allocates %.1f times per packet, want 0", n)
	}
	if got := rig.r.f.c.rtcpPackets.Load(); got < 1000 {
		t.Fatalf("forwarded %d RTCP packets, want at least 1000", got)
	}
}

// attackPackets are what an attacker sends from another address: junk,
// RTP of a payload type not negotiated, and well-formed RTP of its own.
func attackPackets() map[string][]byte {
	return map[string][]byte{
		"junk":        {0x42},
		"payload":     withPT(withSSRC(rtpPacket(7), 0x66), 96),
		"well-formed": withSSRC(rtpPacket(8), 0x66),
	}
}

var attackerSrc = netip.MustParseAddrPort("127.0.0.66:40000")

// TestRefuseDoesNotAllocate: refusing an attacker's packets costs no
// allocation either, so a flood of them does not feed the collector.
func TestRefuseDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under the race detector")
	}
	rig := newForwardRig(t)
	for name, pkt := range attackPackets() {
		before := rig.r.f.c.foreign.Load()
		if n := testing.AllocsPerRun(1000, func() { rig.r.forward(pkt, attackerSrc) }); n != 0 {
			t.Errorf("refusing %s allocates %.1f times per packet, want 0", name, n)
		}
		if got := rig.r.f.c.foreign.Load() - before; got < 1000 {
			t.Errorf("refused %d %s packets, want at least 1000", got, name)
		}
	}
	if p := rig.r.in.dst.Load(); !p.latched || p.addr != rig.src {
		t.Fatalf("the attacker moved the latch to %s", p.addr)
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
// refuse/...: the latch rules refusing an attacker's packet (attackPackets)
// from another address.
func BenchmarkRelayPacket(b *testing.B) {
	b.Run("forward", func(b *testing.B) {
		rig := newForwardRig(b)
		b.ReportAllocs()
		b.SetBytes(int64(len(rig.pkt)))
		for b.Loop() {
			rig.r.forward(rig.pkt, rig.src)
		}
	})
	for name, pkt := range attackPackets() {
		b.Run("refuse/"+name, func(b *testing.B) {
			rig := newForwardRig(b)
			b.ReportAllocs()
			b.SetBytes(int64(len(pkt)))
			for b.Loop() {
				rig.r.forward(pkt, attackerSrc)
			}
		})
	}
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
