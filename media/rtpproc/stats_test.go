package rtpproc

import (
	"math"
	"sync"
	"testing"
	"time"
)

// feedSeqs feeds packets of ssrc with the given sequence numbers, 20 ms
// apart and with matching timestamps, starting at arrival ms.
func feedSeqs(r *RecvStats, ssrc uint32, at int64, seqs ...uint16) int64 {
	for _, s := range seqs {
		r.Update(pkt(ssrc, s, uint32(s)*160), 8000, ms(at))
		at += 20
	}
	return at
}

func seqRange(from, to int) []uint16 {
	var s []uint16
	for i := from; i <= to; i++ {
		s = append(s, uint16(i))
	}
	return s
}

func TestRecvStatsLoss(t *testing.T) {
	tests := []struct {
		name    string
		feed    func(r *RecvStats)
		packets uint64
		lost    int64
	}{
		{"in order", func(r *RecvStats) { feedSeqs(r, 1, 0, seqRange(0, 99)...) }, 100, 0},
		{"gaps", func(r *RecvStats) {
			feedSeqs(r, 1, 0, append(seqRange(0, 49), seqRange(60, 99)...)...)
		}, 90, 10},
		{"duplicates never make loss negative", func(r *RecvStats) {
			feedSeqs(r, 1, 0, 0, 1, 1, 2, 2, 2, 3)
		}, 7, 0},
		{"reordered", func(r *RecvStats) { feedSeqs(r, 1, 0, 0, 2, 1, 3, 5, 4) }, 6, 0},
		{"wrap", func(r *RecvStats) {
			feedSeqs(r, 1, 0, append(seqRange(65530, 65535), seqRange(0, 5)...)...)
		}, 12, 0},
		{"wrap with loss", func(r *RecvStats) {
			feedSeqs(r, 1, 0, append(seqRange(65530, 65534), seqRange(1, 5)...)...)
		}, 10, 2},
		{"new SSRC keeps earlier loss", func(r *RecvStats) {
			at := feedSeqs(r, 1, 0, 0, 1, 4, 5)         // 2 lost
			feedSeqs(r, 2, at, 500, 501, 502, 504, 505) // 1 lost
		}, 9, 3},
		{"confirmed jump restarts counting", func(r *RecvStats) {
			at := feedSeqs(r, 1, 0, 0, 1, 3) // 1 lost
			feedSeqs(r, 1, at, 20000, 20001, 20002)
		}, 6, 1},
		{"single wild packet is ignored", func(r *RecvStats) {
			at := feedSeqs(r, 1, 0, seqRange(0, 9)...)
			at = feedSeqs(r, 1, at, 40000)
			feedSeqs(r, 1, at, seqRange(10, 19)...)
		}, 21, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var r RecvStats
			tc.feed(&r)
			s := r.Snapshot("PCMU")
			if s.Packets != tc.packets || s.Bytes != tc.packets*172 || s.Lost != tc.lost {
				t.Fatalf("packets %d bytes %d lost %d; want %d %d %d", s.Packets, s.Bytes, s.Lost, tc.packets, tc.packets*172, tc.lost)
			}
		})
	}
}

func TestRecvStatsJitter(t *testing.T) {
	t.Run("steady", func(t *testing.T) {
		var r RecvStats
		feedSeqs(&r, 1, 1000, seqRange(0, 199)...)
		if j := r.Snapshot("PCMU").JitterMs; j != 0 {
			t.Fatalf("jitter %.3f ms, want 0", j)
		}
	})
	t.Run("alternating 5 ms", func(t *testing.T) {
		// Every other packet 5 ms late: each transit difference is 5 ms,
		// which the estimate approaches.
		var r RecvStats
		for i := range 400 {
			at := int64(i)*20 + int64(i%2)*5
			r.Update(pkt(1, uint16(i), uint32(i*160)), 8000, ms(at))
		}
		if j := r.Snapshot("PCMU").JitterMs; math.Abs(j-5) > 0.01 {
			t.Fatalf("jitter %.3f ms, want 5", j)
		}
	})
	t.Run("48 kHz", func(t *testing.T) {
		var r RecvStats
		for i := range 400 {
			at := int64(i)*20 + int64(i%2)*5
			r.Update(pkt(1, uint16(i), uint32(i*960)), 48000, ms(at))
		}
		if j := r.Snapshot("opus").JitterMs; math.Abs(j-5) > 0.01 {
			t.Fatalf("jitter %.3f ms, want 5", j)
		}
	})
	t.Run("repeated timestamps do not count", func(t *testing.T) {
		var r RecvStats
		feedSeqs(&r, 1, 0, seqRange(0, 9)...)
		for i := range 10 { // a telephone event: one timestamp, 50 ms apart
			r.Update(pkt(1, uint16(10+i), 1600), 8000, ms(200+int64(i)*50))
		}
		if j := r.Snapshot("PCMU").JitterMs; j != 0 {
			t.Fatalf("jitter %.3f ms, want 0", j)
		}
	})
}

func TestRecvStatsMOS(t *testing.T) {
	var empty RecvStats
	if s := empty.Snapshot("PCMU"); s != (StreamStats{}) {
		t.Fatalf("empty snapshot %+v, want zero", s)
	}
	var clean, lossy RecvStats
	feedSeqs(&clean, 1, 0, seqRange(0, 99)...)
	var seqs []uint16
	for i := range 100 {
		if i%10 != 5 { // 10% loss
			seqs = append(seqs, uint16(i))
		}
	}
	feedSeqs(&lossy, 1, 0, seqs...)
	c, l := clean.Snapshot("PCMU"), lossy.Snapshot("PCMU")
	// feedSeqs spaces packets 20 ms apart whatever their numbers, so the
	// lossy stream also has some jitter.
	if wantC, wantL := MOS("PCMU", 0, 0, 0), MOS("PCMU", 10, l.JitterMs, 0); c.MOS != wantC || l.MOS != wantL || l.MOS >= c.MOS {
		t.Fatalf("MOS clean %.3f lossy %.3f, want %.3f %.3f", c.MOS, l.MOS, wantC, wantL)
	}
	clean.SetRTT(600 * time.Millisecond)
	if got, want := clean.Snapshot("PCMU").MOS, MOS("PCMU", 0, 0, 600); got != want {
		t.Fatalf("MOS with RTT %.3f, want %.3f", got, want)
	}
}

// TestRecvStatsConcurrentSnapshot reads while the reader updates; the race
// detector checks the hand-over.
func TestRecvStatsConcurrentSnapshot(t *testing.T) {
	var r RecvStats
	var wg sync.WaitGroup
	done := make(chan struct{})
	wg.Go(func() {
		for {
			select {
			case <-done:
				return
			default:
				if s := r.Snapshot("opus"); s.Lost < 0 {
					t.Errorf("negative loss %d", s.Lost)
					return
				}
			}
		}
	})
	feedSeqs(&r, 1, 0, seqRange(0, 2999)...)
	close(done)
	wg.Wait()
	if s := r.Snapshot("opus"); s.Packets != 3000 {
		t.Fatalf("packets %d, want 3000", s.Packets)
	}
}

func TestRecvStatsDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under the race detector")
	}
	var r RecvStats
	p := pkt(1, 0, 0)
	var seq uint16
	allocs := testing.AllocsPerRun(1000, func() {
		seq++
		setRTPSeq(p, seq)
		setRTPTS(p, uint32(seq)*160)
		r.Update(p, 8000, ms(int64(seq)*20))
		r.Snapshot("PCMU")
	})
	if allocs != 0 {
		t.Fatalf("Update allocates %.1f times per packet, want 0", allocs)
	}
}
