package codec

import (
	"math"
	"testing"
)

// Signal measurements the codec tests share.

// sine returns n samples of a tone of freq Hz at rate, amplitude amp,
// starting at sample offset start (so consecutive calls continue it).
func sine(rate int, freq, amp float64, start, n int) []int16 {
	out := make([]int16, n)
	for i := range out {
		out[i] = int16(math.Round(amp * math.Sin(2*math.Pi*freq*float64(start+i)/float64(rate))))
	}
	return out
}

// fitSine fits a·sin + b·cos at freq to x (least squares) and returns the
// tone's amplitude and the ratio in dB of its power to the power of
// everything else in x (noise, distortion, other frequencies). Delay and
// phase do not matter; a wrong frequency, dropped or repeated samples
// and garbage all lower the SNR.
func fitSine(x []int16, rate int, freq float64) (amp, snrDB float64) {
	var ss, sc, cc, xs, xc float64
	for i, v := range x {
		w := 2 * math.Pi * freq * float64(i) / float64(rate)
		s, c := math.Sin(w), math.Cos(w)
		ss += s * s
		sc += s * c
		cc += c * c
		xs += float64(v) * s
		xc += float64(v) * c
	}
	det := ss*cc - sc*sc
	a := (xs*cc - xc*sc) / det
	b := (xc*ss - xs*sc) / det
	var sig, res float64
	for i, v := range x {
		w := 2 * math.Pi * freq * float64(i) / float64(rate)
		f := a*math.Sin(w) + b*math.Cos(w)
		sig += f * f
		res += (float64(v) - f) * (float64(v) - f)
	}
	if res == 0 {
		res = 1e-9
	}
	return math.Hypot(a, b), 10 * math.Log10(sig/res)
}

// zeroCrossFreq estimates the frequency of a tone from its rising zero
// crossings (interpolated between samples).
func zeroCrossFreq(x []int16, rate int) float64 {
	first, last := -1.0, -1.0
	n := 0
	for i := 1; i < len(x); i++ {
		if x[i-1] < 0 && x[i] >= 0 {
			t := float64(i-1) + float64(-x[i-1])/float64(int(x[i])-int(x[i-1]))
			if first < 0 {
				first = t
			} else {
				n++
			}
			last = t
		}
	}
	if n == 0 {
		return 0
	}
	return float64(n) * float64(rate) / (last - first)
}

// rms returns the root mean square of x.
func rms(x []int16) float64 {
	var s float64
	for _, v := range x {
		s += float64(v) * float64(v)
	}
	return math.Sqrt(s / float64(max(len(x), 1)))
}

// checkTone fails t unless x holds a clean tone of freq: the frequency
// within 0.5 %, SNR of at least minSNR dB, amplitude within 3 dB of want.
func checkTone(t *testing.T, what string, x []int16, rate int, freq, want, minSNR float64) {
	t.Helper()
	f := zeroCrossFreq(x, rate)
	amp, snr := fitSine(x, rate, freq)
	t.Logf("%s: %.1f Hz, amplitude %.0f, SNR %.1f dB", what, f, amp, snr)
	if math.Abs(f-freq) > freq*0.005 {
		t.Errorf("%s: frequency %.1f Hz, want %.0f Hz", what, f, freq)
	}
	if snr < minSNR {
		t.Errorf("%s: SNR %.1f dB, want at least %.0f dB", what, snr, minSNR)
	}
	if amp < want/math.Sqrt2 || amp > want*math.Sqrt2 {
		t.Errorf("%s: amplitude %.0f, want about %.0f", what, amp, want)
	}
}
