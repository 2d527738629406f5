package announce

import (
	"testing"
	"time"

	"github.com/sbc-project/sbc/media/codec"
)

// BenchmarkClipEncode is the one-time cost of a ringback tone for one
// codec: the US tone's 6 s period made at 48 kHz, resampled to 8 kHz and
// encoded as PCMU (300 packets), as at start-up.
func BenchmarkClipEncode(b *testing.B) {
	tone, _ := NamedTone("us")
	b.ReportAllocs()
	for range b.N {
		clip, err := tone.Clip(48000)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := clip.Packets(codec.Format{Name: "PCMU", ClockRate: 8000}); err != nil {
			b.Fatal(err)
		}
	}
}

// nowClock is a clock that never waits: Play's own cost per packet.
type nowClock struct{}

func (nowClock) now() time.Time                       { return time.Time{} }
func (nowClock) wait(time.Time, <-chan struct{}) bool { return true }

// BenchmarkPlayerPacket is a Player's cost per packet, pacing aside.
func BenchmarkPlayerPacket(b *testing.B) {
	tone, _ := NamedTone("us")
	clip, _ := tone.Clip(48000)
	f := codec.Format{Name: "PCMU", ClockRate: 8000}
	if _, err := clip.Packets(f); err != nil {
		b.Fatal(err)
	}
	p := Player{Clip: clip, Max: FrameDuration * time.Duration(b.N), clock: nowClock{}}
	b.ReportAllocs()
	b.ResetTimer()
	_ = p.Play(f, nil, func([]byte, uint32) bool { return true })
}
