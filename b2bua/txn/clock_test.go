package txn

import (
	"sync"
	"time"
)

// fakeClock is a manual clock for Layer.afterFunc: time moves only in
// Advance, which runs the due callbacks on the caller's goroutine in
// deadline order. The timer tests are thereby exact and immune to load.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Duration
	seq    int
	timers []*fakeTimer
}

type fakeTimer struct {
	c     *fakeClock
	at    time.Duration
	seq   int
	f     func()
	ended bool // fired or stopped
}

func (c *fakeClock) afterFunc(d time.Duration, f func()) stopper {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seq++
	t := &fakeTimer{c: c, at: c.now + d, seq: c.seq, f: f}
	c.timers = append(c.timers, t)
	return t
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
	target := c.now + d
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
			c.now = target
			c.mu.Unlock()
			return
		}
		c.now = due.at
		due.ended = true
		c.mu.Unlock()
		due.f()
		c.mu.Lock()
	}
}

// pending counts the timers that have not fired nor been stopped.
func (c *fakeClock) pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, t := range c.timers {
		if !t.ended {
			n++
		}
	}
	return n
}
