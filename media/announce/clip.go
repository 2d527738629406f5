package announce

import (
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/sbc-project/sbc/media/codec"
)

// FrameDuration is the audio in one packet a Player sends.
const FrameDuration = 20 * time.Millisecond

// Clip is mono 16-bit linear PCM at Rate samples per second, and the
// packets it encodes to, kept per codec. Set Rate and PCM before its
// first use and never change them; then its methods are safe for
// concurrent use.
type Clip struct {
	Rate int     // samples per second
	PCM  []int16 // the samples

	mu  sync.Mutex
	enc map[string][][]byte // by codec key and sample rate
}

// Duration is how long the clip plays.
func (c *Clip) Duration() time.Duration {
	if c.Rate <= 0 {
		return 0
	}
	return time.Duration(len(c.PCM)) * time.Second / time.Duration(c.Rate)
}

// Packets returns the clip encoded in codec f, one payload per 20 ms (the
// last one padded with silence), encoded on the first call for f's codec
// and shared afterwards: the caller must not change them. The error wraps
// codec.ErrUnsupported for a codec this build cannot encode.
func (c *Clip) Packets(f codec.Format) ([][]byte, error) {
	key := f.Key() + "/" + strconv.Itoa(f.SampleRate())
	c.mu.Lock()
	defer c.mu.Unlock()
	if p, ok := c.enc[key]; ok {
		return p, nil
	}
	enc, err := codec.NewEncoder(f)
	if err != nil {
		return nil, err
	}
	p, err := encodeFrames(enc, resampleFor(c.PCM, c.Rate, enc.SampleRate()))
	if err != nil {
		return nil, fmt.Errorf("encode clip as %s: %w", f.Name, err)
	}
	if c.enc == nil {
		c.enc = make(map[string][][]byte)
	}
	c.enc[key] = p
	return p, nil
}

// encodeFrames cuts pcm into 20 ms frames at enc's rate and encodes each.
func encodeFrames(enc codec.Encoder, pcm []int16) ([][]byte, error) {
	n := enc.SampleRate() / int(time.Second/FrameDuration)
	if n <= 0 {
		return nil, fmt.Errorf("sample rate %d too low", enc.SampleRate())
	}
	frame := make([]int16, n)
	var out [][]byte
	for at := 0; at < len(pcm); at += n {
		m := copy(frame, pcm[at:])
		clear(frame[m:])
		p, err := enc.Encode(nil, frame)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// resampleFor converts a clip to an encoder's rate: with media/codec's
// polyphase resampler (windowed sinc, about 70 dB of stopband) when the
// rates' ratio is an integer, as between 8, 16 and 48 kHz; else with
// Resample. The filter's delay is taken off, so the clip keeps its length
// and starts on time.
func resampleFor(pcm []int16, from, to int) []int16 {
	if from == to {
		return pcm
	}
	rs, err := codec.NewResampler(from, to)
	if err != nil {
		return Resample(pcm, from, to)
	}
	want := int(int64(len(pcm)) * int64(to) / int64(from))
	d := rs.Delay()
	out := rs.Resample(make([]int16, 0, want+d+8), pcm)
	// Zeros after the clip flush the filter's last d samples out.
	out = rs.Resample(out, make([]int16, (d+2)*from/to+1))
	if len(out) < d+want {
		return out[min(d, len(out)):]
	}
	return out[d : d+want]
}

// Resample converts pcm from rate from to rate to: linear interpolation,
// after a moving-average low-pass when going down so that what the lower
// rate cannot carry does not fold back into the audible band. Enough for
// tones and speech prompts at rates media/codec's resampler does not
// take (44.1 and 32 kHz toward 48 kHz); the same rate returns pcm itself.
func Resample(pcm []int16, from, to int) []int16 {
	if from == to || from <= 0 || to <= 0 || len(pcm) == 0 {
		return pcm
	}
	src := pcm
	if to < from {
		src = lowPass(pcm, (from+to-1)/to)
	}
	n := int(int64(len(pcm)) * int64(to) / int64(from))
	out := make([]int16, n)
	for i := range out {
		// Position in the source, in 1/to steps: exact for any rates.
		num := int64(i) * int64(from)
		j, frac := int(num/int64(to)), num%int64(to)
		a := int64(src[j])
		b := a
		if j+1 < len(src) {
			b = int64(src[j+1])
		}
		out[i] = int16(a + (b-a)*frac/int64(to))
	}
	return out
}

// lowPass is a centred moving average over k samples.
func lowPass(pcm []int16, k int) []int16 {
	if k <= 1 {
		return pcm
	}
	out := make([]int16, len(pcm))
	var sum int64
	half := k / 2
	// A running window [i-half, i-half+k).
	for i := -k; i < len(pcm); i++ {
		if j := i + k - 1 - half; j >= 0 && j < len(pcm) {
			sum += int64(pcm[j])
		}
		if j := i - 1 - half; j >= 0 && j < len(pcm) {
			sum -= int64(pcm[j])
		}
		if i >= 0 && i < len(pcm) {
			out[i] = int16(sum / int64(k))
		}
	}
	return out
}
