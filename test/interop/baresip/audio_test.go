package baresip

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"testing"
)

// The tones: each party plays its own, so a recording shows who sent
// what. Whole numbers of cycles per 20 ms block keep the detector exact.
const (
	toneA   = 400.0  // the caller
	toneB   = 1000.0 // the callee
	toneWeb = 650.0  // the browser
	rate    = 8000
	block   = 160 // 20 ms at 8 kHz
)

// readWAV returns the 16-bit mono samples of a WAV file. The data runs
// to the end of the file: a recording still open has no final sizes in
// its header.
func readWAV(name string) ([]int16, error) {
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, err
	}
	if len(b) < 12 || string(b[:4]) != "RIFF" || string(b[8:12]) != "WAVE" {
		return nil, fmt.Errorf("%s: not a WAV file", name)
	}
	i := bytes.Index(b[12:], []byte("data"))
	if i < 0 || 12+i+8 > len(b) {
		return nil, fmt.Errorf("%s: no data chunk", name)
	}
	data := b[12+i+8:]
	out := make([]int16, len(data)/2)
	for j := range out {
		out[j] = int16(binary.LittleEndian.Uint16(data[2*j:]))
	}
	return out, nil
}

// toneBlocks counts the 20 ms blocks of s that carry the tone freq: loud
// enough, and with most of their energy at freq (Goertzel).
func toneBlocks(s []int16, freq float64) int {
	n := 0
	for i := 0; i+block <= len(s); i += block {
		if toneShare(s[i:i+block], freq) > 0.7 {
			n++
		}
	}
	return n
}

// toneShare is the share of the block's energy at freq (1 for a pure
// tone of a whole number of cycles), 0 for a quiet block.
func toneShare(x []int16, freq float64) float64 {
	w := 2 * math.Cos(2*math.Pi*freq/rate)
	var s1, s2, energy float64
	for _, v := range x {
		f := float64(v)
		energy += f * f
		s1, s2 = f+w*s1-s2, s1
	}
	// Below -50 dBFS RMS: silence, or comfort noise.
	if energy/float64(len(x)) < 100*100 {
		return 0
	}
	power := s1*s1 + s2*s2 - w*s1*s2
	return power / (float64(len(x)) / 2 * energy)
}

// checkHeard fails unless the recording holds at least minBlocks blocks
// of the tone want and none of the tone notWant (the recorder's own).
func checkHeard(t *testing.T, who, file string, want, notWant float64, minBlocks int) {
	t.Helper()
	s, err := readWAV(file)
	if err != nil {
		t.Fatalf("%s: %v", who, err)
	}
	got, own := toneBlocks(s, want), toneBlocks(s, notWant)
	if got < minBlocks || own > 0 {
		t.Fatalf("%s heard %d blocks of %.0f Hz (want at least %d) and %d of its own %.0f Hz (want 0) in %.1f s of %s",
			who, got, want, minBlocks, own, notWant, float64(len(s))/rate, file)
	}
}

func TestToneDetector(t *testing.T) {
	tone := func(f float64) []int16 {
		s := make([]int16, rate)
		for i := range s {
			s[i] = int16(8000 * math.Sin(2*math.Pi*f*float64(i)/rate))
		}
		return s
	}
	ulaw := func(s []int16) []int16 {
		out := make([]int16, len(s))
		for i, v := range s {
			out[i] = uLawToLinear(linearToULaw(v))
		}
		return out
	}
	tests := []struct {
		name string
		in   []int16
		freq float64
		want int
	}{
		{"the tone", tone(toneA), toneA, 50},
		{"another tone", tone(toneB), toneA, 0},
		{"the browser's tone", tone(toneWeb), toneB, 0},
		{"silence", make([]int16, rate), toneA, 0},
		{"the tone through G.711 µ-law", ulaw(tone(toneWeb)), toneWeb, 50},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := toneBlocks(tc.in, tc.freq); got != tc.want {
				t.Fatalf("toneBlocks = %d, want %d", got, tc.want)
			}
		})
	}
}
