package codec

import (
	"encoding/binary"
	"math"
	"os"
	"testing"
)

// TestG722Tables checks the inverse-log table against its definition
// (2048·2^(i/32)) and the inverse quantizer against the quantizer: each
// code's reconstruction level lies inside the interval coding it.
func TestG722Tables(t *testing.T) {
	for i, v := range ilb {
		if want := int32(math.Round(2048 * math.Pow(2, float64(i)/32))); v != want {
			t.Errorf("ilb[%d] = %d, want %d", i, v, want)
		}
	}
	for i := range 30 {
		lo := q6[i] * 8
		hi := int32(math.MaxInt32)
		if i+1 < 30 {
			hi = q6[i+1] * 8
		}
		for _, c := range []struct {
			code uint8
			sign int32
		}{{g722ILP[i], 1}, {g722ILN[i], -1}} {
			v := qm6[c.code] * c.sign
			if v < lo || v > hi {
				t.Errorf("interval %d code %d: level %d outside [%d, %d]", i, c.code, v, lo, hi)
			}
			if q4 := qm4[c.code>>2] * c.sign; q4 < 0 {
				t.Errorf("code %d: 4-bit level %d has the wrong sign", c.code, q4)
			}
		}
	}
}

// TestG722Sine sends tones through the encoder and decoder: they come
// back at their frequency, level and with the SNR of 64 kbit/s G.722.
func TestG722Sine(t *testing.T) {
	for _, tc := range []struct {
		freq, amp, minSNR float64
	}{
		{1000, 10000, 30},
		{300, 3000, 30},
		{3000, 10000, 25},
		{6000, 8000, 15}, // the higher sub-band: 2 bits per sample
	} {
		enc, dec := newG722Encoder(), newG722Decoder()
		var got []int16
		for i := range 50 { // 1 s in 20 ms packets
			in := sine(16000, tc.freq, tc.amp, i*320, 320)
			payload, _ := enc.Encode(nil, in)
			if len(payload) != 160 {
				t.Fatalf("20 ms encoded to %d bytes, want 160", len(payload))
			}
			got, _ = dec.Decode(got, payload)
		}
		checkTone(t, "G.722", got[1600:], 16000, tc.freq, tc.amp, tc.minSNR)
	}
}

// TestG722Silence: silence in, (near) silence out, and no drift.
func TestG722Silence(t *testing.T) {
	enc, dec := newG722Encoder(), newG722Decoder()
	payload, _ := enc.Encode(nil, make([]int16, 16000))
	out, _ := dec.Decode(nil, payload)
	if r := rms(out[800:]); r > 10 {
		t.Errorf("silence decoded with RMS %.1f", r)
	}
}

func FuzzG722Decode(f *testing.F) {
	f.Add([]byte{0x00, 0xff, 0x3f, 0xc0, 0x55, 0xaa})
	f.Fuzz(func(t *testing.T, payload []byte) {
		d := newG722Decoder()
		out, err := d.Decode(nil, payload)
		if err != nil || len(out) != 2*len(payload) {
			t.Fatalf("decoded %d bytes into %d samples, err %v", len(payload), len(out), err)
		}
	})
}

// TestG722Spandsp compares with spandsp's G.722 (testdata/g722/gen.c made
// the files): the same audio must encode to the same bytes, and those
// bytes decode to the same samples, through tones, a sweep, clipping and
// noise.
func TestG722Spandsp(t *testing.T) {
	in := readS16(t, "testdata/g722/in.s16")
	want, err := os.ReadFile("testdata/g722/enc.g722")
	if err != nil {
		t.Fatal(err)
	}
	wantPCM := readS16(t, "testdata/g722/dec.s16")
	got, _ := newG722Encoder().Encode(nil, in)
	if i := firstDiff(got, want); i >= 0 {
		t.Errorf("encoding differs from spandsp's from byte %d of %d (%02x, want %02x)", i, len(want), got[i], want[i])
	}
	pcm, _ := newG722Decoder().Decode(nil, want)
	if len(pcm) != len(wantPCM) {
		t.Fatalf("decoded %d samples, spandsp %d", len(pcm), len(wantPCM))
	}
	wrapped := 0
	for i := range pcm {
		if pcm[i] == wantPCM[i] {
			continue
		}
		// Where the output overflows 16 bits spandsp wraps around (a
		// cast) and we saturate: allowed, nothing else.
		if (pcm[i] == 32767 && wantPCM[i] < 0) || (pcm[i] == -32768 && wantPCM[i] > 0) {
			wrapped++
			continue
		}
		t.Fatalf("decoding differs from spandsp's at sample %d of %d (%d, want %d)", i, len(wantPCM), pcm[i], wantPCM[i])
	}
	t.Logf("%d samples identical, %d saturated where spandsp wraps", len(pcm)-wrapped, wrapped)
}

func readS16(t *testing.T, name string) []int16 {
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]int16, len(b)/2)
	for i := range out {
		out[i] = int16(binary.LittleEndian.Uint16(b[2*i:]))
	}
	return out
}

func firstDiff[T comparable](a, b []T) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	if len(a) != len(b) {
		return min(len(a), len(b))
	}
	return -1
}
