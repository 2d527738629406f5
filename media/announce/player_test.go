package announce

import (
	"errors"
	"testing"
	"time"

	"github.com/sbc-project/sbc/media/codec"
)

// fakeClock records the deadlines a player waits for and returns at once.
type fakeClock struct {
	start    time.Time
	waits    []time.Time
	stopAt   int // wait number that sees stop closed; 0: never
	stopChan chan struct{}
}

func (c *fakeClock) now() time.Time { return c.start }

func (c *fakeClock) wait(until time.Time, stop <-chan struct{}) bool {
	c.waits = append(c.waits, until)
	if len(c.waits) == c.stopAt {
		close(c.stopChan)
	}
	select {
	case <-stop:
		return false
	default:
		return true
	}
}

func TestPlayerPacing(t *testing.T) {
	clip, _ := (Tone{Freqs: []float64{440}, Cadence: []time.Duration{100 * time.Millisecond, 100 * time.Millisecond}}).Clip(48000)
	pcmu := codec.Format{Name: "PCMU", PT: 0, ClockRate: 8000}
	cases := []struct {
		name   string
		p      Player
		stopAt int
		refuse int // send returns false from this packet on; 0: never
		want   int // packets sent
	}{
		{"once", Player{Repeat: 1}, 0, 0, 10},
		{"three times", Player{Repeat: 3}, 0, 0, 30},
		{"bounded", Player{Max: 250 * time.Millisecond}, 0, 0, 12},
		{"repeat bounded", Player{Repeat: 5, Max: 150 * time.Millisecond}, 0, 0, 7},
		{"stopped", Player{}, 4, 0, 4},
		{"real media took over", Player{}, 0, 6, 6},
	}
	for _, tc := range cases {
		fc := &fakeClock{start: time.Unix(1000, 0), stopAt: tc.stopAt, stopChan: make(chan struct{})}
		p := tc.p
		p.Clip, p.clock = clip, fc
		var got [][]byte
		err := p.Play(pcmu, fc.stopChan, func(payload []byte, samples uint32) bool {
			if samples != 160 {
				t.Errorf("%s: timestamp step %d, want 160", tc.name, samples)
			}
			if len(payload) != 160 {
				t.Errorf("%s: payload of %d bytes, want 160", tc.name, len(payload))
			}
			got = append(got, payload)
			return tc.refuse == 0 || len(got) < tc.refuse
		})
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if len(got) != tc.want {
			t.Errorf("%s: %d packets, want %d", tc.name, len(got), tc.want)
		}
		// Packet n goes at start + n × 20 ms, never relative to the last.
		for i, w := range fc.waits {
			if want := fc.start.Add(time.Duration(i+1) * 20 * time.Millisecond); !w.Equal(want) {
				t.Errorf("%s: wait %d until %v, want %v", tc.name, i, w.Sub(fc.start), want.Sub(fc.start))
			}
		}
		// The clip loops: packet 10 is packet 0 again, the same bytes.
		if len(got) > 10 && &got[10][0] != &got[0][0] {
			t.Errorf("%s: packet 10 is not the cached packet 0", tc.name)
		}
	}
}

func TestPlayerCodecs(t *testing.T) {
	clip, _ := (Tone{Freqs: []float64{440}}).Clip(8000)
	p := Player{Clip: clip, Repeat: 1, clock: &fakeClock{}}
	var n int
	err := p.Play(codec.Format{Name: "PCMA", PT: 8, ClockRate: 8000}, nil, func(payload []byte, samples uint32) bool {
		dec, _ := codec.NewDecoder(codec.Format{Name: "PCMA"})
		pcm, _ := dec.Decode(nil, payload)
		if n == 10 && Goertzel(pcm, 8000, 440) < 0.003 {
			t.Errorf("PCMA packet %d: no 440 Hz after decoding", n)
		}
		n++
		return true
	})
	if err != nil || n != 50 {
		t.Fatalf("PCMA: %d packets, %v", n, err)
	}
	err = p.Play(codec.Format{Name: "GSM", PT: 3, ClockRate: 8000}, nil, func([]byte, uint32) bool { return true })
	if !errors.Is(err, codec.ErrUnsupported) {
		t.Errorf("GSM: %v, want ErrUnsupported", err)
	}
	a, _ := clip.Packets(codec.Format{Name: "pcmu"})
	b, _ := clip.Packets(codec.Format{Name: "PCMU", PT: 0})
	if &a[0][0] != &b[0][0] {
		t.Error("PCMU encoded twice: not cached per codec")
	}
}

// TestClipEveryCodec: a 48 kHz tone clip encoded in each codec this
// build has, decoded again, holds the tone and keeps its length.
func TestClipEveryCodec(t *testing.T) {
	clip, _ := (Tone{Freqs: []float64{440}, Cadence: []time.Duration{time.Second, 0}}).Clip(48000)
	for _, f := range []codec.Format{
		{Name: "PCMU", ClockRate: 8000}, {Name: "PCMA", ClockRate: 8000},
		{Name: "G722", ClockRate: 8000}, {Name: "opus", ClockRate: 48000, Channels: 2},
	} {
		if !codec.Supported(f.Name) {
			t.Logf("%s: not in this build", f.Name)
			continue
		}
		pkts, err := clip.Packets(f)
		if err != nil {
			t.Fatalf("%s: %v", f.Name, err)
		}
		if len(pkts) != 50 {
			t.Errorf("%s: %d packets for one second, want 50", f.Name, len(pkts))
		}
		dec, err := codec.NewDecoder(f)
		if err != nil {
			t.Fatal(err)
		}
		var pcm []int16
		for _, p := range pkts {
			if pcm, err = dec.Decode(pcm, p); err != nil {
				t.Fatalf("%s: decode: %v", f.Name, err)
			}
		}
		rate := dec.SampleRate()
		if n := len(pcm); n != rate {
			t.Errorf("%s: %d samples decoded, want %d", f.Name, n, rate)
		}
		mid := pcm[rate/4 : rate*3/4]
		if p := Goertzel(mid, rate, 440); p < 0.003 {
			t.Errorf("%s: 440 Hz power %.5f after encoding and decoding", f.Name, p)
		}
		if p := Goertzel(mid, rate, 1000); p > 0.0005 {
			t.Errorf("%s: 1 kHz power %.5f, want none", f.Name, p)
		}
	}
}
