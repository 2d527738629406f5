package rtpproc

import (
	"sync"
	"testing"
)

// step is one packet fed to a Normalizer and what must come out: the
// sequence number and timestamp relative to the first output packet's.
type step struct {
	ssrc    uint32
	seq     uint16
	ts      uint32
	at      int64 // arrival, ms
	drop    bool  // Rewrite must refuse it
	seqOut  uint16
	tsOut   uint32
	marker  bool
	comment string
}

func TestNormalizer(t *testing.T) {
	const a, b = 0xaaaa, 0xbbbb
	tests := []struct {
		name  string
		steps []step
	}{
		{"steady", []step{
			{ssrc: a, seq: 100, ts: 1000, at: 0, seqOut: 0, tsOut: 0, marker: true},
			{ssrc: a, seq: 101, ts: 1160, at: 20, seqOut: 1, tsOut: 160},
			{ssrc: a, seq: 102, ts: 1320, at: 40, seqOut: 2, tsOut: 320},
		}},
		{"sequence wraps", []step{
			{ssrc: a, seq: 65535, ts: 1000, at: 0, seqOut: 0, tsOut: 0, marker: true},
			{ssrc: a, seq: 0, ts: 1160, at: 20, seqOut: 1, tsOut: 160},
		}},
		{"new ssrc: ringback then callee", []step{
			{ssrc: a, seq: 100, ts: 1000, at: 0, seqOut: 0, tsOut: 0, marker: true},
			{ssrc: a, seq: 101, ts: 1160, at: 20, seqOut: 1, tsOut: 160},
			{ssrc: b, seq: 7000, ts: 999999, at: 40, seqOut: 2, tsOut: 320, marker: true, comment: "20 ms later: one frame"},
			{ssrc: b, seq: 7001, ts: 1000159, at: 60, seqOut: 3, tsOut: 480},
		}},
		{"new ssrc after silence advances by wall time", []step{
			{ssrc: a, seq: 100, ts: 1000, at: 0, seqOut: 0, tsOut: 0, marker: true},
			{ssrc: b, seq: 1, ts: 5, at: 1000, seqOut: 1, tsOut: 8000, marker: true},
		}},
		{"new ssrc at once advances by one frame", []step{
			{ssrc: a, seq: 100, ts: 1000, at: 0, seqOut: 0, tsOut: 0, marker: true},
			{ssrc: b, seq: 1, ts: 5, at: 1, seqOut: 1, tsOut: 160, marker: true},
		}},
		{"sequence jump ahead", []step{
			{ssrc: a, seq: 100, ts: 1000, at: 0, seqOut: 0, tsOut: 0, marker: true},
			{ssrc: a, seq: 3101, ts: 1160, at: 20, seqOut: 1, tsOut: 160, marker: true},
			{ssrc: a, seq: 3102, ts: 1320, at: 40, seqOut: 2, tsOut: 320},
		}},
		{"loss within the window is kept", []step{
			{ssrc: a, seq: 100, ts: 1000, at: 0, seqOut: 0, tsOut: 0, marker: true},
			{ssrc: a, seq: 3100, ts: 1000 + 3000*160, at: 60000, seqOut: 3000, tsOut: 3000 * 160},
		}},
		{"sequence jump behind", []step{
			{ssrc: a, seq: 1000, ts: 1000, at: 0, seqOut: 0, tsOut: 0, marker: true},
			{ssrc: a, seq: 899, ts: 1160, at: 20, seqOut: 1, tsOut: 160, marker: true, comment: "101 behind"},
		}},
		{"late packet within 100 is kept", []step{
			{ssrc: a, seq: 1000, ts: 100000, at: 0, seqOut: 0, tsOut: 0, marker: true},
			{ssrc: a, seq: 901, ts: 100000 - 99*160, at: 20, seqOut: 65437, tsOut: -99 * 160 & 0xffffffff},
		}},
		{"reordering and duplicates pass through", []step{
			{ssrc: a, seq: 100, ts: 1000, at: 0, seqOut: 0, tsOut: 0, marker: true},
			{ssrc: a, seq: 102, ts: 1320, at: 20, seqOut: 2, tsOut: 320},
			{ssrc: a, seq: 101, ts: 1160, at: 21, seqOut: 1, tsOut: 160},
			{ssrc: a, seq: 102, ts: 1320, at: 22, seqOut: 2, tsOut: 320},
			{ssrc: a, seq: 103, ts: 1480, at: 40, seqOut: 3, tsOut: 480},
		}},
		{"timestamp jump with continuous sequence", []step{
			{ssrc: a, seq: 100, ts: 1000, at: 0, seqOut: 0, tsOut: 0, marker: true},
			{ssrc: a, seq: 101, ts: 1000 + 90000, at: 20, seqOut: 1, tsOut: 160, marker: true},
			{ssrc: a, seq: 102, ts: 1160 + 90000, at: 40, seqOut: 2, tsOut: 320},
		}},
		{"timestamp backwards", []step{
			{ssrc: a, seq: 100, ts: 1000000, at: 0, seqOut: 0, tsOut: 0, marker: true},
			{ssrc: a, seq: 101, ts: 5, at: 20, seqOut: 1, tsOut: 160, marker: true},
		}},
		{"small timestamp gap passes through", []step{
			{ssrc: a, seq: 100, ts: 1000, at: 0, seqOut: 0, tsOut: 0, marker: true},
			{ssrc: a, seq: 101, ts: 1000 + 40000, at: 20, seqOut: 1, tsOut: 40000},
		}},
		{"straggler of the previous source is dropped", []step{
			{ssrc: a, seq: 100, ts: 1000, at: 0, seqOut: 0, tsOut: 0, marker: true},
			{ssrc: b, seq: 9, ts: 77, at: 20, seqOut: 1, tsOut: 160, marker: true},
			{ssrc: a, seq: 101, ts: 1160, at: 25, drop: true},
			{ssrc: b, seq: 10, ts: 237, at: 40, seqOut: 2, tsOut: 320},
			{ssrc: a, seq: 200, ts: 17000, at: 300, seqOut: 3, tsOut: 320 + 2080, marker: true, comment: "after the window: switch back"},
		}},
		{"input marker is kept", []step{
			{ssrc: a, seq: 100, ts: 1000, at: 0, seqOut: 0, tsOut: 0, marker: true},
			{ssrc: a, seq: 101, ts: 1160, at: 20, seqOut: 1, tsOut: 160, marker: true, comment: "marked on input"},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			runSteps(t, tc.steps)
		})
	}
}

