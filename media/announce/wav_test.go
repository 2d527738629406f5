package announce

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// wavBytes builds a WAV file with the given fmt fields and data.
func wavBytes(tag, channels uint16, rate uint32, bits uint16, data []byte) []byte {
	b := []byte("RIFF\x00\x00\x00\x00WAVEfmt ")
	b = binary.LittleEndian.AppendUint32(b, 16)
	b = binary.LittleEndian.AppendUint16(b, tag)
	b = binary.LittleEndian.AppendUint16(b, channels)
	b = binary.LittleEndian.AppendUint32(b, rate)
	b = binary.LittleEndian.AppendUint32(b, rate*uint32(channels)*uint32(bits)/8)
	b = binary.LittleEndian.AppendUint16(b, channels*bits/8)
	b = binary.LittleEndian.AppendUint16(b, bits)
	b = append(b, "LIST\x04\x00\x00\x00INFO"...) // a chunk to skip
	b = append(b, "data"...)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(data)))
	b = append(b, data...)
	binary.LittleEndian.PutUint32(b[4:], uint32(len(b)-8))
	return b
}

func TestParseWAV(t *testing.T) {
	stereo := []byte{0x10, 0x00, 0x30, 0x00, 0xf0, 0xff, 0xd0, 0xff} // (16,48), (-16,-48)
	c, err := ParseWAV(wavBytes(1, 2, 16000, 16, stereo))
	if err != nil {
		t.Fatal(err)
	}
	if c.Rate != 16000 || len(c.PCM) != 2 || c.PCM[0] != 32 || c.PCM[1] != -32 {
		t.Errorf("stereo: rate %d pcm %v, want 16000 [32 -32]", c.Rate, c.PCM)
	}
	tone, _ := (Tone{Freqs: []float64{440}}).Clip(48000)
	back, err := ParseWAV(WAV(tone))
	if err != nil {
		t.Fatal(err)
	}
	if back.Rate != 48000 || len(back.PCM) != len(tone.PCM) || back.PCM[100] != tone.PCM[100] {
		t.Errorf("round trip: rate %d, %d samples", back.Rate, len(back.PCM))
	}

	bad := []struct {
		name string
		b    []byte
		want string
	}{
		{"not riff", []byte("hello, this is text"), "not a RIFF WAVE"},
		{"float", wavBytes(3, 1, 8000, 32, make([]byte, 8)), "format tag 0x3"},
		{"8 bit", wavBytes(1, 1, 8000, 8, make([]byte, 8)), "8 bits per sample"},
		{"3 channels", wavBytes(1, 3, 8000, 16, make([]byte, 12)), "3 channels"},
		{"11025 Hz", wavBytes(1, 1, 11025, 16, make([]byte, 8)), "sample rate 11025"},
		{"no samples", wavBytes(1, 1, 8000, 16, nil), "no samples"},
		{"no data", wavBytes(1, 1, 8000, 16, nil)[:36], "no data chunk"},
		{"chunk past end", append([]byte("RIFF\x00\x00\x00\x00WAVEfmt \xff\x00\x00\x00"), make([]byte, 20)...), "past the end"},
	}
	for _, tc := range bad {
		_, err := ParseWAV(tc.b)
		if err == nil || !errors.Is(err, ErrBadAudio) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want ErrBadAudio saying %q", tc.name, err, tc.want)
		}
	}
}

func TestLoadFiles(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.wav")
	tone, _ := (Tone{Freqs: []float64{440}}).Clip(8000)
	if err := os.WriteFile(good, WAV(tone), 0o600); err != nil {
		t.Fatal(err)
	}
	if c, err := LoadWAV(good); err != nil || len(c.PCM) != 8000 {
		t.Fatalf("LoadWAV: %v", err)
	}
	raw := filepath.Join(dir, "prompt.raw")
	if err := os.WriteFile(raw, WAV(tone)[44:], 0o600); err != nil {
		t.Fatal(err)
	}
	if c, err := LoadRaw(raw, 8000); err != nil || len(c.PCM) != 8000 || c.PCM[7] != tone.PCM[7] {
		t.Fatalf("LoadRaw: %v", err)
	}
	odd := filepath.Join(dir, "odd.raw")
	_ = os.WriteFile(odd, []byte{1, 2, 3}, 0o600)
	textWAV := filepath.Join(dir, "text.wav")
	_ = os.WriteFile(textWAV, []byte("not audio at all"), 0o600)
	for _, tc := range []struct {
		name string
		load func() error
		want string
	}{
		{"missing", func() error { _, err := LoadWAV(filepath.Join(dir, "nope.wav")); return err }, "nope.wav"},
		{"directory", func() error { _, err := LoadWAV(dir); return err }, "not a regular file"},
		{"text as wav", func() error { _, err := LoadWAV(textWAV); return err }, "text.wav: bad audio file: not a RIFF WAVE"},
		{"odd raw", func() error { _, err := LoadRaw(odd, 8000); return err }, "odd.raw: bad audio file: 3 bytes"},
		{"raw rate", func() error { _, err := LoadRaw(raw, 12345); return err }, "sample rate 12345"},
	} {
		if err := tc.load(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one saying %q", tc.name, err, tc.want)
		}
	}
}
