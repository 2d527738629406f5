package codec

// G.722 (ITU-T G.722, 7 kHz audio within 64 kbit/s): sub-band ADPCM at
// 64 kbit/s (mode 1). 16 kHz audio is split by a 24-tap quadrature mirror
// filter into two 8 kHz sub-bands; the lower is coded with 6 bits per
// sample, the higher with 2, packed into one byte per pair of input
// samples (lower band in the six least significant bits). The RTP clock is
// 8000 although the audio is sampled at 16 kHz (RFC 3551 section 4.5.2).
//
// Written from the Recommendation's block descriptions (the names of the
// blocks are given where they start). The scaling follows the common
// 16-bit convention: the QMF's sub-band outputs are the 16-bit input
// halved, and the receive QMF doubles them back.

// qmf holds the 24 QMF coefficients h0..h23 (Table 11/G.722); the filter
// is symmetric, so the delay line (oldest first) is multiplied tap by tap.
var qmf = [24]int32{
	3, -11, -11, 53, 12, -156, 32, 362, -210, -805, 951, 3876,
	3876, 951, -805, -210, 362, 32, -156, 12, 53, -11, -11, 3,
}

// Lower sub-band quantizer decision levels, scaled by 2^-12 of the scale
// factor (Table 6/G.722, LL6 thresholds).
var q6 = [30]int32{
	0, 35, 72, 110, 150, 190, 233, 276, 323, 370, 422, 473, 530, 587, 650,
	714, 786, 858, 940, 1023, 1121, 1219, 1339, 1458, 1612, 1765, 1980,
	2195, 2557, 2919,
}

// 6-bit codes of the lower sub-band's 30 magnitude intervals, negative and
// positive (Table 6/G.722, ILN and ILP).
var (
	g722ILN = [30]uint8{
		63, 62, 31, 30, 29, 28, 27, 26, 25, 24, 23, 22, 21, 20, 19, 18,
		17, 16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4,
	}
	g722ILP = [30]uint8{
		61, 60, 59, 58, 57, 56, 55, 54, 53, 52, 51, 50, 49, 48, 47, 46,
		45, 44, 43, 42, 41, 40, 39, 38, 37, 36, 35, 34, 33, 32,
	}
)

// qm6 is the 6-bit inverse quantizer for the reconstructed lower band,
// qm4 the 4-bit one the predictor uses and qm2 the higher band's (Tables
// 7, 17, 9/G.722, already multiplied by 8).
var (
	qm6 = [64]int32{
		-136, -136, -136, -136, -24808, -21904, -19008, -16704,
		-14984, -13512, -12280, -11192, -10232, -9360, -8576, -7856,
		-7192, -6576, -6000, -5456, -4944, -4464, -4008, -3576,
		-3168, -2776, -2400, -2032, -1688, -1360, -1040, -728,
		24808, 21904, 19008, 16704, 14984, 13512, 12280, 11192,
		10232, 9360, 8576, 7856, 7192, 6576, 6000, 5456,
		4944, 4464, 4008, 3576, 3168, 2776, 2400, 2032,
		1688, 1360, 1040, 728, 432, 136, -432, -136,
	}
	qm4 = [16]int32{
		0, -20456, -12896, -8968, -6288, -4240, -2584, -1200,
		20456, 12896, 8968, 6288, 4240, 2584, 1200, 0,
	}
	qm2 = [4]int32{-7408, -1616, 7408, 1616}
)

// Log scale factor multipliers: wl by the 4-bit code's magnitude rl42,
// wh by the higher band's code's magnitude rh2 (Tables 8, 10/G.722).
var (
	rl42 = [16]int32{0, 7, 6, 5, 4, 3, 2, 1, 7, 6, 5, 4, 3, 2, 1, 0}
	wl   = [8]int32{-60, -30, 58, 172, 334, 538, 1198, 3042}
	rh2  = [4]int32{2, 1, 2, 1}
	wh   = [3]int32{0, -214, 798}
)

// ilb is the inverse logarithm table of SCALEL/SCALEH: 2048·2^(i/32),
// rounded (Table 15/G.722).
var ilb = [32]int32{
	2048, 2093, 2139, 2186, 2233, 2282, 2332, 2383, 2435, 2489, 2543, 2599,
	2656, 2714, 2774, 2834, 2896, 2960, 3025, 3091, 3158, 3228, 3298, 3371,
	3444, 3520, 3597, 3676, 3756, 3838, 3922, 4008,
}

func sat16(v int32) int32 {
	if v > 32767 {
		return 32767
	}
	if v < -32768 {
		return -32768
	}
	return v
}

func clampI32(v, lo, hi int32) int32 {
	return min(max(v, lo), hi)
}