func runSteps(t *testing.T, steps []step) {
	const out = 0x5eed
	n := NewNormalizer(out)
	var seq0 uint16
	var ts0 uint32
	for i, s := range steps {
		p := pkt(s.ssrc, s.seq, s.ts)
		if s.comment == "marked on input" {
			p[1] |= 0x80
		}
		orig := append([]byte(nil), p...)
		if ok := n.Rewrite(p, 8000, ms(s.at)); ok == s.drop {
			t.Fatalf("step %d: Rewrite = %v, want %v", i, ok, !s.drop)
		}
		if s.drop {
			if string(p) != string(orig) {
				t.Fatalf("step %d: a refused packet was changed", i)
			}
			continue
		}
		h := header(t, p)
		if i == 0 {
			seq0, ts0 = h.SequenceNumber, h.Timestamp
		}
		if h.SSRC != out || h.SequenceNumber-seq0 != s.seqOut || h.Timestamp-ts0 != s.tsOut || h.Marker != s.marker {
			t.Fatalf("step %d (%s): ssrc %#x seq +%d ts +%d marker %v; want %#x +%d +%d %v",
				i, s.comment, h.SSRC, h.SequenceNumber-seq0, h.Timestamp-ts0, h.Marker, out, s.seqOut, s.tsOut, s.marker)
		}
		if string(p[12:]) != string(orig[12:]) {
			t.Fatalf("step %d: payload changed", i)
		}
		if n.InSSRC() != s.ssrc {
			t.Fatalf("step %d: InSSRC = %#x, want %#x", i, n.InSSRC(), s.ssrc)
		}
	}
}

func TestNormalizerRefusesNonRTP(t *testing.T) {
	n := NewNormalizer(1)
	for _, p := range [][]byte{nil, {0x80, 0}, pkt(1, 1, 1)[:11], {0x81, 200, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0}} {
		if n.Rewrite(p, 8000, 0) {
			t.Errorf("Rewrite(% x) = true, want false", p)
		}
	}
	if n.InSSRC() != 0 || n.OutSSRC() != 1 {
		t.Fatalf("InSSRC %d OutSSRC %d, want 0 and 1", n.InSSRC(), n.OutSSRC())
	}
}

