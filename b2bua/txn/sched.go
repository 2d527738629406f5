package txn

import (
	"math"
	"sync"
	"time"
)

// The transaction timers of a layer share one runtime timer. Each arming
// of an RFC 3261 timer had been a time.AfterFunc of its own: a runtime
// timer and a callback allocated (some 190 B) a dozen times a call, four
// of them held 64*T1 by every call's lingering transactions (10 MB of the
// heap at 1,000 calls/s), and a goroutine started for each that fired.
// Now a transaction's timers are slots in its own struct, linked into
// the layer's scheduler: one FIFO queue per delay (the layer uses a
// dozen: T1 and its doublings, T2, T4, 64*T1, the TU's), in which
// deadlines come in arming order, so that arming and stopping are O(1)
// (a heap of all timers cost as much as the runtime's, in cache misses)
// and allocate nothing; one runtime timer, due at the earliest head,
// fires on one goroutine everything due by then.
//
// A timer may fire a little late, never early: up to a 32nd of its delay,
// at most maxSlack (Layer's scheduler; tests on a manual clock keep it
// 0, exact). The runtime timer is set for the latest moment the earliest
// heads allow, and then fires every timer due, so the timers armed within
// that window share one wake-up. At 800 calls/s the runtime timer had
// fired 353 times a second, each a goroutine (time.AfterFunc) and a
// thread woken for microseconds of work; now 44 (BENCHMARKS.md, ninth
// step). A 32nd keeps RFC 3261's timers what they are: T1's
// retransmission 16 ms late at most. Each queue takes its slack when it
// is made (slackFor): set s.slack before the first arming.

// timerKind is what a transaction does when one of its timers fires
// (owner.expire).
type timerKind uint8

const (
	kindA      timerKind = iota // client: Timers A and E (retransmission)
	kindB                       // client: Timers B and F, a CANCELed INVITE's wait
	kindG                       // server: Timer G, and the 2xx's retransmission (RFC 6026)
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
// transaction's struct, linked into a queue of the layer's scheduler
// while armed. Its fields change under the scheduler's mutex; seq, kind
// and owner only with the owner's mutex held as well (arm, stop), so
// the owner may read them under its own.
type timer struct {
	at         time.Duration // the deadline, on the scheduler's clock
	order      uint64        // arming order, for deadlines that tie
	q          *queue        // nil: not armed
	prev, next *timer
	seq        uint32 // bumped by each arm and stop: a firing already under way sees it is stale
	kind       timerKind
	owner      owner
}

// queue holds the armed timers of one delay, earliest first.
type queue struct {
	d          time.Duration
	slack      time.Duration // how late its timers may fire (slackFor)
	head, tail *timer
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

// scheduler is a layer's timer queues and its one runtime timer.
type scheduler struct {
	l     *Layer
	clock clock

	mu      sync.Mutex
	queues  []*queue // one per delay armed so far, a dozen at most
	armedN  int
	order   uint64
	rt      resetter      // made at the first arming
	next    time.Duration // when rt fires, if due
	slack   time.Duration // the most a timer may fire late (maxSlack; 0: exact)
	due     bool          // rt is set to fire at next
	stopped bool          // Layer.Close: rt is not set again
}

// arm (re)starts tm, a timer of o, to fire kind after d. Called with
// o's mutex held. The clock is read under s.mu, so that each queue's
// deadlines come in the order of its timers.
func (s *scheduler) arm(tm *timer, d time.Duration, o owner, kind timerKind) {
	s.mu.Lock()
	now := s.clock.now()
	at := now + d
	if tm.q != nil {
		s.unlink(tm)
	}
	s.order++
	tm.seq++
	tm.at, tm.order, tm.kind, tm.owner = at, s.order, kind, o
	q := s.queueFor(d)
	s.link(q, tm)
	if q.head == tm {
		if fire := at + q.slack; !s.due || fire < s.next {
			s.schedule(fire, fire-now)
		}
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
		if tm.q != nil {
			s.unlink(tm)
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
		s.mu.Lock()
		s.due = false
		tm := s.earliest()
		if tm == nil {
			s.mu.Unlock()
			return
		}
		if now := s.clock.now(); tm.at > now {
			fire := s.latest()
			s.schedule(fire, max(fire-now, 0))
			s.mu.Unlock()
			return
		}
		s.unlink(tm)
		o, seq, kind := tm.owner, tm.seq, tm.kind
		s.mu.Unlock()
		s.fire(tm, o, seq, kind)
	}
}

func (s *scheduler) fire(tm *timer, o owner, seq uint32, kind timerKind) {
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

// armed counts the timers armed.
func (s *scheduler) armed() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.armedN
}

// earliest returns the head that is due first, or nil. s.mu held.
func (s *scheduler) earliest() *timer {
	var first *timer
	for _, q := range s.queues {
		h := q.head
		if h != nil && (first == nil || h.at < first.at || (h.at == first.at && h.order < first.order)) {
			first = h
		}
	}
	return first
}

// latest returns the latest moment the runtime timer may fire at: the
// earliest, over the queues, of a head's deadline plus its slack; with
// no timer armed, never. s.mu held.
func (s *scheduler) latest() time.Duration {
	fire := time.Duration(math.MaxInt64)
	for _, q := range s.queues {
		if q.head != nil {
			fire = min(fire, q.head.at+q.slack)
		}
	}
	return fire
}

// maxSlack bounds how late the layer's timers may fire (see slack).
const maxSlack = 20 * time.Millisecond

// slackFor is how late a timer of delay d may fire: a 32nd of d, at most
// s.slack.
func (s *scheduler) slackFor(d time.Duration) time.Duration {
	return min(d/32, s.slack)
}

// queueFor returns the queue of delay d, made if new. s.mu held.
func (s *scheduler) queueFor(d time.Duration) *queue {
	for _, q := range s.queues {
		if q.d == d {
			return q
		}
	}
	q := &queue{d: d, slack: s.slackFor(d)}
	s.queues = append(s.queues, q)
	return q
}

// link appends tm to q. s.mu held.
func (s *scheduler) link(q *queue, tm *timer) {
	tm.q, tm.prev, tm.next = q, q.tail, nil
	if q.tail != nil {
		q.tail.next = tm
	} else {
		q.head = tm
	}
	q.tail = tm
	s.armedN++
}

// unlink takes tm out of its queue. s.mu held.
func (s *scheduler) unlink(tm *timer) {
	q := tm.q
	if tm.prev != nil {
		tm.prev.next = tm.next
	} else {
		q.head = tm.next
	}
	if tm.next != nil {
		tm.next.prev = tm.prev
	} else {
		q.tail = tm.prev
	}
	tm.q, tm.prev, tm.next = nil, nil, nil
	s.armedN--
}
