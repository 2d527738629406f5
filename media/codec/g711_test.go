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
