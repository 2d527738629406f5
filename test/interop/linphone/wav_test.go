package linphone

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
)

// writeTone writes a WAV file of a sine of freq Hz (8 kHz mono, 16 bit),
// secs long, for linphone's file "microphone".
func writeTone(path string, freq float64, secs int) error {
	const rate = 8000
	pcm := make([]byte, rate*secs*2)
	for i := range rate * secs {
		x := 0.5 * math.Sin(2*math.Pi*freq*float64(i)/rate)
		binary.LittleEndian.PutUint16(pcm[2*i:], uint16(int16(x*math.MaxInt16)))
	}
	h := []byte("RIFF")
	h = binary.LittleEndian.AppendUint32(h, uint32(36+len(pcm)))
	h = append(h, "WAVEfmt "...)
	h = binary.LittleEndian.AppendUint32(h, 16)
	h = binary.LittleEndian.AppendUint16(h, 1) // PCM
	h = binary.LittleEndian.AppendUint16(h, 1) // mono
	h = binary.LittleEndian.AppendUint32(h, rate)
	h = binary.LittleEndian.AppendUint32(h, rate*2)
	h = binary.LittleEndian.AppendUint16(h, 2)
	h = binary.LittleEndian.AppendUint16(h, 16)
	h = append(h, "data"...)
	h = binary.LittleEndian.AppendUint32(h, uint32(len(pcm)))
	return os.WriteFile(path, append(h, pcm...), 0o644)
}

// wav is 16-bit PCM audio, the first channel only.
type wav struct {
	rate    int
	samples []float64 // in [-1, 1)
}

// readWAV reads a 16-bit PCM WAV file. The data chunk runs to the end of
// the file: a recording still being written has no final size yet.
func readWAV(path string) (wav, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return wav{}, err
	}
	if len(data) < 12 || string(data[:4]) != "RIFF" || string(data[8:12]) != "WAVE" {
		return wav{}, errors.New("not a RIFF WAVE file")
	}
	var w wav
	channels := 0
	for off := 12; off+8 <= len(data); {
		id, size := string(data[off:off+4]), int(binary.LittleEndian.Uint32(data[off+4:]))
		body := data[off+8:]
		switch id {
		case "fmt ":
			if len(body) < 16 || binary.LittleEndian.Uint16(body) != 1 || binary.LittleEndian.Uint16(body[14:]) != 16 {
				return wav{}, errors.New("not 16-bit PCM")
			}
			channels = int(binary.LittleEndian.Uint16(body[2:]))
			w.rate = int(binary.LittleEndian.Uint32(body[4:]))
		case "data":
			if channels == 0 {
				return wav{}, errors.New("data before fmt")
			}
			step := 2 * channels
			for i := 0; i+step <= len(body); i += step {
				w.samples = append(w.samples, float64(int16(binary.LittleEndian.Uint16(body[i:])))/32768)
			}
			return w, nil
		}
		off += 8 + size + size%2
	}
	return wav{}, errors.New("no data chunk")
}

func (w wav) seconds() float64 {
	if w.rate == 0 {
		return 0
	}
	return float64(len(w.samples)) / float64(w.rate)
}

// loudest returns the secs-long window with the most energy, stepping by
// a tenth of a second: the part of a recording where the far end spoke.
func (w wav) loudest(secs float64) []float64 {
	n := int(secs * float64(w.rate))
	if n >= len(w.samples) {
		return w.samples
	}
	best, bestAt := -1.0, 0
	for at := 0; at+n <= len(w.samples); at += w.rate / 10 {
		e := 0.0
		for _, s := range w.samples[at : at+n] {
			e += s * s
		}
		if e > best {
			best, bestAt = e, at
		}
	}
	return w.samples[bestAt : bestAt+n]
}

// peak is the frequency (5 Hz steps, 100 to 3400 Hz) with the most power
// in samples at rate, by the Goertzel algorithm, and its share of the
// signal's energy.
func peak(samples []float64, rate int) (freq, share float64) {
	total := 0.0
	for _, s := range samples {
		total += s * s
	}
	best := 0.0
	for f := 100.0; f <= 3400; f += 5 {
		c := 2 * math.Cos(2*math.Pi*f/float64(rate))
		var s1, s2 float64
		for _, x := range samples {
			s1, s2 = x+c*s1-s2, s1
		}
		p := s1*s1 + s2*s2 - c*s1*s2
		if p > best {
			best, freq = p, f
		}
	}
	if total == 0 {
		return 0, 0
	}
	// A sine of amplitude A on a bin has Goertzel power (N·A/2)² and energy
	// N·A²/2: their ratio is N/2, so share is 1 for a pure tone.
	return freq, best / total / (float64(len(samples)) / 2)
}

func (w wav) String() string { return fmt.Sprintf("%.2f s at %d Hz", w.seconds(), w.rate) }