// g722Band is one sub-band's adaptive predictor and scale factor.
type g722Band struct {
	s   int32    // predictor output (PREDIC)
	sz  int32    // zero section output (FILTEZ)
	r   [3]int32 // reconstructed signal r(n), r(n-1), r(n-2)
	a   [3]int32 // pole coefficients a1, a2 (index 1, 2)
	b   [7]int32 // zero coefficients b1..b6
	d   [7]int32 // quantized difference d(n)..d(n-6)
	p   [3]int32 // partially reconstructed p(n)..p(n-2)
	nb  int32    // log scale factor
	det int32    // scale factor
}

// sign is the sign bit of a 16-bit value as the Recommendation uses it:
// zero counts as positive.
func sign(v int32) bool { return v < 0 }

// update is block 4 (RECONS, PARREC, UPPOL2, UPPOL1, UPZERO, DELAYA,
// FILTEP, FILTEZ, PREDIC) for the quantized difference d.
func (b *g722Band) update(d int32) {
	b.d[0] = d
	b.r[0] = sat16(b.s + d)
	b.p[0] = sat16(b.sz + d)

	// UPPOL2
	s0, s1, s2 := sign(b.p[0]), sign(b.p[1]), sign(b.p[2])
	wd1 := sat16(b.a[1] * 4)
	wd2 := wd1
	if s0 == s1 {
		wd2 = min(-wd1, 32767) // 16-bit: -(-32768) saturates
	}
	wd2 >>= 7
	wd3 := int32(-128)
	if s0 == s2 {
		wd3 = 128
	}
	ap2 := clampI32(wd2+wd3+(b.a[2]*32512)>>15, -12288, 12288)

	// UPPOL1
	wd1 = -192
	if s0 == s1 {
		wd1 = 192
	}
	ap1 := wd1 + (b.a[1]*32640)>>15
	lim := 15360 - ap2
	ap1 = clampI32(ap1, -lim, lim)

	// UPZERO
	step := int32(0)
	if d != 0 {
		step = 128
	}
	for i := 1; i < 7; i++ {
		g := step
		if sign(d) != sign(b.d[i]) {
			g = -step
		}
		b.b[i] = sat16(g + (b.b[i]*32640)>>15)
	}

	// DELAYA
	for i := 6; i > 0; i-- {
		b.d[i] = b.d[i-1]
	}
	b.r[2], b.r[1] = b.r[1], b.r[0]
	b.p[2], b.p[1] = b.p[1], b.p[0]
	b.a[1], b.a[2] = ap1, ap2

	// FILTEP, FILTEZ, PREDIC
	sp := (b.a[1]*sat16(b.r[1]+b.r[1]))>>15 + (b.a[2]*sat16(b.r[2]+b.r[2]))>>15
	sp = sat16(sp)
	sz := int32(0)
	for i := 6; i > 0; i-- {
		sz += (b.b[i] * sat16(b.d[i]+b.d[i])) >> 15
	}
	b.sz = sat16(sz)
	b.s = sat16(sp + b.sz)
}

// scaleLow is LOGSCL and SCALEL for the lower band's 4-bit code il4.
func (b *g722Band) scaleLow(il4 int) {
	b.nb = clampI32((b.nb*32512)>>15+wl[rl42[il4]], 0, 18432)
	b.det = scale(b.nb, 8)
}

// scaleHigh is LOGSCH and SCALEH for the higher band's code ih.
func (b *g722Band) scaleHigh(ih int) {
	b.nb = clampI32((b.nb*32512)>>15+wh[rh2[ih]], 0, 22528)
	b.det = scale(b.nb, 10)
}

func scale(nb int32, shift int32) int32 {
	wd1 := ilb[(nb>>6)&31]
	wd2 := shift - nb>>11
	if wd2 < 0 {
		return (wd1 << -wd2) << 2
	}
	return (wd1 >> wd2) << 2
}

func newG722Bands() (lo, hi g722Band) {
	lo.det, hi.det = 32, 8
	return lo, hi
}

// g722Encoder is the G.722 transmitter at 64 kbit/s.
type g722Encoder struct {
	x      [24]int32 // QMF delay line, newest last
	lo, hi g722Band
}

func newG722Encoder() *g722Encoder {
	e := &g722Encoder{}
	e.lo, e.hi = newG722Bands()
	return e
}

func (e *g722Encoder) SampleRate() int { return 16000 }

