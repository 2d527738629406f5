//go:build linux

package media

import (
	"fmt"
	"net"
	"net/netip"
	"testing"

	"github.com/sbc-project/sbc/media/poll"
)

// BenchmarkRelaySpread is BenchmarkRelayBatch's forward step taken in
// turn by the A-facing RTP readers of many calls, as a poll loop serving
// hundreds of calls does: each packet's call state was last touched a
// whole round ago, so what the per-packet path reads from memory, and how
// many cache lines it is spread over, shows in ns/op, which a single
// call's hot state hides. Sends are queued in one io_uring batch flushed
// every 16 packets; side B's sockets are not read (their full buffers
// drop in the kernel, after the send's cost is paid).
//
// The kernel's send is most of the cost and varies with the machine's
// other load by more than a cache line; go-only/ takes it out: side B is
// on hold (c=0.0.0.0), so the path runs to B's socket's send and stops
// there (the packet is counted dropped), all in Go.
func BenchmarkRelaySpread(b *testing.B) {
	for _, held := range []bool{false, true} {
		for _, n := range []int{1, 500, 1000} {
			name := fmt.Sprintf("sent/calls-%d", n)
			if held {
				name = fmt.Sprintf("go-only/calls-%d", n)
			}
			b.Run(name, func(b *testing.B) { relaySpread(b, n, held) })
		}
	}
}

func relaySpread(b *testing.B, n int, held bool) {
	rigs := spreadRigs(b, n, held)
	sb, err := poll.NewBatch()
	if err != nil {
		b.Skipf("no io_uring on this kernel: %v", err)
	}
	b.Cleanup(sb.Close)
	for _, r := range rigs {
		r.r.out = sb
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(rigs[0].pkt)))
	i, q := 0, 0
	for b.Loop() {
		r := rigs[i]
		r.r.forward(r.pkt, r.src)
		if i++; i == n {
			i = 0
		}
		if q++; q == 16 {
			sb.Flush()
			q = 0
		}
	}
	sb.Flush()
	var relayed, dropped uint64
	for _, r := range rigs {
		relayed += r.r.f.c.packets.Load()
		dropped += r.r.f.c.dropped.Load()
	}
	if got := map[bool]uint64{false: relayed, true: dropped}[held]; got < uint64(b.N) {
		b.Fatalf("%d packets relayed, %d dropped, of %d", relayed, dropped, b.N)
	}
}

// spreadRigs sets up n calls on one manager, each a forwardRig latched
// to its own source; held puts side B of each on hold.
func spreadRigs(tb testing.TB, n int, held bool) []*forwardRig {
	tb.Helper()
	m := newTestManager(tb, 4*n+8, netip.Addr{}, nil)
	rigs := make([]*forwardRig, n)
	for i := range rigs {
		a, bp := newPeer(tb, false), newPeer(tb, true)
		s := m.NewSession(fmt.Sprintf("call-%d", i))
		tb.Cleanup(s.Close)
		if _, err := s.Offer(SideA, a.sdp()); err != nil {
			tb.Fatalf("Offer: %v", err)
		}
		if _, err := s.Answer(SideB, bp.sdp()); err != nil {
			tb.Fatalf("Answer: %v", err)
		}
		st := s.streams[0]
		e := st.ends[SideA].(*rtpEndpoint)
		rigs[i] = &forwardRig{
			r:   newReader(e, e.rtp, st.flows[SideA]),
			src: a.rtp.LocalAddr().(*net.UDPAddr).AddrPort(),
			pkt: rtpPacket(uint16(i)),
		}
		rigs[i].r.forward(rigs[i].pkt, rigs[i].src) // latch
		if held {
			st.ends[SideB].(*rtpEndpoint).rtp.update(func(p peer) peer { p.hold = true; return p })
		}
		if p := rigs[i].r.in.dst.Load(); !p.latched {
			tb.Fatalf("call %d did not latch", i)
		}
	}
	return rigs
}

// BenchmarkRelayTouchAhead is BenchmarkRelaySpread's go-only/calls-500
// taken in rounds of 32 datagrams, each of another call, as a poll
// loop's io_uring round hands them: one after the other (plain), or each
// call's state touched first for the whole round (touch), as readRing
// does (poll.Toucher). ns/op is per packet, the touch included.
func BenchmarkRelayTouchAhead(b *testing.B) {
	for _, touch := range []bool{false, true} {
		b.Run(map[bool]string{false: "plain", true: "touch"}[touch], func(b *testing.B) {
			relayTouch(b, 500, touch)
		})
	}
}

func relayTouch(b *testing.B, n int, touch bool) {
	const round = 32
	rigs := spreadRigs(b, n, true)
	b.ReportAllocs()
	var sum uintptr
	i, q := 0, 0
	for b.Loop() {
		if q == 0 && touch {
			for j := range round {
				sum += rigs[(i+j)%n].r.touch()
			}
		}
		r := rigs[i]
		r.r.forward(r.pkt, r.src)
		i, q = (i+1)%n, (q+1)%round
	}
	var dropped uint64
	for _, r := range rigs {
		dropped += r.r.f.c.dropped.Load()
	}
	if dropped < uint64(b.N) || sum == 1 {
		b.Fatalf("%d packets went the go-only way (dropped at side B's hold), of %d", dropped, b.N)
	}
}
