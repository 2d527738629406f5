package config

import (
	"strings"
	"testing"
	"time"
)

func TestValidateTimeline(t *testing.T) {
	tests := []struct {
		name string
		set  func(*Timeline)
		key  string // the key the problem names; "" for none
	}{
		{"defaults", func(*Timeline) {}, ""},
		{"keep none, sampling off", func(tl *Timeline) { tl.Keep, tl.SampleInterval = 0, 0 }, ""},
		{"negative keep", func(tl *Timeline) { tl.Keep = -1 }, "timeline.keep"},
		{"keep too many", func(tl *Timeline) { tl.Keep = MaxTimelineKeep + 1 }, "timeline.keep"},
		{"one event", func(tl *Timeline) { tl.MaxEvents = 1 }, "timeline.max_events"},
		{"too many events", func(tl *Timeline) { tl.MaxEvents = MaxTimelineEvents + 1 }, "timeline.max_events"},
		{"sampling too often", func(tl *Timeline) { tl.SampleInterval = 10 * time.Millisecond }, "timeline.sample_interval"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			tt.set(&c.Timeline)
			err := c.Validate()
			switch {
			case tt.key == "" && err != nil:
				t.Fatalf("Validate: %v", err)
			case tt.key != "" && (err == nil || !strings.Contains(err.Error(), tt.key)):
				t.Fatalf("Validate = %v, want a problem naming %s", err, tt.key)
			}
		})
	}
}
