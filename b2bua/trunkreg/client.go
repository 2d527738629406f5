package trunkreg

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sbc-project/sbc/b2bua/routing"
	"github.com/sbc-project/sbc/b2bua/sipmsg"
)

// client keeps one trunk registered. Its loop (run) owns the SIP dialog
// state; the status is guarded by mu for Status.
type client struct {
	m      *Manager
	tr     atomic.Pointer[routing.Trunk]
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{} // closed when run has returned (unregistered)

	callID, fromTag string
	cseq            uint32

	mu sync.Mutex
	st Status
}

func newClient(m *Manager, tr *routing.Trunk) *client {
	ctx, cancel := context.WithCancel(context.Background())
	c := &client{m: m, ctx: ctx, cancel: cancel, done: make(chan struct{}),
		callID: sipmsg.NewToken(16), fromTag: sipmsg.NewToken(8), cseq: 1}
	c.tr.Store(tr)
	c.st = Status{Trunk: tr.Name, State: StateRegistering, Registrar: tr.Register.RequestURI().String(), Since: time.Now()}
	return c
}

func (c *client) trunk() *routing.Trunk      { return c.tr.Load() }
func (c *client) setTrunk(tr *routing.Trunk) { c.tr.Store(tr) }

// stop asks the loop to unregister and end; it does not wait.
func (c *client) stop() { c.cancel() }

func (c *client) status() Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.st
}

// run registers, refreshes and retries until stopped, then unregisters.
func (c *client) run() {
	defer close(c.done)
	log := c.m.deps.Log.With("trunk", c.trunk().Name)
	failures := 0
	registered := false
	for c.ctx.Err() == nil {
		res := c.register(c.ctx, c.trunk().Register.Expires)
		if c.ctx.Err() != nil {
			// Stopped while the REGISTER was out: the registrar may have
			// taken it, so it is taken back.
			registered = true
			break
		}
		var wait time.Duration
		if res.err == nil {
			failures, registered = 0, true
			wait = refreshIn(res.granted)
			c.set(log, func(s *Status) {
				s.State, s.LastError, s.Failures = StateRegistered, "", 0
				s.Expires, s.Contact = time.Now().Add(res.granted), res.contact
			})
		} else {
			failures++
			wait = c.backoff(failures, res.retryAfter)
			c.set(log, func(s *Status) {
				s.State, s.LastError, s.Failures, s.Expires = StateFailed, res.err.Error(), failures, time.Time{}
			})
		}
		c.set(log, func(s *Status) { s.NextTry = time.Now().Add(wait) })
		t := time.NewTimer(wait)
		select {
		case <-c.ctx.Done():
			t.Stop()
		case <-t.C:
		}
	}
	if registered {
		ctx, cancel := context.WithTimeout(context.Background(), c.m.cfg.Unregister)
		if res := c.register(ctx, 0); res.err != nil {
			log.Warn("trunk unregister", "err", res.err)
		}
		cancel()
	}
	c.set(log, func(s *Status) { s.State, s.Expires, s.NextTry = StateUnregistered, time.Time{}, time.Time{} })
}

// set changes the status and logs a change of state once.
func (c *client) set(log *slog.Logger, f func(*Status)) {
	c.mu.Lock()
	before := c.st.State
	f(&c.st)
	changed := c.st.State != before
	if changed {
		c.st.Since = time.Now()
	}
	st := c.st
	c.mu.Unlock()
	if !changed {
		return
	}
	if st.State == StateFailed {
		log.Warn("trunk registration failed", "registrar", st.Registrar, "err", st.LastError)
	} else {
		log.Info("trunk registration "+string(st.State), "registrar", st.Registrar, "expires", st.Expires.Format(time.RFC3339))
	}
	if c.m.deps.OnChange != nil {
		c.m.deps.OnChange(st)
	}
}

// refreshIn is when to refresh a registration granted for d: at half of
// it, so a lost REGISTER still has time for a retry.
func refreshIn(d time.Duration) time.Duration { return max(d/2, 500*time.Millisecond) }

// backoff is the wait after the n-th failure in a row: RetryMin doubled
// each time up to RetryMax, with up to 25% taken off at random (so many
// SBCs do not retry together), and never less than Retry-After.
func (c *client) backoff(n int, retryAfter time.Duration) time.Duration {
	d := c.m.cfg.RetryMin
	for i := 1; i < n && d < c.m.cfg.RetryMax; i++ {
		d *= 2
	}
	d = min(d, c.m.cfg.RetryMax)
	d -= time.Duration(rand.Int64N(int64(d)/4 + 1))
	return max(d, min(retryAfter, c.m.cfg.RetryMax))
}
