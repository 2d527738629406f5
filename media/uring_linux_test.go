package media

import (
	"net/netip"
	"testing"
	"time"

	"github.com/sbc-project/sbc/media/poll"
)

// batchRig is a forwardRig whose reader queues its sends in an io_uring
// batch, as a poll loop's does.
func batchRig(tb testing.TB) (*forwardRig, *sendBatch) {
	tb.Helper()
	rig := newForwardRig(tb)
	sb, err := poll.NewBatch()
	if err != nil {
		tb.Skipf("no io_uring on this kernel: %v", err)
	}
	tb.Cleanup(sb.Close)
	rig.r.out = sb
	return rig, sb
}

func TestForwardBatchDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under the race detector")
	}
	rig, sb := batchRig(t)
	before := rig.r.f.c.packets.Load()
	if n := testing.AllocsPerRun(1000, func() { rig.r.forward(rig.pkt, rig.src); sb.Flush() }); n != 0 {
		t.Fatalf("forward and flush allocate %.1f times per packet, want 0", n)
	}
	c := &rig.r.f.c
	if got := c.packets.Load() - before; got < 1000 || c.dropped.Load() != 0 {
		t.Fatalf("relayed %d packets with %d drops, want at least 1000 and none", got, c.dropped.Load())
	}
}

// BenchmarkRelayBatch is BenchmarkRelayPacket's forward step with the
// send queued in the poll loop's io_uring batch, flushed after every
// packet (one io_uring_enter each, as a wake-up that brings one packet)
// or after every 8 (a wake-up that brings 8, each toward another call
// in the harness; here the same socket).
func BenchmarkRelayBatch(b *testing.B) {
	for _, per := range []int{1, 8} {
		b.Run("flush-every-"+string(rune('0'+per)), func(b *testing.B) {
			rig, sb := batchRig(b)
			pkts := make([][]byte, per)
			for i := range pkts {
				pkts[i] = rtpPacket(uint16(i))
			}
			b.ReportAllocs()
			b.SetBytes(int64(len(rig.pkt)))
			i := 0
			for b.Loop() {
				rig.r.forward(pkts[i], rig.src)
				if i++; i == per {
					sb.Flush()
					i = 0
				}
			}
			sb.Flush()
		})
	}
}

// TestPollRelayDoesNotAllocate: a packet relayed by a poll loop, from the
// wake-up to the send, allocates nothing, in either way of reading and
// sending.
func TestPollRelayDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under the race detector")
	}
	for _, batch := range []bool{false, true} {
		t.Run(map[bool]string{false: "sendto", true: "batch"}[batch], func(t *testing.T) {
			m := newTestManager(t, 4, netip.Addr{}, nil)
			m.eng.n, m.eng.noBatch = 1, !batch
			c := setupCall(t, m)
			pkt := rtpPacket(1)
			buf := make([]byte, maxPacket)
			to := netip.AddrPortFrom(loopback, uint16(c.portA))
			c.b.rtp.SetReadDeadline(time.Now().Add(time.Minute))
			trip := func() {
				if _, err := c.a.rtp.WriteToUDPAddrPort(pkt, to); err != nil {
					t.Fatalf("write: %v", err)
				}
				if _, _, err := c.b.rtp.ReadFromUDPAddrPort(buf); err != nil {
					t.Fatalf("read: %v", err)
				}
			}
			trip() // the loop starts, the source latches
			if n := testing.AllocsPerRun(200, trip); n != 0 {
				t.Fatalf("relaying through the loop allocates %.2f times per packet, want 0", n)
			}
		})
	}
}
