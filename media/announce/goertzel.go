package announce

import "math"

// Goertzel returns the power of frequency freq in pcm sampled at rate,
// normalized so that a full-scale sine at freq gives about 0.25 whatever
// len(pcm) is. Tests use it to tell a tone in decoded audio.
func Goertzel(pcm []int16, rate int, freq float64) float64 {
	if len(pcm) == 0 || rate <= 0 {
		return 0
	}
	w := 2 * math.Pi * freq / float64(rate)
	coeff := 2 * math.Cos(w)
	var s1, s2 float64
	for _, x := range pcm {
		s := float64(x)/32768 + coeff*s1 - s2
		s2, s1 = s1, s
	}
	p := s1*s1 + s2*s2 - coeff*s1*s2
	n := float64(len(pcm))
	return p / (n * n)
}
