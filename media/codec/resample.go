package codec

import (
	"fmt"
	"math"
	"sync"
)

// Resampling between the codecs' rates (8, 16 and 48 kHz), whose ratios
// are integers: a windowed-sinc low-pass FIR (Kaiser window) run as a
// polyphase filter, so only the samples kept are computed. The cut-off is
// 0.4625 of the lower rate (3.7 kHz between 8 and 48 kHz) with about
// 70 dB of stopband, so a 48 kHz side's content above 4 kHz does not fold
// into an 8 kHz side's band.

const (
	resampleTaps   = 48     // taps per phase: N = 48·ratio taps at the higher rate
	resampleCutoff = 0.4625 // cut-off as a fraction of the lower rate
	resampleBeta   = 7.0    // Kaiser window β: about 70 dB stopband
)

// Resampler converts 16-bit mono audio from one rate to another whose
// ratio to it is an integer. It keeps the filter's history between calls,
// so a stream can be fed in pieces of any length. Not safe for
// concurrent use.
type Resampler struct {
	up, down int         // the ratio: one of them is 1
	k        int         // history kept: taps per phase (up) or all taps (down) minus 1
	phases   [][]float32 // up: one filter per output phase; down: the one filter
	buf      []float32   // history followed by the input being processed
	skip     int         // down: input samples to pass before the next output
}

// NewResampler returns a resampler from rate in to rate out (Hz), whose
// ratio must be an integer (either way).
func NewResampler(in, out int) (*Resampler, error) {
	switch {
	case in <= 0 || out <= 0:
	case in == out:
		return &Resampler{up: 1, down: 1}, nil
	case out%in == 0:
		return newResampler(out/in, 1), nil
	case in%out == 0:
		return newResampler(1, in/out), nil
	}
	return nil, fmt.Errorf("resample %d Hz to %d Hz: not an integer ratio", in, out)
}

// filters holds the filters designed so far, by ratio: they never
// change, so every Resampler of a ratio shares them.
var filters = struct {
	sync.Mutex
	m map[[2]int][][]float32
}{m: map[[2]int][][]float32{}}

func newResampler(up, down int) *Resampler {
	rs := &Resampler{up: up, down: down, k: resampleTaps - 1}
	if up == 1 {
		rs.k = resampleTaps*down - 1
	}
	filters.Lock()
	ph, ok := filters.m[[2]int{up, down}]
	if !ok {
		ph = designFilter(up, down)
		filters.m[[2]int{up, down}] = ph
	}
	filters.Unlock()
	rs.phases = ph
	rs.buf = make([]float32, rs.k, rs.k+960)
	return rs
}

// designFilter returns the polyphase filters for a ratio.
func designFilter(up, down int) [][]float32 {
	r := max(up, down)
	n := resampleTaps * r
	h := kaiserLowpass(n, resampleCutoff/float64(r))
	var phases [][]float32
	if up > 1 {
		// Phase p uses taps p, p+L, p+2L... scaled by L (the zeros
		// stuffed between input samples take that gain away), stored
		// oldest-sample-first for a forward dot product.
		for p := range up {
			ph := make([]float32, resampleTaps)
			for t := range resampleTaps {
				ph[resampleTaps-1-t] = float32(h[p+t*up] * float64(up))
			}
			phases = append(phases, ph)
		}
		return phases
	}
	f := make([]float32, n)
	for i := range n {
		f[i] = float32(h[i]) // symmetric: no reversal needed
	}
	return [][]float32{f}
}

// kaiserLowpass designs an n-tap low-pass with cut-off fc (a fraction of
// the sampling rate), normalized to unity gain at DC.
func kaiserLowpass(n int, fc float64) []float64 {
	h := make([]float64, n)
	mid := float64(n-1) / 2
	var sum float64
	for i := range n {
		x := float64(i) - mid
		v := 2 * fc
		if x != 0 {
			v = math.Sin(2*math.Pi*fc*x) / (math.Pi * x)
		}
		w := 2*float64(i)/float64(n-1) - 1
		v *= bessel0(resampleBeta*math.Sqrt(1-w*w)) / bessel0(resampleBeta)
		h[i] = v
		sum += v
	}
	for i := range h {
		h[i] /= sum
	}
	return h
}

// bessel0 is the modified Bessel function of the first kind, order 0.
func bessel0(x float64) float64 {
	sum, term := 1.0, 1.0
	for k := 1; k < 50; k++ {
		term *= (x / (2 * float64(k))) * (x / (2 * float64(k)))
		sum += term
		if term < 1e-12*sum {
			break
		}
	}
	return sum
}

// Delay returns the filter's delay in output samples.
func (r *Resampler) Delay() int {
	if r.up == r.down {
		return 0
	}
	return (resampleTaps*max(r.up, r.down) - 1) / 2 / r.down
}

// Resample appends in, converted, to out and returns it.
func (r *Resampler) Resample(out, in []int16) []int16 {
	if r.up == r.down {
		return append(out, in...)
	}
	for _, s := range in {
		r.buf = append(r.buf, float32(s))
	}
	if r.up > 1 {
		out = r.interpolate(out)
	} else {
		out = r.decimate(out)
	}
	// Keep the last k samples as the next call's history.
	n := copy(r.buf, r.buf[len(r.buf)-r.k:])
	r.buf = r.buf[:n]
	return out
}

func (r *Resampler) interpolate(out []int16) []int16 {
	for i := r.k; i < len(r.buf); i++ {
		x := r.buf[i-r.k : i+1]
		for _, ph := range r.phases {
			out = append(out, toInt16(dot(ph, x)))
		}
	}
	return out
}

func (r *Resampler) decimate(out []int16) []int16 {
	h := r.phases[0]
	i := r.k + r.skip
	for ; i < len(r.buf); i += r.down {
		out = append(out, toInt16(dot(h, r.buf[i-r.k:i+1])))
	}
	r.skip = i - len(r.buf)
	return out
}

// dot is the inner product of two slices of the same length.
func dot(h, x []float32) float32 {
	x = x[:len(h)]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(h); i += 4 {
		s0 += h[i] * x[i]
		s1 += h[i+1] * x[i+1]
		s2 += h[i+2] * x[i+2]
		s3 += h[i+3] * x[i+3]
	}
	for ; i < len(h); i++ {
		s0 += h[i] * x[i]
	}
	return s0 + s1 + s2 + s3
}

func toInt16(v float32) int16 {
	switch {
	case v >= 32767:
		return 32767
	case v <= -32768:
		return -32768
	case v < 0:
		return int16(v - 0.5)
	}
	return int16(v + 0.5)
}
