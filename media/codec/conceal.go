package codec

// fader conceals lost packets for codecs without loss concealment of
// their own (G.711, G.722): the last 5 ms decoded are repeated with a
// gain falling linearly to zero over 20 ms, then silence until audio
// arrives again. Better than a hole or garbage, never louder than what
// came before.
type fader struct {
	rate int
	hist [80]int16 // the last 5 ms at up to 16 kHz, oldest first
	n    int       // samples of hist in use (rate/200)
	lost int       // samples concealed since the last decoded ones
}

func newFader(rate int) fader {
	return fader{rate: rate, n: min(rate/200, 80)}
}

// remember keeps the tail of freshly decoded audio.
func (f *fader) remember(pcm []int16) {
	f.lost = 0
	if len(pcm) >= f.n {
		copy(f.hist[:f.n], pcm[len(pcm)-f.n:])
		return
	}
	copy(f.hist[:f.n], f.hist[len(pcm):f.n])
	copy(f.hist[f.n-len(pcm):f.n], pcm)
}

// conceal appends n samples standing in for lost audio.
func (f *fader) conceal(pcm []int16, n int) []int16 {
	span := f.rate / 50 // fade length: 20 ms
	for range n {
		var s int16
		if f.lost < span && f.n > 0 {
			g := int32(span - f.lost)
			s = int16(int32(f.hist[f.lost%f.n]) * g / int32(span))
		}
		pcm = append(pcm, s)
		f.lost++
	}
	return pcm
}
