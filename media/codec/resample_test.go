package codec

import (
	"fmt"
	"math"
	"slices"
	"testing"
)

// TestResampleTone: a 1 kHz tone converted between every pair of rates
// keeps its frequency and level, with the SNR of a clean filter.
func TestResampleTone(t *testing.T) {
	rates := []int{8000, 16000, 48000}
	for _, in := range rates {
		for _, out := range rates {
			t.Run(fmt.Sprintf("%d-%d", in, out), func(t *testing.T) {
				r, err := NewResampler(in, out)
				if err != nil {
					t.Fatal(err)
				}
				var got []int16
				for i := range 50 { // 1 s in 20 ms pieces
					got = r.Resample(got, sine(in, 1000, 12000, i*in/50, in/50))
				}
				if len(got) != out {
					t.Fatalf("1 s at %d Hz gave %d samples at %d Hz", in, len(got), out)
				}
				checkTone(t, "resampled", got[out/10:], out, 1000, 12000, 60)
			})
		}
	}
}

// TestResampleNoAliasing: tones above 4 kHz at 48 kHz must not fold into
// the 8 kHz side's band (a 5 kHz tone would come out at 3 kHz), and the
// band edge passes.
func TestResampleNoAliasing(t *testing.T) {
	for _, tc := range []struct {
		in, freq, alias float64
		outRate         int
	}{
		{48000, 5000, 3000, 8000},
		{48000, 4500, 3500, 8000},
		{48000, 7000, 1000, 8000}, // would fold onto 1 kHz
		{16000, 5000, 3000, 8000},
		{48000, 9000, 7000, 16000},
	} {
		r, _ := NewResampler(int(tc.in), tc.outRate)
		got := r.Resample(nil, sine(int(tc.in), tc.freq, 20000, 0, int(tc.in)))
		got = got[tc.outRate/10:]
		a, _ := fitSine(got, tc.outRate, tc.alias)
		level := 20 * math.Log10(math.Max(math.Max(a, rms(got)*math.Sqrt2), 1e-3)/20000)
		t.Logf("%.0f Hz at %.0f Hz -> %d Hz: %.1f dB", tc.freq, tc.in, tc.outRate, level)
		if level > -60 {
			t.Errorf("%.0f Hz at %.0f Hz reaches %d Hz at %.1f dB, want below -60 dB", tc.freq, tc.in, tc.outRate, level)
		}
	}
	r, _ := NewResampler(48000, 8000)
	got := r.Resample(nil, sine(48000, 3400, 20000, 0, 48000))
	if a, _ := fitSine(got[800:], 8000, 3400); a < 20000*0.7 {
		t.Errorf("3.4 kHz passed at amplitude %.0f of 20000", a)
	}
}

// TestResamplePieces: feeding a stream in pieces of any length gives the
// same output as feeding it at once (the history carries over).
func TestResamplePieces(t *testing.T) {
	for _, rates := range [][2]int{{8000, 48000}, {48000, 8000}, {16000, 8000}, {48000, 16000}} {
		in := sine(rates[0], 700, 9000, 0, rates[0]/5)
		r1, _ := NewResampler(rates[0], rates[1])
		whole := r1.Resample(nil, in)
		r2, _ := NewResampler(rates[0], rates[1])
		var pieces []int16
		for i, step := 0, 1; i < len(in); i, step = i+step, step%37+1 {
			pieces = r2.Resample(pieces, in[i:min(i+step, len(in))])
		}
		if !slices.Equal(whole, pieces) {
			t.Errorf("%d to %d Hz: pieces differ from the whole (%d vs %d samples)", rates[0], rates[1], len(pieces), len(whole))
		}
	}
	if _, err := NewResampler(8000, 12345); err == nil {
		t.Error("8000 to 12345 Hz accepted")
	}
}
