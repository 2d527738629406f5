package routing

import (
	"context"
	"errors"
	"sync"
	"time"
)

// Prober sends one OPTIONS to tr and waits for the answer. ctx carries the
// trunk's OptionsTimeout. A nil error means the trunk answered; any error
// counts as a failed probe. Which responses count as an answer is the
// prober's decision (commonly any final response: even a 405 proves the
// trunk alive). The caller implements it with its SIP stack.
type Prober func(ctx context.Context, tr *Trunk) error

// OnChange registers fn to be called, from Monitor's goroutines and without
// locks held, each time a trunk goes down or up. It replaces any earlier
// hook; nil removes it. fn must not block for long: it delays the next probe
// of that trunk.
func (t *Table) OnChange(fn func(tr *Trunk, up bool)) {
	t.hookMu.Lock()
	t.hook = fn
	t.hookMu.Unlock()
}

// Monitor probes every trunk whose OptionsInterval is positive, once at
// start and then every OptionsInterval, and re-resolves the DNS names of all
// trunks every 60 seconds so TrunkBySource stays current. FailureThreshold
// failed probes in a row mark a trunk down; one success marks it up; each
// transition is logged once at Info ("trunk down", "trunk up") and passed to
// the OnChange hook. A probe cut short because ctx ended is not counted.
//
// Monitor returns when ctx is done and every goroutine it started has
// exited. Only one Monitor may run per Table at a time: a second concurrent
// call logs an error and returns at once, as does a nil probe.
func (t *Table) Monitor(ctx context.Context, probe Prober) {
	if probe == nil {
		t.log.Error("trunk monitor not started", "reason", "nil prober")
		return
	}
	if !t.running.TryLock() {
		t.log.Error("trunk monitor not started", "reason", "already running")
		return
	}
	defer t.running.Unlock()

	var wg sync.WaitGroup
	for _, tr := range t.trunks {
		if tr.OptionsInterval > 0 {
			wg.Go(func() { t.probeLoop(ctx, tr, probe) })
		}
	}
	if t.hasDNSTrunks() {
		wg.Go(func() { t.refreshLoop(ctx) })
	}
	<-ctx.Done()
	wg.Wait()
}

func (t *Table) probeLoop(ctx context.Context, tr *Trunk, probe Prober) {
	tick := time.NewTicker(tr.OptionsInterval)
	defer tick.Stop()
	for {
		t.probeOnce(ctx, tr, probe)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func (t *Table) probeOnce(ctx context.Context, tr *Trunk, probe Prober) {
	pctx, cancel := context.WithTimeout(ctx, tr.OptionsTimeout)
	err := probe(pctx, tr)
	cancel()
	if ctx.Err() != nil {
		// Shutting down: the trunk did nothing wrong.
		return
	}
	changed, failures := tr.record(err, time.Now())
	switch {
	case changed:
		t.transition(tr, err, failures)
	case err != nil:
		t.log.Debug("trunk probe failed", "trunk", tr.Name, "failures", failures, "err", err)
	}
}

// transition logs a state change of tr caused by the probe result err and
// tells the OnChange hook.
func (t *Table) transition(tr *Trunk, err error, failures int) {
	up := err == nil
	if up {
		t.log.Info("trunk up", "trunk", tr.Name, "reason", "probe answered")
	} else {
		t.log.Info("trunk down", "trunk", tr.Name, "reason", err.Error(), "failures", failures)
	}
	t.hookMu.Lock()
	fn := t.hook
	t.hookMu.Unlock()
	if fn != nil {
		fn(tr, up)
	}
}

func (t *Table) hasDNSTrunks() bool {
	for _, tr := range t.trunks {
		if !tr.ip.IsValid() {
			return true
		}
	}
	return false
}

// Resolve looks up the DNS name of every trunk that has one, now, and
// returns every failure joined. Trunks with IP literals need nothing.
func (t *Table) Resolve(ctx context.Context) error {
	var errs []error
	for _, tr := range t.trunks {
		if tr.ip.IsValid() {
			continue
		}
		if _, err := tr.resolve(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// refreshLoop re-resolves DNS-named trunks at start and every t.refresh,
// logging when a name stops or starts resolving (not every failure).
func (t *Table) refreshLoop(ctx context.Context) {
	tick := time.NewTicker(t.refresh)
	defer tick.Stop()
	failing := make(map[*Trunk]bool)
	for {
		for _, tr := range t.trunks {
			if tr.ip.IsValid() {
				continue
			}
			_, err := tr.resolve(ctx)
			if ctx.Err() != nil {
				return
			}
			switch {
			case err != nil && !failing[tr]:
				failing[tr] = true
				t.log.Warn("trunk name not resolving", "trunk", tr.Name, "host", tr.Host, "err", err)
			case err == nil && failing[tr]:
				delete(failing, tr)
				t.log.Info("trunk name resolving again", "trunk", tr.Name, "host", tr.Host)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}
