package app

import (
	"time"

	"github.com/sbc-project/sbc/internal/admin"
)

// drainPoll is how often a drain checks whether the last call has ended;
// drainReport how often it logs its progress.
const (
	drainPoll   = 100 * time.Millisecond
	drainReport = 5 * time.Second
)

// Drain starts a graceful drain, once: new calls are refused with 503 and
// Retry-After, /readyz fails, and calls in progress go on until they end
// or admin.drain_timeout passes. Drained is closed then; the caller (the
// sbc command) closes the App, which ends the calls still up with BYE and
// writes their CDRs. Calling Drain again only reports the state.
func (a *App) Drain() admin.DrainStatus {
	a.ops.drainMu.Lock()
	defer a.ops.drainMu.Unlock()
	if !a.ops.draining {
		a.ops.draining = true
		timeout := a.Config().Admin.DrainTimeout
		a.ops.drainDeadline = time.Now().Add(timeout)
		a.server.Drain(true)
		a.metrics.SetDraining(true)
		a.log.Info("draining: new calls get 503; waiting for the calls up to end",
			"calls", a.server.ActiveCalls(), "timeout", timeout)
		a.wg.Add(1)
		go a.waitDrained(a.ops.drainDeadline)
	}
	return admin.DrainStatus{Draining: true, ActiveCalls: a.server.ActiveCalls(), Deadline: a.ops.drainDeadline.UTC()}
}

// Drained is closed when a drain has finished: every call ended, or the
// drain timeout passed. It never closes without Drain.
func (a *App) Drained() <-chan struct{} { return a.ops.drained }

// waitDrained polls until no call is left or deadline, logging progress,
// then closes Drained. It gives up when the App closes.
func (a *App) waitDrained(deadline time.Time) {
	defer a.wg.Done()
	tick := time.NewTicker(drainPoll)
	defer tick.Stop()
	lastReport := time.Now()
	for {
		n := a.server.ActiveCalls()
		switch {
		case n == 0:
			a.log.Info("drained: no call left")
			a.endDrain()
			return
		case !time.Now().Before(deadline):
			a.log.Warn("drain timeout: ending the calls still up", "calls", n)
			a.endDrain()
			return
		case time.Since(lastReport) >= drainReport:
			lastReport = time.Now()
			a.log.Info("draining", "calls", n, "left", time.Until(deadline).Round(time.Second))
		}
		select {
		case <-a.ops.ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// endDrain closes Drained, once: a drain and a migration may both end.
func (a *App) endDrain() { a.ops.drainedOnce.Do(func() { close(a.ops.drained) }) }
