package codec

import "testing"

func TestG711RoundTrip(t *testing.T) {
	for _, s := range []int16{0, 1, -1, 100, -100, 1000, -1000, 8000, -8000, 32000, -32000, 32767, -32768} {
		for _, alaw := range []bool{false, true} {
			var got int16
			if alaw {
				got = ALawToLinear(LinearToALaw(s))
			} else {
				got = ULawToLinear(LinearToULaw(s))
			}
			d := int(got) - int(s)
			if d < 0 {
				d = -d
			}
			lim := int(s) / 16
			if lim < 0 {
				lim = -lim
			}
			if lim < 40 {
				lim = 40
			}
			if d > lim {
				t.Errorf("alaw=%v %d -> %d (err %d > %d)", alaw, s, got, d, lim)
			}
		}
	}
}

// TestG711Reference checks values of ITU-T G.711's tables (µ-law Table 2,
// A-law Table 1; 16-bit scaling: µ-law values ×4, A-law ×8; codes with
// the top bit set are positive).
func TestG711Reference(t *testing.T) {
	for _, c := range []struct {
		code byte
		lin  int16
	}{
		{0xff, 0}, {0x7f, 0}, // µ-law zero: both signs
		{0x80, 32124}, {0x00, -32124}, // full scale (8031·4)
		{0xfe, 8}, {0x7e, -8}, // smallest step (2·4)
		{0xf0, 120}, {0xef, 132}, {0xdf, 396}, {0x8f, 16764}, // segment starts
		{0x70, -120},
	} {
		if got := ULawToLinear(c.code); got != c.lin {
			t.Errorf("µ-law 0x%02x decodes to %d, want %d", c.code, got, c.lin)
		}
	}
	for _, c := range []struct {
		code byte
		lin  int16
	}{
		{0xd5, 8}, {0x55, -8}, // A-law's smallest levels (1·8)
		{0xaa, 32256}, {0x2a, -32256}, // full scale (4032·8)
		{0xd4, 24}, {0xc5, 264}, {0xf5, 528}, {0x80, 5504}, {0x00, -5504},
	} {
		if got := ALawToLinear(c.code); got != c.lin {
			t.Errorf("A-law 0x%02x decodes to %d, want %d", c.code, got, c.lin)
		}
	}
	for _, c := range []struct {
		lin        int16
		ulaw, alaw byte
	}{
		{0, 0xff, 0xd5}, {-1, 0x7f, 0x55}, {32767, 0x80, 0xaa}, {-32768, 0x00, 0x2a},
	} {
		if got := LinearToULaw(c.lin); got != c.ulaw {
			t.Errorf("%d encodes to µ-law 0x%02x, want 0x%02x", c.lin, got, c.ulaw)
		}
		if got := LinearToALaw(c.lin); got != c.alaw {
			t.Errorf("%d encodes to A-law 0x%02x, want 0x%02x", c.lin, got, c.alaw)
		}
	}
}

// TestG711EveryCode: decoding any byte and encoding the result gives
// the byte back (µ-law's two zeros both encode as 0xff), and encoding is
// monotonic over the whole 16-bit range.
func TestG711EveryCode(t *testing.T) {
	for c := range 256 {
		b := byte(c)
		want := b
		if b == 0x7f {
			want = 0xff // -0 and +0 are the same sample
		}
		if got := LinearToULaw(ULawToLinear(b)); got != want {
			t.Errorf("µ-law 0x%02x -> %d -> 0x%02x", b, ULawToLinear(b), got)
		}
		if got := LinearToALaw(ALawToLinear(b)); got != b {
			t.Errorf("A-law 0x%02x -> %d -> 0x%02x", b, ALawToLinear(b), got)
		}
	}
	prevU, prevA := ULawToLinear(LinearToULaw(-32768)), ALawToLinear(LinearToALaw(-32768))
	for s := -32767; s <= 32767; s++ {
		u, a := ULawToLinear(LinearToULaw(int16(s))), ALawToLinear(LinearToALaw(int16(s)))
		if u < prevU || a < prevA {
			t.Fatalf("encoding not monotonic at %d", s)
		}
		prevU, prevA = u, a
	}
}
