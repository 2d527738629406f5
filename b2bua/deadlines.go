package b2bua

import (
	"container/heap"
	"sync"
	"time"
)

// deadlines run the calls' timers (timers.go) on one runtime timer of
// the server's. A time.AfterFunc each was a runtime timer and a closure,
// some 0.18 kB an established call for its maximum duration alone (kept
// for the call's life); a timer is now a 32-byte entry in a heap ordered
// by deadline. The runtime timer is set for the earliest; when it fires,
// every entry due is posted to its call as an evTimer event carrying the
// entry, in deadline order. A timer fires no earlier than asked, and as
// late as a time.AfterFunc would. The zero value is ready.
type deadlines struct {
	mu    sync.Mutex
	h     deadlineHeap
	t     *time.Timer
	armed bool          // t is set to fire at next
	next  time.Duration // on the deadlines' clock (sinceStart)
}

// deadline is one running timer of a call. Its i is guarded by
// deadlines.mu; the rest is set when it is made.
type deadline struct {
	at   time.Duration // on the deadlines' clock
	c    *Call
	kind timerKind
	i    int // index in the heap; -1 once fired or stopped
}

// deadlinesStart is the deadlines' clock's origin, with its monotonic
// reading: a deadline is a Duration since it.
var deadlinesStart = time.Now()

func sinceStart() time.Duration { return time.Since(deadlinesStart) }

// add starts a timer of kind k for c, due after d.
func (ds *deadlines) add(c *Call, k timerKind, d time.Duration) *deadline {
	e := &deadline{at: sinceStart() + d, c: c, kind: k}
	ds.mu.Lock()
	heap.Push(&ds.h, e)
	ds.armLocked()
	ds.mu.Unlock()
	return e
}

// stop keeps e from firing; false if it had fired (its event may still
// be on its way) or was stopped already.
func (ds *deadlines) stop(e *deadline) bool {
	ds.mu.Lock()
	defer ds.mu.Unlock()
	if e.i < 0 {
		return false
	}
	heap.Remove(&ds.h, e.i)
	return true
}

// armLocked sets the runtime timer for the earliest deadline, unless it
// is set for that or earlier already. Called with ds.mu held.
func (ds *deadlines) armLocked() {
	if len(ds.h) == 0 {
		return
	}
	at := ds.h[0].at
	if ds.armed && ds.next <= at {
		return
	}
	wait := at - sinceStart()
	if ds.t == nil {
		ds.t = time.AfterFunc(wait, ds.fire)
	} else {
		ds.t.Reset(wait)
	}
	ds.armed, ds.next = true, at
}

// fire posts every timer due to its call and sets the runtime timer for
// the next. A call posted to never blocks it (Call.post).
func (ds *deadlines) fire() {
	ds.mu.Lock()
	ds.armed = false
	now := sinceStart()
	var due []*deadline
	for len(ds.h) > 0 && ds.h[0].at <= now {
		due = append(due, heap.Pop(&ds.h).(*deadline))
	}
	ds.armLocked()
	ds.mu.Unlock()
	for _, e := range due {
		e.c.post(event{kind: evTimer, due: e})
	}
}

// deadlineHeap is a min-heap of deadlines by their time (container/heap).
type deadlineHeap []*deadline

func (h deadlineHeap) Len() int           { return len(h) }
func (h deadlineHeap) Less(i, j int) bool { return h[i].at < h[j].at }
func (h deadlineHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].i, h[j].i = i, j
}

func (h *deadlineHeap) Push(x any) {
	e := x.(*deadline)
	e.i = len(*h)
	*h = append(*h, e)
}

func (h *deadlineHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	e.i = -1
	return e
}
