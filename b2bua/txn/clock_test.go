package txn

import (
	"slices"
	"sync"
	"time"
)

// fakeClock is a manual clock for Layer.sched: time moves only in
// Advance, which runs the due callbacks on the caller's goroutine in
// deadline order. The timer tests are thereby exact and immune to load.
type fakeClock struct {
	mu      sync.Mutex
	elapsed time.Duration
	seq     int
	timers  []*fakeTimer
}

type fakeTimer struct {
	c     *fakeClock
	at    time.Duration
	seq   int
	f     func()
	ended bool // fired or stopped
}

func (c *fakeClock) now() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.elapsed
}

func (c *fakeClock) afterFunc(d time.Duration, f func()) resetter {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seq++
	t := &fakeTimer{c: c, at: c.elapsed + d, seq: c.seq, f: f}
	c.timers = append(c.timers, t)
	return t
}

// Reset sets t to fire d from now, again if it fired or was stopped.
func (t *fakeTimer) Reset(d time.Duration) bool {
	c := t.c
	c.mu.Lock()
	defer c.mu.Unlock()
	was := !t.ended
	c.seq++
	t.at, t.seq, t.ended = c.elapsed+d, c.seq, false
	if !slices.Contains(c.timers, t) {
		c.timers = append(c.timers, t)
	}
	return was
}

func (t *fakeTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	was := !t.ended
	t.ended = true
	return was
}

// Advance moves the clock d forward, firing every timer due by then,
// including those armed by the callbacks themselves.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	target := c.elapsed + d
	for {
		var due *fakeTimer
		live := c.timers[:0]
		for _, t := range c.timers {
			if t.ended {
				continue
			}
			live = append(live, t)
			if t.at <= target && (due == nil || t.at < due.at || (t.at == due.at && t.seq < due.seq)) {
				due = t
			}
		}
		c.timers = live
		if due == nil {
			c.elapsed = target
			c.mu.Unlock()
			return
		}
		c.elapsed = due.at
		due.ended = true
		c.mu.Unlock()
		due.f()
		c.mu.Lock()
	}
}