func TestNormalizerClockRateZero(t *testing.T) {
	n := NewNormalizer(1)
	a, b := pkt(1, 1, 1), pkt(2, 1, 1)
	n.Rewrite(a, 0, 0)
	n.Rewrite(b, 0, ms(1))
	if d := rtpTS(b) - rtpTS(a); d != 160 {
		t.Fatalf("new segment advanced %d, want 160 (20 ms at the default 8000 Hz)", d)
	}
}

// TestNormalizerNext injects packets between relayed ones: the output
// stays one continuous sequence.
func TestNormalizerNext(t *testing.T) {
	n := NewNormalizer(9)
	first, _ := n.Next(160, ms(0)) // before any packet: still usable
	p0 := pkt(1, 100, 1000)
	n.Rewrite(p0, 8000, ms(10))
	if rtpSeq(p0) != first+1 {
		t.Fatalf("first relayed seq %d, want %d", rtpSeq(p0), first+1)
	}
	p1 := pkt(1, 101, 1160)
	n.Rewrite(p1, 8000, ms(30))
	seq, ts := n.Next(160, ms(35))
	if seq != rtpSeq(p1)+1 || ts != rtpTS(p1)+160 {
		t.Fatalf("Next = %d %d, want %d %d", seq, ts, rtpSeq(p1)+1, rtpTS(p1)+160)
	}
	seq2, ts2 := n.Next(0, ms(85))
	if seq2 != seq+1 || ts2 != ts+400 {
		t.Fatalf("second Next = %d %d, want %d %d (50 ms later)", seq2, ts2, seq+1, ts+400)
	}
	p2 := pkt(1, 102, 1320)
	n.Rewrite(p2, 8000, ms(90))
	if rtpSeq(p2) != seq2+1 || rtpTS(p2) != rtpTS(p1)+160 || rtpMarker(p2) {
		t.Fatalf("relayed after Next: seq %d ts %d marker %v; want %d %d false",
			rtpSeq(p2), rtpTS(p2), rtpMarker(p2), seq2+1, rtpTS(p1)+160)
	}
	p3 := pkt(2, 5, 5)
	n.Rewrite(p3, 8000, ms(190))
	if rtpSeq(p3) != rtpSeq(p2)+1 || rtpTS(p3) != rtpTS(p2)+800 {
		t.Fatalf("new source after Next: seq %d ts %d, want %d %d", rtpSeq(p3), rtpTS(p3), rtpSeq(p2)+1, rtpTS(p2)+800)
	}
}

// TestNormalizerNextConcurrent reserves sequence numbers from another
// goroutine while the reader relays: together they use every number
// once.
func TestNormalizerNextConcurrent(t *testing.T) {
	const relayed, injected = 3000, 600
	n := NewNormalizer(9)
	// The first number, taken before the injecting goroutine starts: it
	// is the lowest of the run, and seen has one writer until then.
	base, _ := n.Next(0, 0)
	seen := map[uint16]int{base: 1}
	var mu sync.Mutex
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := range injected {
			seq, _ := n.Next(0, ms(int64(i)))
			mu.Lock()
			seen[seq]++
			mu.Unlock()
		}
	})
	for i := range relayed {
		p := pkt(1, uint16(i), uint32(i*160))
		if !n.Rewrite(p, 8000, ms(int64(i))) {
			t.Fatalf("packet %d refused", i)
		}
		mu.Lock()
		seen[rtpSeq(p)]++
		mu.Unlock()
	}
	wg.Wait()
	for i := range relayed + injected + 1 {
		if c := seen[base+uint16(i)]; c != 1 {
			t.Fatalf("sequence number base+%d used %d times", i, c)
		}
	}
}

func TestNormalizerDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under the race detector")
	}
	n := NewNormalizer(1)
	p := pkt(1, 0, 0)
	var seq uint16
	var at int64
	allocs := testing.AllocsPerRun(1000, func() {
		seq++
		at += ms(20)
		p[2], p[3] = byte(seq>>8), byte(seq)
		p[8] = byte(seq / 100) // a new source now and then
		n.Rewrite(p, 8000, at)
		n.Next(160, at)
		n.InSSRC()
	})
	if allocs != 0 {
		t.Fatalf("Rewrite allocates %.1f times per packet, want 0", allocs)
	}
}
