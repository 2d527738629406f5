package app

import (
	"context"

	"github.com/sbc-project/sbc/b2bua/timeline"
	"github.com/sbc-project/sbc/internal/config"
)

// newTimelines is the store of the calls' timelines (config timeline):
// every SIP message keeps its text at log level debug, otherwise only
// those of traced calls (log.trace).
func newTimelines(cfg *config.Config) *timeline.Store {
	return timeline.NewStore(timeline.Spec{Keep: cfg.Timeline.Keep, MaxEvents: cfg.Timeline.MaxEvents,
		Text: cfg.Log.Level == "debug"})
}

// runTimelines samples the live calls' quality until ctx ends.
func (a *App) runTimelines(ctx context.Context, cfg *config.Config) {
	if every := cfg.Timeline.SampleInterval; every > 0 {
		a.wg.Go(func() { a.timelines.Run(ctx, every) })
	}
}

// timeline serves GET /api/v1/calls/{id}/timeline.
func (a *App) timeline(id string) (any, bool) {
	t, ok := a.timelines.Find(id)
	if !ok {
		return nil, false
	}
	return t.View(), true
}
