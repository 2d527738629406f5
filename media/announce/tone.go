// Package announce makes the audio the SBC plays itself: local ringback
// tones and announcements before a refusal. A Clip is linear PCM, made by
// a Tone or loaded from a WAV or raw file; it is encoded once per codec
// (Clip.Packets) and replayed packet by packet by a Player, which paces
// 20 ms packets in real time toward whatever send function it is given
// (media.Session.Play gives one that writes RTP toward a call's side).
//
// Everything is made at start-up: a Clip, once loaded, is safe for
// concurrent use, and playing it allocates nothing per packet.
package announce

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"time"
)

// Tone is a sum of sine waves switched on and off by a cadence.
type Tone struct {
	// Freqs are the frequencies played together, in Hz.
	Freqs []float64
	// Cadence alternates on and off durations, starting with on; empty
	// means a continuous tone. The pattern repeats.
	Cadence []time.Duration
	// Level is the level of each frequency in dBFS (negative); 0 means
	// DefaultLevel.
	Level float64
}

// DefaultLevel is the level of each frequency of a tone: -16 dBFS, about
// what ITU-T E.180 asks of a ringing tone on a line after conversion.
const DefaultLevel = -16.0

// tones are the named national ringback tones (ITU-T E.180 Supplement 2).
var tones = map[string]Tone{
	"us": {Freqs: []float64{440, 480}, Cadence: []time.Duration{2 * time.Second, 4 * time.Second}},
	"eu": {Freqs: []float64{425}, Cadence: []time.Duration{time.Second, 4 * time.Second}},
	"uk": {Freqs: []float64{400, 450}, Cadence: []time.Duration{
		400 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 2 * time.Second}},
	"fr": {Freqs: []float64{440}, Cadence: []time.Duration{1500 * time.Millisecond, 3500 * time.Millisecond}},
	"jp": {Freqs: []float64{400}, Cadence: []time.Duration{time.Second, 2 * time.Second}},
}

// ToneNames returns the names NamedTone knows, sorted.
func ToneNames() []string {
	out := make([]string, 0, len(tones))
	for n := range tones {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// NamedTone returns the national ringback tone called name ("us", "eu",
// "uk", "fr", "jp"; any case).
func NamedTone(name string) (Tone, error) {
	t, ok := tones[strings.ToLower(name)]
	if !ok {
		return Tone{}, fmt.Errorf("unknown tone %q (one of %s)", name, strings.Join(ToneNames(), ", "))
	}
	return t, nil
}

// Period is the length of one cadence cycle; for a continuous tone, one
// second.
func (t Tone) Period() time.Duration {
	var p time.Duration
	for _, d := range t.Cadence {
		p += d
	}
	if p <= 0 {
		return time.Second
	}
	return p
}

// Clip renders one cadence period of the tone at rate samples per second.
// Each on-burst starts and ends with a 2 ms ramp, so switching makes no
// click.
func (t Tone) Clip(rate int) (*Clip, error) {
	if rate <= 0 {
		return nil, fmt.Errorf("tone at %d Hz: bad sample rate", rate)
	}
	if len(t.Freqs) == 0 {
		return nil, fmt.Errorf("tone without frequencies")
	}
	for _, f := range t.Freqs {
		if f <= 0 || f >= float64(rate)/2 {
			return nil, fmt.Errorf("tone frequency %g Hz: outside 0 to %d Hz", f, rate/2)
		}
	}
	level := t.Level
	if level == 0 {
		level = DefaultLevel
	}
	amp := 32767 * math.Pow(10, level/20)
	n := int(int64(t.Period()) * int64(rate) / int64(time.Second))
	pcm := make([]int16, n)
	for _, seg := range t.segments(rate) {
		ramp := min(rate/500, (seg[1]-seg[0])/2) // 2 ms
		for i := seg[0]; i < seg[1] && i < n; i++ {
			var v float64
			for _, f := range t.Freqs {
				v += math.Sin(2 * math.Pi * f * float64(i) / float64(rate))
			}
			g := 1.0
			if k := i - seg[0]; k < ramp {
				g = float64(k) / float64(ramp)
			} else if k := seg[1] - 1 - i; k < ramp {
				g = float64(k) / float64(ramp)
			}
			pcm[i] = int16(math.Round(v * amp * g))
		}
	}
	return &Clip{Rate: rate, PCM: pcm}, nil
}

// segments returns the [start, end) sample ranges in which the tone is
// on, within one period.
func (t Tone) segments(rate int) [][2]int {
	samples := func(d time.Duration) int { return int(int64(d) * int64(rate) / int64(time.Second)) }
	if len(t.Cadence) == 0 {
		return [][2]int{{0, rate}}
	}
	var out [][2]int
	var at time.Duration
	for i, d := range t.Cadence {
		if i%2 == 0 {
			out = append(out, [2]int{samples(at), samples(at + d)})
		}
		at += d
	}
	return out
}
