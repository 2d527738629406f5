package cdr

import (
	"context"
	"errors"
	"iter"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Delivery tuning.
const (
	batchMax   = 256                    // records per write
	minBackoff = 100 * time.Millisecond // first retry after a failure
	maxBackoff = 5 * time.Second        // retries slow down to this
	// commitEvery spaces a writer's deliveries while records trickle in.
	// Each delivery costs the destination a write (an fsync for a file)
	// and the cursor two fsyncs, which queue on the disk with the spool's
	// own: one per record ended would slow every call's CallEnded. A
	// writer that delivered less than a full batch waits this long before
	// reading again, so one delivery carries what came meanwhile. The
	// records wait durable in the spool; at Close the writer drains at once.
	// At 50 ms the three fsyncs of 20 deliveries a second were 3 % of the
	// SBC's CPU at 300 calls/s; a file or a table 200 ms behind costs no
	// billing pipeline anything.
	commitEvery = 200 * time.Millisecond
)

// sink is one writer's destination. All methods are called from the
// writer's goroutine.
type sink interface {
	// write makes a prefix of recs durable in the destination and returns
	// its length, at least 1 unless err is set. When err is a *refusal,
	// recs[n] is a record the destination refuses for good: it is set
	// aside and the records after it are offered next. After any other
	// error the records after the prefix are offered again.
	write(ctx context.Context, recs []Record) (int, error)
	// committed says that the cursor now covers everything written: a file
	// writer may finish its file (size or age limit reached).
	committed(now time.Time) error
	// due is when committed must be called even if no record comes (a
	// file's age limit); zero for never.
	due() time.Time
	// close releases the destination; a file writer finishes its file.
	close() error
}

// recoverer is a sink that must see, before the first write, the ids of
// the records after its cursor: what a crash may have left half-delivered.
type recoverer interface {
	recover(after iter.Seq[string]) error
}

// runner delivers the journal to one sink, in order, from its cursor.
type runner struct {
	name, typ string
	sink      sink
	rd        *journalReader
	spool     string
	log       *slog.Logger
	onCommit  func() // after each cursor save: the recorder compacts the spool
	q         *quarantine
	// pace waits between deliveries of less than a full batch (commitEvery;
	// tests replace it).
	pace func(ctx context.Context, stop <-chan struct{})

	mu     sync.Mutex
	cursor position

	base      uint64 // records after the cursor when the recorder opened
	delivered atomic.Uint64
	failures  atomic.Uint64
	failing   atomic.Bool
	lastErr   atomic.Pointer[string]
	saves     atomic.Uint64 // cursor saves since Open

	quarantined    atomic.Uint64 // records set aside since Open
	passed         atomic.Uint64 // records refused since Open: set aside now or before a crash
	lastQuarantine atomic.Pointer[string]
}

// position returns the runner's cursor.
func (r *runner) position() position {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cursor
}

// run delivers until stop is closed and everything durable is delivered,
// or until ctx is done (the drain deadline).
func (r *runner) run(ctx context.Context, stop <-chan struct{}) {
	defer func() {
		r.rd.closeFile()
		if err := r.sink.close(); err != nil {
			r.log.Error("cdr writer: close", "err", err)
		}
	}()
	for ctx.Err() == nil {
		items, err := r.rd.read(batchMax, r.sink.due(), stop)
		if errors.Is(err, errClosed) {
			return
		}
		if len(items) == 0 {
			if closed(stop) {
				return // drained
			}
			r.settle(ctx, stop) // a file's age limit
			continue
		}
		if !r.deliver(ctx, stop, items) {
			return
		}
		if len(items) < batchMax && r.pace != nil {
			r.pace(ctx, stop)
		}
	}
}

// paceFor returns a pace that waits d, or less if stop closes or ctx ends.
func paceFor(d time.Duration) func(context.Context, <-chan struct{}) {
	return func(ctx context.Context, stop <-chan struct{}) {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
		case <-stop:
		case <-ctx.Done():
		}
	}
}

