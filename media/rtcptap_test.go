package media

import (
	"bytes"
	"net"
	"net/netip"
	"sync"
	"testing"

	"github.com/pion/rtcp"
)

// rtcpSeen collects what Config.RTCP hears, copying each packet as the
// contract asks.
type rtcpSeen struct {
	mu   sync.Mutex
	pkts []RTCPPacket
}

func (s *rtcpSeen) hear(p RTCPPacket) {
	p.Data = bytes.Clone(p.Data)
	s.mu.Lock()
	s.pkts = append(s.pkts, p)
	s.mu.Unlock()
}

func (s *rtcpSeen) all() []RTCPPacket {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]RTCPPacket(nil), s.pkts...)
}

func addrOf(c *net.UDPConn) netip.AddrPort { return c.LocalAddr().(*net.UDPAddr).AddrPort() }

// TestRTCPTapBothWays: with Config.RTCP set, a sender report from A and a
// receiver report from B are each reported twice, as received (the
// side's bytes, from the side to the SBC's RTCP port) and as sent (the
// bytes the other side got, from the SBC's port to it), under the
// session's id. The SBC's address is the one the sides see (a public
// address when one is set).
func TestRTCPTapBothWays(t *testing.T) {
	t.Run("bind address", func(t *testing.T) { rtcpTapBothWays(t, netip.Addr{}) })
	t.Run("public address", func(t *testing.T) { rtcpTapBothWays(t, netip.MustParseAddr("192.0.2.10")) })
}

func rtcpTapBothWays(t *testing.T, pub netip.Addr) {
	var seen rtcpSeen
	m := newTestManager(t, 4, pub, func(c *Config) { c.RTCP = seen.hear })
	c := setupCall(t, m)
	// RTP first, so both sides are latched and normalized.
	send(t, c.a.rtp, rtpPacket(1), c.portA)
	recv(t, c.b.rtp)
	send(t, c.b.rtp, withSSRC(rtpPacket(1), 0x2222), c.portB)
	recv(t, c.a.rtp)

	sr, err := rtcp.Marshal([]rtcp.Packet{&rtcp.SenderReport{SSRC: 0xdeadbeef, NTPTime: 1 << 40, RTPTime: 160,
		PacketCount: 1, OctetCount: 160, Reports: []rtcp.ReceptionReport{{SSRC: 0x2222, FractionLost: 7, TotalLost: 3}}}})
	if err != nil {
		t.Fatal(err)
	}
	send(t, c.a.rtcp, sr, c.portA+1)
	toB, _ := recv(t, c.b.rtcp)
	rr, err := rtcp.Marshal([]rtcp.Packet{&rtcp.ReceiverReport{SSRC: 0x2222,
		Reports: []rtcp.ReceptionReport{{SSRC: binaryOutSSRC(toB), FractionLost: 9, TotalLost: 4, Jitter: 12}}}})
	if err != nil {
		t.Fatal(err)
	}
	send(t, c.b.rtcp, rr, c.portB+1)
	toA, _ := recv(t, c.a.rtcp)
	waitFor(t, "four RTCP reports", func() bool { return len(seen.all()) == 4 })

	seenAt := loopback
	if pub.IsValid() {
		seenAt = pub
	}
	sbcA, sbcB := netip.AddrPortFrom(seenAt, uint16(c.portA+1)), netip.AddrPortFrom(seenAt, uint16(c.portB+1))
	want := []RTCPPacket{
		{Session: "call-relay", Side: SideA, Src: addrOf(c.a.rtcp), Dst: sbcA, Data: sr},
		{Session: "call-relay", Side: SideB, Sent: true, Src: sbcB, Dst: addrOf(c.b.rtcp), Data: toB},
		{Session: "call-relay", Side: SideB, Src: addrOf(c.b.rtcp), Dst: sbcB, Data: rr},
		{Session: "call-relay", Side: SideA, Sent: true, Src: sbcA, Dst: addrOf(c.a.rtcp), Data: toA},
	}
	for i, got := range seen.all() {
		w := want[i]
		if got.Session != w.Session || got.Side != w.Side || got.Sent != w.Sent || got.Src != w.Src || got.Dst != w.Dst ||
			!bytes.Equal(got.Data, w.Data) {
			t.Errorf("report %d:\n got %+v\nwant %+v", i, got, w)
		}
	}
	// The relay rewrote the sender report's SSRC for B: what was sent is
	// not what was received.
	if bytes.Equal(sr, toB) {
		t.Error("the sender report reached B unchanged: the test cannot tell received from sent")
	}
}

// binaryOutSSRC is the SSRC of the first RTCP packet of a compound.
func binaryOutSSRC(pkt []byte) uint32 {
	return uint32(pkt[4])<<24 | uint32(pkt[5])<<16 | uint32(pkt[6])<<8 | uint32(pkt[7])
}

// TestRTCPTapDoesNotAllocate: the relay hands RTCP to the tap without
// allocating; what the tap does with it is its own cost.
func TestRTCPTapDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under the race detector")
	}
	rig := newForwardRig(t)
	heard := 0
	rig.r.f.tap = &rtcpTap{f: func(RTCPPacket) { heard++ }, session: "call-bench", from: SideA}
	compound := rtcpWithSDES(t, 0xdeadbeef, "alice@192.0.2.10", "Linphone/5.2")
	buf := make([]byte, 0, maxPacket)
	before := rig.r.f.c.rtcpPackets.Load()
	if n := testing.AllocsPerRun(1000, func() { rig.r.forward(append(buf[:0], compound...), rig.src) }); n != 0 {
		t.Fatalf("forwarding RTCP to the tap allocates %.1f times per packet, want 0", n)
	}
	if got := rig.r.f.c.rtcpPackets.Load() - before; got < 1000 {
		t.Fatalf("forwarded %d RTCP packets, want at least 1000", got)
	}
	if heard < 2000 {
		t.Fatalf("the tap heard %d packets, want each of 1000 received and sent", heard)
	}
}

// BenchmarkRelayRTCP forwards an RTCP compound (a receiver report and
// SDES, rewritten in place) from the latched source: off, as with
// hep.addr empty (no tap); tap, with Config.RTCP set to a function that
// does nothing, the relay's own share of the export.
func BenchmarkRelayRTCP(b *testing.B) {
	for _, on := range []bool{false, true} {
		name := "off"
		if on {
			name = "tap"
		}
		b.Run(name, func(b *testing.B) {
			rig := newForwardRig(b)
			if on {
				rig.r.f.tap = &rtcpTap{f: func(RTCPPacket) {}, session: "call-bench", from: SideA}
			}
			compound := rtcpWithSDES(b, 0xdeadbeef, "alice@192.0.2.10", "Linphone/5.2")
			buf := make([]byte, 0, maxPacket)
			b.ReportAllocs()
			b.SetBytes(int64(len(compound)))
			for b.Loop() {
				rig.r.forward(append(buf[:0], compound...), rig.src)
			}
		})
	}
}
