package timeline

import (
	"context"
	"math"
	"strconv"
	"time"
)

// DefaultSampleEvery is how often a live call's quality is sampled.
const DefaultSampleEvery = 5 * time.Second

// Sample is the quality of one direction of a call's media so far:
// packets relayed, lost, interarrival jitter and an E-model MOS of what
// the SBC received from that side.
type Sample struct {
	Packets  uint64
	Lost     int64
	JitterMs float64
	MOS      float64
}

// Sampler returns the quality of the media from side a and from side b;
// ok false when the call has no media (yet).
type Sampler func() (fromA, fromB Sample, ok bool)

// SetSampler gives t the function its quality samples come from (the
// call's media session once it has one).
func (t *Timeline) SetSampler(f Sampler) {
	if t == nil {
		return
	}
	t.mu.Lock()
	t.sampler = f
	t.mu.Unlock()
}

// Quality records one quality sample per direction now, from t's sampler.
func (t *Timeline) Quality() {
	if t == nil {
		return
	}
	t.mu.Lock()
	f := t.sampler
	t.mu.Unlock()
	if f == nil {
		return
	}
	a, b, ok := f()
	if !ok {
		return
	}
	at := now()
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.ended != 0 {
		return
	}
	t.addSample(packSample(at, LegA, a))
	t.addSample(packSample(at, LegB, b))
}

// qsample is a quality sample as a timeline keeps it: 24 bytes, apart
// from the events (a long call's timeline is mostly samples). The side
// it is from is the sign of jitter, which is never negative (RFC 3550
// 6.4.1: a mean of absolute differences): set for LegB, -0 included.
type qsample struct {
	at      int64
	packets uint32  // saturated
	lost    int32   // clamped
	jitter  float32 // its sign bit: from LegB
	mos     float32
}

func packSample(at int64, from Leg, q Sample) qsample {
	jitter := float32(math.Abs(q.JitterMs))
	if from == LegB {
		jitter = float32(math.Copysign(float64(jitter), -1))
	}
	return qsample{at: at, packets: uint32(min(q.Packets, math.MaxUint32)),
		lost:   int32(max(min(q.Lost, math.MaxInt32), math.MinInt32)),
		jitter: jitter, mos: float32(q.MOS)}
}

// from is the side the sample is from.
func (q qsample) from() Leg {
	if math.Signbit(float64(q.jitter)) {
		return LegB
	}
	return LegA
}

// event is the sample as the API shows it (a quality event); its float32
// figures as their shortest decimals (2.5, not 2.4999998).
func (q qsample) event() Event {
	jitter := float32(math.Abs(float64(q.jitter)))
	return Event{At: q.at, Kind: KindQuality, What: "sample", Shape: ShapeSample, S: [3]string{q.from().String()},
		N: [4]float64{float64(q.packets), float64(q.lost), short(jitter), short(q.mos)}}
}

func short(f float32) float64 {
	v, _ := strconv.ParseFloat(strconv.FormatFloat(float64(f), 'g', -1, 32), 64)
	return v
}

// addSample keeps q as add keeps an event, in a list of its own.
// Called under t.mu.
func (t *Timeline) addSample(q qsample) {
	p, replaced := t.samples.next(t.max)
	if replaced {
		t.dropped++
	}
	if p != nil {
		*p = q
	}
}

// Run samples the quality of every live call every interval until ctx
// ends.
func (s *Store) Run(ctx context.Context, every time.Duration) {
	if s == nil || every <= 0 {
		return
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			for _, t := range s.Live() {
				t.Quality()
			}
		}
	}
}

// Live returns the timelines of the calls in progress.
func (s *Store) Live() []*Timeline {
	if s == nil {
		return nil
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]*Timeline, 0, len(s.live))
	for t := range s.live {
		out = append(out, t)
	}
	return out
}
