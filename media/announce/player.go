package announce

import (
	"fmt"
	"time"

	"github.com/sbc-project/sbc/media/codec"
)

// Player plays a Clip as 20 ms packets paced in real time. A Player is a
// value that is never changed by Play: one may play on many calls at once.
type Player struct {
	Clip *Clip
	// Repeat is how many times the clip plays; 0 repeats it until stopped
	// or Max.
	Repeat int
	// Max bounds the playing time; 0: none (a caller of a repeating
	// player stops it).
	Max time.Duration

	// clock paces the packets; nil: the real one.
	clock clock
}

// clock is the time source of a Player: now, and a wait until a time
// that gives up (false) when stop is closed.
type clock interface {
	now() time.Time
	wait(until time.Time, stop <-chan struct{}) bool
}

type realClock struct{}

func (realClock) now() time.Time { return time.Now() }

func (realClock) wait(until time.Time, stop <-chan struct{}) bool {
	d := time.Until(until)
	if d <= 0 {
		select {
		case <-stop:
			return false
		default:
			return true
		}
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-stop:
		return false
	}
}

// Play sends the clip encoded in f through send, one payload every 20 ms
// (the first at once, packet n at start + n × 20 ms, so the pace does not
// drift with scheduling delays), with samples, the RTP timestamp step of
// one packet in f's clock. It returns nil when the clip has played Repeat
// times or Max is reached, or at once when stop is closed or send returns
// false (the receiver is gone or real media took over); an error only
// when the clip cannot be encoded in f.
func (p Player) Play(f codec.Format, stop <-chan struct{}, send func(payload []byte, samples uint32) bool) error {
	if p.Clip == nil {
		return fmt.Errorf("play: no clip")
	}
	pkts, err := p.Clip.Packets(f)
	if err != nil {
		return err
	}
	if len(pkts) == 0 {
		return nil
	}
	rate := f.ClockRate
	if rate <= 0 {
		rate = f.SampleRate()
	}
	step := uint32(rate / int(time.Second/FrameDuration))
	total := -1 // unbounded
	if p.Repeat > 0 {
		total = p.Repeat * len(pkts)
	}
	if p.Max > 0 {
		if m := int(p.Max / FrameDuration); total < 0 || m < total {
			total = m
		}
	}
	c := p.clock
	if c == nil {
		c = realClock{}
	}
	start := c.now()
	for n := 0; total < 0 || n < total; n++ {
		if n > 0 && !c.wait(start.Add(time.Duration(n)*FrameDuration), stop) {
			return nil
		}
		if !send(pkts[n%len(pkts)], step) {
			return nil
		}
	}
	return nil
}
