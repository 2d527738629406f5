package policy

import (
	"log/slog"
	"slices"
	"time"
)

// logSources bounds the sources the log limiter remembers. A source it
// forgot may log one line early; memory stays bounded.
const logSources = 4096

// logLimiter lets one line per source and stage through per interval and
// counts the rest, so a flood shows up in the log as one line per interval
// with the number of refusals it stood for, not as the flood itself.
type logLimiter struct {
	log      *slog.Logger
	interval time.Duration
	now      func() time.Time
	sources  *table[[stageCount]logSlot]
}

// stageCount is the number of stage names (StageOrder).
const stageCount = 6

type logSlot struct {
	last       time.Time // when a line was last written
	suppressed int       // refusals not logged since
}

func newLogLimiter(log *slog.Logger, interval time.Duration, now func() time.Time) *logLimiter {
	return &logLimiter{log: log, interval: interval, now: now, sources: newTable[[stageCount]logSlot](logSources)}
}

// refused logs d for r unless a line for this source and stage was written
// less than the interval ago.
func (l *logLimiter) refused(r *Request, d Decision) {
	i := slices.Index(StageOrder, d.Stage)
	if i < 0 || i >= stageCount {
		i = 0 // unknown stage names share the first slot
	}
	now := l.now()
	write, suppressed := false, 0
	l.sources.do(sourceKey(r.Src.Addr()), func(v *[stageCount]logSlot, fresh bool) {
		s := &v[i]
		if !s.last.IsZero() && now.Sub(s.last) < l.interval {
			s.suppressed++
			return
		}
		write, suppressed = true, s.suppressed
		s.last, s.suppressed = now, 0
	})
	if !write {
		return
	}
	action := "dropped"
	if d.Action == Answer {
		action = "answered"
	}
	l.log.Info("request refused", "src", r.Src.Addr().Unmap(), "stage", d.Stage, "cause", d.Cause,
		"action", action, "code", d.Code, "method", r.Method, "user_agent", clip(r.UserAgent, 128),
		"suppressed", suppressed)
}

// clip shortens a string taken from a request before it is logged.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