// deliver writes items, retrying with backoff, sets aside the records the
// sink refuses for good, and moves the cursor. It returns false when it
// gave up: ctx done, or a failure while draining.
func (r *runner) deliver(ctx context.Context, stop <-chan struct{}, items []item) bool {
	recs := make([]Record, len(items))
	for i := range items {
		recs[i] = items[i].rec
	}
	backoff := minBackoff
	for done := 0; done < len(items); {
		n, err := r.sink.write(ctx, recs[done:])
		if n > 0 {
			done += n
			r.delivered.Add(uint64(n))
			r.recovered()
			if !r.commit(ctx, items[done-1].end) {
				return false
			}
			backoff = minBackoff
		}
		var refused *refusal
		switch {
		case err == nil:
		case errors.As(err, &refused):
			if !r.setAside(ctx, items[done], refused) {
				return false
			}
			done++
		default:
			r.fail(err)
			if closed(stop) || !sleep(ctx, backoff) {
				return false
			}
			backoff = min(2*backoff, maxBackoff)
		}
	}
	return true
}

// setAside quarantines a record the sink refused, retrying until the
// quarantine file holds it, then moves the cursor past it. The destination
// answered, so the writer is not failing.
func (r *runner) setAside(ctx context.Context, it item, why *refusal) bool {
	backoff := minBackoff
	for {
		added, err := r.q.add(&it.rec, why)
		if err == nil {
			if added {
				r.quarantined.Add(1)
				msg := it.rec.ID + ": " + why.err.Error()
				r.lastQuarantine.Store(&msg)
				r.log.Error("cdr writer refused a record for good; it is quarantined and delivery goes on",
					"id", it.rec.ID, "a_call_id", it.rec.ACallID, "err", why.err, "file", r.q.path)
			}
			break
		}
		r.fail(err) // the record stays before the cursor until it is on disk
		if !sleep(ctx, backoff) {
			return false
		}
		backoff = min(2*backoff, maxBackoff)
	}
	r.passed.Add(1)
	r.recovered()
	return r.commit(ctx, it.end)
}

// commit saves the cursor at p, retrying until it is durable, then lets
// the sink finish a full file.
func (r *runner) commit(ctx context.Context, p position) bool {
	backoff := minBackoff
	for {
		err := saveCursor(r.spool, r.name, p)
		if err == nil {
			break
		}
		// The records are delivered; only the cursor is behind. Writing
		// them again would duplicate them in a file, so retry the save.
		r.fail(err)
		if !sleep(ctx, backoff) {
			return false
		}
		backoff = min(2*backoff, maxBackoff)
	}
	r.saves.Add(1)
	r.mu.Lock()
	r.cursor = p
	r.mu.Unlock()
	if r.onCommit != nil {
		r.onCommit()
	}
	if err := r.sink.committed(time.Now()); err != nil {
		r.fail(err)
	}
	return true
}

// settle calls committed when the sink's deadline passed, backing off
// while it fails.
func (r *runner) settle(ctx context.Context, stop <-chan struct{}) {
	due := r.sink.due()
	if due.IsZero() || time.Now().Before(due) {
		return
	}
	if err := r.sink.committed(time.Now()); err != nil {
		r.fail(err)
		select {
		case <-time.After(maxBackoff):
		case <-ctx.Done():
		case <-stop:
		}
		return
	}
	r.recovered()
}

// fail records a failed attempt; the first of a series is logged.
func (r *runner) fail(err error) {
	r.failures.Add(1)
	msg := err.Error()
	r.lastErr.Store(&msg)
	if !r.failing.Swap(true) {
		r.log.Error("cdr writer failing; records wait in the spool", "err", err)
	}
}

// recovered clears the alarm after a success.
func (r *runner) recovered() {
	if r.failing.Swap(false) {
		r.log.Info("cdr writer recovered")
	}
}

// stats reports the runner's counters; durable is the journal's record
// count since open.
func (r *runner) stats(durable uint64) WriterStats {
	s := WriterStats{Name: r.name, Type: r.typ, Delivered: r.delivered.Load(), Failures: r.failures.Load(),
		Failing: r.failing.Load()}
	if total, done := r.base+durable, s.Delivered+r.passed.Load(); total > done {
		s.Pending = total - done
	}
	if e := r.lastErr.Load(); e != nil {
		s.LastError = *e
	}
	s.Quarantined = r.quarantined.Load()
	if q := r.lastQuarantine.Load(); q != nil {
		s.LastQuarantined = *q
	}
	s.QuarantineFile = r.q.path
	return s
}

// sleep waits d; false if ctx ended first.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
