package txn

import (
	"sync"
	"time"
)

// The transaction timers of a layer share one runtime timer. Each arming
// of an RFC 3261 timer had been a time.AfterFunc of its own: a runtime
// timer and a callback allocated (some 190 B) a dozen times a call, four
// of them held 64*T1 by every call's lingering transactions (10 MB of the
// heap at 1,000 calls/s), and a goroutine started for each that fired.
// Now a transaction's timers are slots in its own struct, kept in one
// min-heap per layer (the scheduler) ordered by deadline: arming or
// stopping one allocates nothing, and one runtime timer, due at the
// heap's top, fires on one goroutine everything due by then.

// timerKind is what a transaction does when one of its timers fires
// (owner.expire).
type timerKind uint8

const (
	kindA      timerKind = iota // client: Timers A and E (retransmission)
	kindB                       // client: Timers B and F, a CANCELed INVITE's wait
	kindG                       // server: Timer G, the 2xx's retransmission
	kindH                       // server: Timer H, no ACK for a non-2xx
	kindL                       // server: Timer L, the end of Accepted
	kindTrying                  // server: the automatic 100 Trying
	kindTU                      // server: the TU's deadline (Timers.TU)
	kindEnd                     // either: the linger is over (Timers D, I, J, K, M)
)

// owner is a transaction whose timers the scheduler fires: expire runs
// with the mutex held; the outbox is flushed once it is released.
type owner interface {
	mutex() *sync.Mutex
	expire(k timerKind, out *outbox)
}

// timer is one RFC 3261 timer of a transaction: a slot of the
// transaction's struct, in the layer's heap while armed. Its fields
// change only with both the owner's mutex and the scheduler's held
// (arm, stop), but idx, which the scheduler alone moves.
type timer struct {
	at    time.Duration // the deadline, on the scheduler's clock
	order uint64        // arming order, for deadlines that tie
	idx   int           // position in the heap + 1; 0: not armed
	seq   uint64        // bumped by each arm and stop: a firing already under way sees it is stale
	kind  timerKind
	owner owner
}

// resetter is the runtime timer: *time.Timer, or a test's fake.
type resetter interface {
	Stop() bool
	Reset(d time.Duration) bool
}

// clock is where the scheduler reads the time and gets its runtime
// timer; tests replace Layer.sched.clock with a manual one.
type clock interface {
	now() time.Duration
	afterFunc(d time.Duration, f func()) resetter
}

// runtimeClock is the monotonic clock since epoch and time.AfterFunc.
type runtimeClock struct{ epoch time.Time }

func (c runtimeClock) now() time.Duration { return time.Since(c.epoch) }

func (runtimeClock) afterFunc(d time.Duration, f func()) resetter { return time.AfterFunc(d, f) }

// scheduler is a layer's timer heap and its one runtime timer.
type scheduler struct {
	l     *Layer
	clock clock

	mu      sync.Mutex
	h       []*timer // a min-heap by (at, order)
	order   uint64
	rt      resetter      // made at the first arming
	next    time.Duration // when rt fires, if due
	due     bool          // rt is set to fire at next
	stopped bool          // Layer.Close: rt is not set again
}

// arm (re)starts tm, a timer of o, to fire kind after d. Called with
// o's mutex held.
func (s *scheduler) arm(tm *timer, d time.Duration, o owner, kind timerKind) {
	at := s.clock.now() + d
	s.mu.Lock()
	if tm.idx != 0 {
		s.remove(tm)
	}
	s.order++
	tm.seq++
	tm.at, tm.order, tm.kind, tm.owner = at, s.order, kind, o
	s.push(tm)
	if s.h[0] == tm && (!s.due || at < s.next) {
		s.schedule(at, d)
	}
	s.mu.Unlock()
}

// stop disarms the timers tms of one owner. Called with its mutex
// held. The runtime timer is left as it is: if it was due for one of
// them, it fires for nothing and is set for the next deadline (one
// wake-up serves the whole layer).
func (s *scheduler) stop(tms ...*timer) {
	s.mu.Lock()
	for _, tm := range tms {
		if tm.idx != 0 {
			s.remove(tm)
		}
		tm.seq++
		tm.owner = nil
	}
	s.mu.Unlock()
}

// schedule sets the runtime timer to fire at at, d from now. s.mu held.
func (s *scheduler) schedule(at, d time.Duration) {
	if s.stopped {
		return
	}
	if s.rt == nil {
		s.rt = s.clock.afterFunc(d, s.run)
	} else {
		s.rt.Reset(d)
	}
	s.next, s.due = at, true
}

// run fires every timer due, earliest first, then sets the runtime timer
// for the next. Each fires under its owner's mutex on this goroutine;
// what it must send goes out here too, unless a reliable transport could
// hold it up (a stream write waits up to its write timeout): then on a
// goroutine of its own, so that no peer stalls the other transactions'
// timers.
func (s *scheduler) run() {
	for {
		now := s.clock.now()
		s.mu.Lock()
		s.due = false
		if len(s.h) == 0 {
			s.mu.Unlock()
			return
		}
		tm := s.h[0]
		if tm.at > now {
			s.schedule(tm.at, tm.at-now)
			s.mu.Unlock()
			return
		}
		s.remove(tm)
		o, seq, kind := tm.owner, tm.seq, tm.kind
		s.mu.Unlock()
		s.fire(tm, o, seq, kind)
	}
}

func (s *scheduler) fire(tm *timer, o owner, seq uint64, kind timerKind) {
	var out outbox
	mu := o.mutex()
	mu.Lock()
	if tm.seq == seq {
		o.expire(kind, &out)
	}
	mu.Unlock()
	if out.mayBlock() {
		go out.flush(s.l)
		return
	}
	out.flush(s.l)
}

// close stops the runtime timer for good (Layer.Close, once every
// transaction has ended).
func (s *scheduler) close() {
	s.mu.Lock()
	s.stopped = true
	if s.rt != nil {
		s.rt.Stop()
	}
	s.due = false
	s.mu.Unlock()
}

// armed counts the timers in the heap.
func (s *scheduler) armed() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.h)
}

func (s *scheduler) less(i, j int) bool {
	a, b := s.h[i], s.h[j]
	return a.at < b.at || (a.at == b.at && a.order < b.order)
}

func (s *scheduler) swap(i, j int) {
	s.h[i], s.h[j] = s.h[j], s.h[i]
	s.h[i].idx = i + 1
	s.h[j].idx = j + 1
}

func (s *scheduler) push(tm *timer) {
	s.h = append(s.h, tm)
	tm.idx = len(s.h)
	s.up(len(s.h) - 1)
}

func (s *scheduler) remove(tm *timer) {
	i, last := tm.idx-1, len(s.h)-1
	if i != last {
		s.swap(i, last)
	}
	s.h[last] = nil
	s.h = s.h[:last]
	tm.idx = 0
	if i != last {
		s.down(i)
		s.up(i)
	}
}

func (s *scheduler) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !s.less(i, p) {
			return
		}
		s.swap(i, p)
		i = p
	}
}

func (s *scheduler) down(i int) {
	n := len(s.h)
	for {
		c := 2*i + 1
		if c >= n {
			return
		}
		if c+1 < n && s.less(c+1, c) {
			c++
		}
		if !s.less(c, i) {
			return
		}
		s.swap(i, c)
		i = c
	}
}
