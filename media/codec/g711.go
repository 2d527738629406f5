package codec

// G.711 µ-law and A-law (ITU-T G.711), by the segment tables' formulas.

type g711Decoder struct {
	alaw bool
	fade fader
}

func newG711Decoder(alaw bool) *g711Decoder {
	return &g711Decoder{alaw: alaw, fade: newFader(8000)}
}

func (d *g711Decoder) SampleRate() int { return 8000 }

// Decode turns each byte into one sample; every byte is valid.
func (d *g711Decoder) Decode(pcm []int16, payload []byte) ([]int16, error) {
	start := len(pcm)
	for _, b := range payload {
		if d.alaw {
			pcm = append(pcm, ALawToLinear(b))
		} else {
			pcm = append(pcm, ULawToLinear(b))
		}
	}
	d.fade.remember(pcm[start:])
	return pcm, nil
}

// Conceal fades the last decoded audio out (G.711 has no concealment of
// its own; Appendix I's is not implemented).
func (d *g711Decoder) Conceal(pcm []int16, n int) []int16 {
	return d.fade.conceal(pcm, n)
}

type g711Encoder struct{ alaw bool }

func (e g711Encoder) SampleRate() int { return 8000 }

func (e g711Encoder) Encode(out []byte, pcm []int16) ([]byte, error) {
	for _, s := range pcm {
		if e.alaw {
			out = append(out, LinearToALaw(s))
		} else {
			out = append(out, LinearToULaw(s))
		}
	}
	return out, nil
}

const ulawBias = 0x84

// LinearToULaw encodes one 16-bit sample as µ-law.
func LinearToULaw(s int16) byte {
	v := int(s)
	sign := 0
	if v < 0 {
		v = -v
		sign = 0x80
	}
	if v > 32635 {
		v = 32635
	}
	v += ulawBias
	exp := 7
	for mask := 0x4000; v&mask == 0 && exp > 0; mask >>= 1 {
		exp--
	}
	mant := (v >> (exp + 3)) & 0x0f
	return ^byte(sign | exp<<4 | mant)
}

// ULawToLinear decodes one µ-law byte.
func ULawToLinear(u byte) int16 {
	u = ^u
	exp := int(u>>4) & 7
	mant := int(u & 0x0f)
	v := ((mant << 3) + ulawBias) << exp
	v -= ulawBias
	if u&0x80 != 0 {
		return int16(-v)
	}
	return int16(v)
}

// LinearToALaw encodes one 16-bit sample as A-law.
func LinearToALaw(s int16) byte {
	v := int(s) >> 3 // 13-bit
	mask := byte(0xd5)
	if v < 0 {
		v = -v - 1
		mask = 0x55
	}
	if v > 0xfff {
		v = 0xfff
	}
	var b byte
	if v < 32 {
		b = byte(v >> 1)
	} else {
		exp := 1
		for t := v >> 5; t > 1; t >>= 1 {
			exp++
		}
		b = byte(exp<<4) | byte((v>>exp)&0x0f)
	}
	return b ^ mask
}

// ALawToLinear decodes one A-law byte.
func ALawToLinear(a byte) int16 {
	a ^= 0x55
	exp := int(a>>4) & 7
	mant := int(a & 0x0f)
	var v int
	if exp == 0 {
		v = mant<<4 + 8
	} else {
		v = (mant<<4 + 0x108) << (exp - 1)
	}
	if a&0x80 == 0 {
		return int16(-v)
	}
	return int16(v)
}
