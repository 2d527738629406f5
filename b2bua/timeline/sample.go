package timeline

import (
	"context"
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
	now := time.Now().UnixNano()
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.ended != 0 {
		return
	}
	t.add(sampleEvent(now, LegA, a))
	t.add(sampleEvent(now, LegB, b))
}

func sampleEvent(at int64, from Leg, q Sample) Event {
	return Event{At: at, Kind: KindQuality, What: "sample", Shape: ShapeSample,
		S: [3]string{from.String()}, N: [4]float64{float64(q.Packets), float64(q.Lost), q.JitterMs, q.MOS}}
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
