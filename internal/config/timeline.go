package config

import (
	"strconv"
	"time"

	"github.com/sbc-project/sbc/b2bua/timeline"
)

// Defaults and bounds of the timeline section: the core package's own
// defaults (timeline.DefaultKeep, DefaultMaxEvents, DefaultSampleEvery).
const (
	DefaultTimelineKeep      = timeline.DefaultKeep
	DefaultTimelineMaxEvents = timeline.DefaultMaxEvents
	DefaultTimelineSample    = timeline.DefaultSampleEvery
	MaxTimelineKeep          = 100_000
	MaxTimelineEvents        = 10_000
	MinTimelineSample        = 100 * time.Millisecond
)

// Timeline configures the per-call timelines of GET
// /api/v1/calls/{id}/timeline: every call in progress has one; the last
// Keep ended calls keep theirs.
type Timeline struct {
	// Keep is how many ended calls keep their timeline, 0..100000; 0
	// keeps none. Default DefaultTimelineKeep.
	Keep int `mapstructure:"keep"`
	// MaxEvents bounds the events of one call, 2..10000; past it the
	// first half (the setup) and the newest are kept. Default
	// DefaultTimelineMaxEvents.
	MaxEvents int `mapstructure:"max_events"`
	// SampleInterval is how often a live call's quality (packets, loss,
	// jitter, MOS per direction) is sampled; 0 turns sampling off, else
	// at least 100ms. Default DefaultTimelineSample.
	SampleInterval time.Duration `mapstructure:"sample_interval"`
}

// validate checks the timeline section.
func (t Timeline) validate(ps *Problems) {
	if t.Keep < 0 || t.Keep > MaxTimelineKeep {
		ps.add("timeline.keep", strconv.Itoa(t.Keep), "want 0..100000 ended calls")
	}
	if t.MaxEvents < timeline.MinMaxEvents || t.MaxEvents > MaxTimelineEvents {
		ps.add("timeline.max_events", strconv.Itoa(t.MaxEvents), "want 2..10000 events per call")
	}
	if t.SampleInterval != 0 && t.SampleInterval < MinTimelineSample {
		ps.add("timeline.sample_interval", t.SampleInterval.String(), "want 0 (off) or at least 100ms")
	}
}