// Encode codes pairs of samples into bytes; an odd last sample is coded
// as if followed by a repeat of itself.
func (e *g722Encoder) Encode(out []byte, pcm []int16) ([]byte, error) {
	for i := 0; i < len(pcm); i += 2 {
		s1 := pcm[i]
		s2 := s1
		if i+1 < len(pcm) {
			s2 = pcm[i+1]
		}
		out = append(out, e.encodePair(int32(s1), int32(s2)))
	}
	return out, nil
}

func (e *g722Encoder) encodePair(s1, s2 int32) byte {
	// Transmit QMF: the even and odd taps of the 24-tap filter.
	copy(e.x[:22], e.x[2:])
	e.x[22], e.x[23] = s1, s2
	// a: the taps on the older sample of each pair, b: on the newer.
	var a, b int32
	for i := 0; i < 24; i += 2 {
		a += e.x[i] * qmf[i]
		b += e.x[i+1] * qmf[i+1]
	}
	xl := sat16((b + a) >> 14)
	xh := sat16((b - a) >> 14)
	il := e.encodeLow(xl)
	ih := e.encodeHigh(xh)
	return byte(ih<<6 | il)
}

func (e *g722Encoder) encodeLow(xl int32) int {
	b := &e.lo
	// SUBTRA, QUANTL
	el := sat16(xl - b.s)
	wd := el
	if el < 0 {
		wd = -(el + 1)
	}
	i := 1
	for ; i < 30; i++ {
		if wd < (q6[i]*b.det)>>12 {
			break
		}
	}
	var il int
	if el < 0 {
		il = int(g722ILN[i-1])
	} else {
		il = int(g722ILP[i-1])
	}
	// INVQAL, then the scale factor and predictor update.
	ril := il >> 2
	d := (b.det * qm4[ril]) >> 15
	b.scaleLow(ril)
	b.update(d)
	return il
}

func (e *g722Encoder) encodeHigh(xh int32) int {
	b := &e.hi
	// SUBTRA, QUANTH
	eh := sat16(xh - b.s)
	wd := eh
	if eh < 0 {
		wd = -(eh + 1)
	}
	mih := 1
	if wd >= (564*b.det)>>12 {
		mih = 2
	}
	var ih int
	switch {
	case eh < 0 && mih == 1:
		ih = 1
	case eh < 0:
		ih = 0
	case mih == 1:
		ih = 3
	default:
		ih = 2
	}
	// INVQAH, then the scale factor and predictor update.
	d := (b.det * qm2[ih]) >> 15
	b.scaleHigh(ih)
	b.update(d)
	return ih
}

// g722Decoder is the G.722 receiver at 64 kbit/s.
type g722Decoder struct {
	x      [24]int32 // receive QMF delay line, newest last
	lo, hi g722Band
	fade   fader
}

func newG722Decoder() *g722Decoder {
	d := &g722Decoder{fade: newFader(16000)}
	d.lo, d.hi = newG722Bands()
	return d
}

func (d *g722Decoder) SampleRate() int { return 16000 }

// Decode turns each byte into two 16 kHz samples. Every byte is a valid
// code, so it never fails.
func (d *g722Decoder) Decode(pcm []int16, payload []byte) ([]int16, error) {
	start := len(pcm)
	for _, c := range payload {
		s1, s2 := d.decodeByte(c)
		pcm = append(pcm, s1, s2)
	}
	d.fade.remember(pcm[start:])
	return pcm, nil
}

// Conceal fades the last decoded audio out (G.722 has no loss
// concealment of its own; its predictors keep their state).
func (d *g722Decoder) Conceal(pcm []int16, n int) []int16 {
	return d.fade.conceal(pcm, n)
}

func (d *g722Decoder) decodeByte(c byte) (int16, int16) {
	il := int(c & 0x3f)
	ih := int(c >> 6)

	// Lower band: INVQBL for the output (6 bits), INVQAL for the
	// predictor (4 bits), as in the encoder.
	lo := &d.lo
	rl := clampI32(sat16(lo.s+(lo.det*qm6[il])>>15), -16384, 16383)
	ril := il >> 2
	dl := (lo.det * qm4[ril]) >> 15
	lo.scaleLow(ril)
	lo.update(dl)

	// Higher band.
	hi := &d.hi
	dh := (hi.det * qm2[ih]) >> 15
	rh := clampI32(sat16(hi.s+dh), -16384, 16383)
	hi.scaleHigh(ih)
	hi.update(dh)

	// Receive QMF.
	copy(d.x[:22], d.x[2:])
	d.x[22] = rl + rh
	d.x[23] = rl - rh
	var x1, x2 int32
	for i := 0; i < 24; i += 2 {
		x2 += d.x[i] * qmf[i]
		x1 += d.x[i+1] * qmf[i+1]
	}
	return int16(sat16(x1 >> 11)), int16(sat16(x2 >> 11))
}
