package txn

import (
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

// probe is an owner whose timers report when they fired.
type probe struct {
	mu    sync.Mutex
	id    int
	gen   int // bumped by each arming
	tm    timer
	clk   clock
	fired chan<- firing
}

type firing struct {
	id, gen int
	at      time.Duration
}

func (p *probe) mutex() *sync.Mutex { return &p.mu }

func (p *probe) expire(_ timerKind, _ *outbox) { p.fired <- firing{p.id, p.gen, p.clk.now()} }

func newSched(clk clock) *scheduler {
	l := &Layer{}
	l.sched = scheduler{l: l, clock: clk}
	return &l.sched
}

// TestSchedulerFiresEachAtItsDeadline: timers of a few delays (as the
// layer's: each delay's queue), armed, re-armed and stopped in a random
// order while the clock moves, fire exactly at their last deadline, in
// deadline order, and a stopped one never; nothing is left armed.
func TestSchedulerFiresEachAtItsDeadline(t *testing.T) {
	clk := &fakeClock{}
	s := newSched(clk)
	const n = 300
	delays := []time.Duration{0, 5, 200, 500, 1000, 4000, 5000, 32000}
	fired := make(chan firing, 3*n)
	rnd := rand.New(rand.NewPCG(1, 2))
	probes := make([]*probe, n)
	want := map[[2]int]time.Duration{} // id and arming: when it must fire
	arm := func(p *probe) {
		d := delays[rnd.IntN(len(delays))] * time.Millisecond
		p.mu.Lock()
		delete(want, [2]int{p.id, p.gen})
		p.gen++
		want[[2]int{p.id, p.gen}] = clk.now() + d
		s.arm(&p.tm, d, p, kindEnd)
		p.mu.Unlock()
	}
	var last time.Duration
	got := 0
	advance := func(d time.Duration) { // and check what fired
		clk.Advance(d)
		for len(fired) > 0 {
			f := <-fired
			got++
			k := [2]int{f.id, f.gen}
			at, ok := want[k]
			switch {
			case !ok:
				t.Errorf("timer %d (arming %d) fired at %v: stopped, re-armed, or fired twice", f.id, f.gen, f.at)
			case f.at != at:
				t.Errorf("timer %d fired at %v, due at %v", f.id, f.at, at)
			case f.at < last:
				t.Errorf("timer %d fired at %v after one at %v", f.id, f.at, last)
			}
			delete(want, k)
			last = f.at
		}
	}
	for i := range probes {
		probes[i] = &probe{id: i, clk: clk, fired: fired}
		arm(probes[i])
		advance(time.Duration(rnd.IntN(3)) * time.Millisecond)
	}
	for _, p := range probes {
		switch rnd.IntN(3) {
		case 0:
			p.mu.Lock()
			s.stop(&p.tm)
			delete(want, [2]int{p.id, p.gen})
			p.mu.Unlock()
		case 1:
			arm(p)
		}
		advance(time.Duration(rnd.IntN(3)) * time.Millisecond)
	}
	advance(40 * time.Second)
	if len(want) != 0 || got == 0 {
		t.Errorf("%d fired, %d never did", got, len(want))
	}
	if a := s.armed(); a != 0 {
		t.Errorf("%d timers left armed", a)
	}
}

// TestSchedulerOnRuntimeClock: on the runtime's timer, a layer's timers
// armed out of order each fire once and never before their deadline
// (the one runtime timer is re-set for an earlier deadline armed after
// a later one).
func TestSchedulerOnRuntimeClock(t *testing.T) {
	s := newSched(runtimeClock{epoch: time.Now()})
	defer s.close()
	delays := []time.Duration{80, 40, 10, 60, 20}
	fired := make(chan firing, len(delays))
	armedAt := make([]time.Duration, len(delays))
	for i, d := range delays {
		p := &probe{id: i, clk: s.clock, fired: fired}
		p.mu.Lock()
		armedAt[i] = s.clock.now()
		s.arm(&p.tm, d*time.Millisecond, p, kindEnd)
		p.mu.Unlock()
	}
	seen := map[int]bool{}
	deadline := time.After(10 * time.Second)
	for len(seen) < len(delays) {
		select {
		case f := <-fired:
			if seen[f.id] {
				t.Fatalf("timer %d fired twice", f.id)
			}
			seen[f.id] = true
			if early := armedAt[f.id] + delays[f.id]*time.Millisecond - f.at; early > 0 {
				t.Errorf("timer %d fired %v early", f.id, early)
			}
		case <-deadline:
			t.Fatalf("only %d of %d timers fired", len(seen), len(delays))
		}
	}
}

// wakeCounter is a fake clock that counts the runtime timer's firings
// (the scheduler's wake-ups).
type wakeCounter struct {
	*fakeClock
	wakes int
}

func (c *wakeCounter) afterFunc(d time.Duration, f func()) resetter {
	return c.fakeClock.afterFunc(d, func() { c.wakes++; f() })
}

// TestSchedulerSharesWakeUps: with the layer's slack, timers armed over
// a few milliseconds (a call's lingering transactions at 800 calls/s)
// fire in a handful of wake-ups instead of one each, each never before
// its deadline and at most a 32nd of its delay (maxSlack at most) after
// it; a lone timer still fires, and a short one stays nearly exact.
func TestSchedulerSharesWakeUps(t *testing.T) {
	cases := []struct {
		name     string
		delay    time.Duration
		n        int           // timers, armed every step
		step     time.Duration // between armings
		maxWakes int
	}{
		{"linger timers", 5 * time.Second, 200, time.Millisecond, 12},
		{"T1 retransmissions", 500 * time.Millisecond, 100, 500 * time.Microsecond, 6},
		{"a lone timer", 32 * time.Second, 1, 0, 1},
		{"short timers", 32 * time.Millisecond, 20, time.Millisecond, 20},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clk := &wakeCounter{fakeClock: &fakeClock{}}
			s := newSched(clk)
			s.slack = maxSlack
			fired := make(chan firing, tc.n)
			due := make([]time.Duration, tc.n)
			for i := range tc.n {
				p := &probe{id: i, clk: clk, fired: fired}
				p.mu.Lock()
				due[i] = clk.now() + tc.delay
				s.arm(&p.tm, tc.delay, p, kindEnd)
				p.mu.Unlock()
				clk.Advance(tc.step)
			}
			clk.Advance(2 * tc.delay)
			if len(fired) != tc.n {
				t.Fatalf("%d of %d timers fired", len(fired), tc.n)
			}
			late := min(tc.delay/32, maxSlack)
			for range tc.n {
				f := <-fired
				if f.at < due[f.id] || f.at > due[f.id]+late {
					t.Errorf("timer %d due at %v fired at %v (at most %v late)", f.id, due[f.id], f.at, late)
				}
			}
			if clk.wakes > tc.maxWakes {
				t.Errorf("%d wake-ups for %d timers, want at most %d", clk.wakes, tc.n, tc.maxWakes)
			}
			if a := s.armed(); a != 0 {
				t.Errorf("%d timers left armed", a)
			}
		})
	}
}
