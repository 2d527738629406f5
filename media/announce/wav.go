package announce

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
)

// MaxFileSize bounds an audio file the SBC loads: 16 MB, about 3 minutes
// of 48 kHz stereo, far more than an announcement needs.
const MaxFileSize = 16 << 20

// ErrBadAudio is wrapped by every error about an audio file's content.
var ErrBadAudio = errors.New("bad audio file")

// LoadWAV reads a RIFF WAVE file of 16-bit linear PCM, mono or stereo
// (mixed down to mono), at 8, 16, 32, 44.1 or 48 kHz. Errors name the
// path and say what is wrong.
func LoadWAV(path string) (*Clip, error) {
	b, err := readBounded(path)
	if err != nil {
		return nil, err
	}
	c, err := ParseWAV(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// LoadRaw reads a headerless file of 16-bit little-endian signed mono
// samples at rate samples per second.
func LoadRaw(path string, rate int) (*Clip, error) {
	if !validRate(rate) {
		return nil, fmt.Errorf("%s: %w: sample rate %d (8000, 16000, 32000, 44100 or 48000)", path, ErrBadAudio, rate)
	}
	b, err := readBounded(path)
	if err != nil {
		return nil, err
	}
	if len(b) < 2 || len(b)%2 != 0 {
		return nil, fmt.Errorf("%s: %w: %d bytes is not a whole number of 16-bit samples", path, ErrBadAudio, len(b))
	}
	return &Clip{Rate: rate, PCM: samples16(b, 1)}, nil
}

func readBounded(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err // *PathError names the path
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: %w: not a regular file", path, ErrBadAudio)
	}
	if fi.Size() > MaxFileSize {
		return nil, fmt.Errorf("%s: %w: %d bytes, more than %d", path, ErrBadAudio, fi.Size(), MaxFileSize)
	}
	return os.ReadFile(path)
}

func validRate(r int) bool {
	switch r {
	case 8000, 16000, 32000, 44100, 48000:
		return true
	}
	return false
}

// The WAVE format tags this loader reads.
const (
	wavePCM        = 1
	waveExtensible = 0xfffe
)

// ParseWAV reads a WAV file's bytes (see LoadWAV).
func ParseWAV(b []byte) (*Clip, error) {
	if len(b) < 12 || string(b[:4]) != "RIFF" || string(b[8:12]) != "WAVE" {
		return nil, fmt.Errorf("%w: not a RIFF WAVE file", ErrBadAudio)
	}
	var (
		fmtSeen  bool
		channels int
		rate     int
		bits     int
	)
	for p := b[12:]; len(p) >= 8; {
		id, size := string(p[:4]), int(binary.LittleEndian.Uint32(p[4:8]))
		p = p[8:]
		if size < 0 || size > len(p) {
			if id == "data" && fmtSeen {
				size = len(p) - len(p)%(2*max(channels, 1)) // a truncated stream writer's length
			} else {
				return nil, fmt.Errorf("%w: chunk %q of %d bytes past the end of the file", ErrBadAudio, id, size)
			}
		}
		body := p[:size]
		switch id {
		case "fmt ":
			if err := readFmt(body, &channels, &rate, &bits); err != nil {
				return nil, err
			}
			fmtSeen = true
		case "data":
			if !fmtSeen {
				return nil, fmt.Errorf("%w: data chunk before the fmt chunk", ErrBadAudio)
			}
			if len(body) < 2*channels {
				return nil, fmt.Errorf("%w: no samples", ErrBadAudio)
			}
			body = body[:len(body)-len(body)%(2*channels)]
			return &Clip{Rate: rate, PCM: samples16(body, channels)}, nil
		}
		p = p[min(size+size&1, len(p)):] // chunks are padded to even sizes
	}
	return nil, fmt.Errorf("%w: no data chunk", ErrBadAudio)
}

// readFmt checks a fmt chunk: 16-bit PCM, one or two channels, a rate
// the SBC resamples from.
func readFmt(b []byte, channels, rate, bits *int) error {
	if len(b) < 16 {
		return fmt.Errorf("%w: fmt chunk of %d bytes", ErrBadAudio, len(b))
	}
	tag := binary.LittleEndian.Uint16(b[0:2])
	*channels = int(binary.LittleEndian.Uint16(b[2:4]))
	*rate = int(binary.LittleEndian.Uint32(b[4:8]))
	*bits = int(binary.LittleEndian.Uint16(b[14:16]))
	if tag == waveExtensible && len(b) >= 26 {
		tag = binary.LittleEndian.Uint16(b[24:26]) // the sub-format GUID's first two bytes
	}
	switch {
	case tag != wavePCM:
		return fmt.Errorf("%w: format tag %#x, want linear PCM (1)", ErrBadAudio, tag)
	case *bits != 16:
		return fmt.Errorf("%w: %d bits per sample, want 16", ErrBadAudio, *bits)
	case *channels != 1 && *channels != 2:
		return fmt.Errorf("%w: %d channels, want 1 or 2", ErrBadAudio, *channels)
	case !validRate(*rate):
		return fmt.Errorf("%w: sample rate %d (8000, 16000, 32000, 44100 or 48000)", ErrBadAudio, *rate)
	}
	return nil
}

// samples16 reads little-endian 16-bit frames of channels samples each,
// averaging the channels into one.
func samples16(b []byte, channels int) []int16 {
	n := len(b) / (2 * channels)
	out := make([]int16, n)
	for i := range out {
		var sum int32
		for c := range channels {
			sum += int32(int16(binary.LittleEndian.Uint16(b[2*(i*channels+c):])))
		}
		out[i] = int16(sum / int32(channels))
	}
	return out
}

// WAV renders a clip as a mono 16-bit PCM WAV file (for tests and tools).
func WAV(c *Clip) []byte {
	data := 2 * len(c.PCM)
	b := make([]byte, 44+data)
	copy(b, "RIFF")
	binary.LittleEndian.PutUint32(b[4:], uint32(36+data))
	copy(b[8:], "WAVEfmt ")
	binary.LittleEndian.PutUint32(b[16:], 16)
	binary.LittleEndian.PutUint16(b[20:], wavePCM)
	binary.LittleEndian.PutUint16(b[22:], 1)
	binary.LittleEndian.PutUint32(b[24:], uint32(c.Rate))
	binary.LittleEndian.PutUint32(b[28:], uint32(2*c.Rate))
	binary.LittleEndian.PutUint16(b[32:], 2)
	binary.LittleEndian.PutUint16(b[34:], 16)
	copy(b[36:], "data")
	binary.LittleEndian.PutUint32(b[40:], uint32(data))
	for i, s := range c.PCM {
		binary.LittleEndian.PutUint16(b[44+2*i:], uint16(s))
	}
	return b
}
