package codec

import (
	"math"
	"testing"
)

// TestTranscodeLoss drops packets on the From side: the To side still
// gets an unbroken stream (every sequence number, timestamps without
// jumps, one packet per 20 ms), nothing louder than the tone (no garbage),
// and where the codec has concealment (Opus PLC, FEC for one lost packet)
// the tone goes on through the gap.
func TestTranscodeLoss(t *testing.T) {
	type lossCase struct {
		name     string
		from, to Format
		drop     []int
		minSNR   float64 // of the whole received tone; 0: not checked (fade-out)
		maxPeak  float64 // the loudest sample allowed, times the tone's amplitude
	}
	cases := []lossCase{
		{"pcmu-fade", fmtPCMU, fmtG722, []int{20, 30, 31}, 0, 1.25},
		{"g722-fade", fmtG722, fmtPCMA, []int{20, 30, 31, 32}, 0, 1.25},
	}
	if Supported("opus") {
		cases = append(cases,
			// One packet lost at a time: FEC rebuilds it (10.9 dB with
			// concealment alone, 33.6 with FEC when this was written).
			lossCase{"opus-fec", fmtOpus, fmtPCMU, []int{20, 35}, 20, 1.25},
			// Bursts: libopus conceals, fading out; its predictors then
			// take about 200 ms to settle, overshooting the tone (peaks
			// 1.55 times it at complexity 10, 1.68 at 5: the codec's own
			// behaviour; garbage would reach full scale, 4 times).
			lossCase{"opus-plc", fmtOpus, fmtPCMU, []int{20, 21, 35, 36, 37}, 0, 1.85},
			lossCase{"to-opus", fmtPCMU, fmtOpus, []int{20, 30, 31}, 0, 1.25},
		)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tr, err := NewTranscoder(Direction{From: c.from, To: c.to, FromDTMF: -1, ToDTMF: -1, SSRC: 1})
			if err != nil {
				t.Fatal(err)
			}
			s := newSender(t, c.from, 20)
			r := newReceiver(t, c.to, 1)
			dropped := map[int]bool{}
			for _, i := range c.drop {
				dropped[i] = true
			}
			for i := range 60 {
				p := s.next(1000, 8000)
				if !dropped[i] {
					_ = tr.Packet(p, r.emit)
				}
			}
			if r.packets < 59 || r.jumps != 0 {
				t.Errorf("%d packets (want 59 or 60), %d timestamp jumps", r.packets, r.jumps)
			}
			rate := r.dec.SampleRate()
			peak := 0.0
			for _, v := range r.pcm {
				peak = math.Max(peak, math.Abs(float64(v)))
			}
			if peak > 8000*c.maxPeak {
				t.Errorf("peak %.0f: more than %.2f times the 8000 tone", peak, c.maxPeak)
			}
			if c.minSNR > 0 {
				checkTone(t, "through the loss", r.pcm[rate/5:], rate, 1000, 8000, c.minSNR)
			}
		})
	}
}

// TestTranscodeLateAndDuplicate: a packet arriving after the one behind
// it (already concealed) and a duplicate are dropped; the To stream stays
// one packet per 20 ms.
func TestTranscodeLateAndDuplicate(t *testing.T) {
	tr, _ := NewTranscoder(Direction{From: fmtPCMU, To: fmtPCMA, FromDTMF: -1, ToDTMF: -1, SSRC: 1})
	s := newSender(t, fmtPCMU, 20)
	r := newReceiver(t, fmtPCMA, 1)
	var ps [][]byte
	for range 20 {
		ps = append(ps, s.next(1000, 8000))
	}
	order := []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 10, 12, 12, 13, 11, 14, 15, 16, 17, 18, 19}
	for _, i := range order {
		_ = tr.Packet(ps[i], r.emit)
	}
	if r.packets != 20 || r.jumps != 0 {
		t.Errorf("%d packets (want 20), %d jumps", r.packets, r.jumps)
	}
}

// TestTranscodeSilence: a sender leaving out its silence (timestamps jump
// by 1 s, sequence numbers go on, marker set: DTX or VAD) comes out with
// the same jump in time and the marker, not with a second of made-up
// audio.
func TestTranscodeSilence(t *testing.T) {
	for _, c := range []struct{ from, to Format }{{fmtPCMU, fmtG722}, {fmtG722, withPtime(fmtPCMA, 30)}} {
		tr, _ := NewTranscoder(Direction{From: c.from, To: c.to, FromDTMF: -1, ToDTMF: -1, SSRC: 1})
		s := newSender(t, c.from, 20)
		r := newReceiver(t, c.to, 1)
		for i := range 40 {
			p := s.next(1000, 8000)
			if i == 20 {
				s.ts += 8000 // 1 s left out
				p = s.next(1000, 8000)
				p[1] |= 0x80
			}
			_ = tr.Packet(p, r.emit)
		}
		// The jump, with what finished the packet under way, adds up to
		// the second left out.
		ptime := tr.PacketTime()
		if r.jumps != 1 || r.jumpTS > 8000 || r.jumpTS < 8000-uint32(8*ptime) {
			t.Errorf("%s to %s: %d jumps of %d ticks in all, want one of about 8000", c.from.Name, c.to.Name, r.jumps, r.jumpTS)
		}
		if want := 40 * 20 / ptime; r.packets < want-2 || r.packets > want+1 {
			t.Errorf("%s to %s: %d packets, want about %d", c.from.Name, c.to.Name, r.packets, want)
		}
	}
}

// TestTranscodeSlip: a sender whose timestamps run a few samples ahead
// now and then (its clock slipping) gets zeros for them, not a jump with
// the marker each time.
func TestTranscodeSlip(t *testing.T) {
	tr, _ := NewTranscoder(Direction{From: fmtPCMU, To: fmtPCMA, FromDTMF: -1, ToDTMF: -1, SSRC: 1})
	s := newSender(t, fmtPCMU, 20)
	r := newReceiver(t, fmtPCMA, 1)
	for i := range 50 {
		if i%10 == 9 {
			s.ts += 3
		}
		_ = tr.Packet(s.next(1000, 8000), r.emit)
	}
	if r.jumps != 0 || r.packets != 50 {
		t.Errorf("%d jumps, %d packets (want 0, 50)", r.jumps, r.packets)
	}
}
