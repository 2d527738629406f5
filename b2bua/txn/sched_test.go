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
	tm    timer
	clk   clock
	fired chan<- firing
}

type firing struct {
	id int
	at time.Duration
}

func (p *probe) mutex() *sync.Mutex { return &p.mu }

func (p *probe) expire(_ timerKind, _ *outbox) { p.fired <- firing{p.id, p.clk.now()} }

func newSched(clk clock) *scheduler {
	l := &Layer{}
	l.sched = scheduler{l: l, clock: clk}
	return &l.sched
}

// TestSchedulerFiresEachAtItsDeadline: timers armed, re-armed and
// stopped in a random order fire exactly at their last deadline, in
// deadline order, and a stopped one never; the heap is empty at the end.
func TestSchedulerFiresEachAtItsDeadline(t *testing.T) {
	clk := &fakeClock{}
	s := newSched(clk)
	const n = 300
	fired := make(chan firing, 3*n)
	rnd := rand.New(rand.NewPCG(1, 2))
	probes := make([]*probe, n)
	want := map[int]time.Duration{}
	for i := range probes {
		p := &probe{id: i, clk: clk, fired: fired}
		probes[i] = p
		d := time.Duration(rnd.IntN(1000)) * time.Millisecond
		p.mu.Lock()
		s.arm(&p.tm, d, p, kindEnd)
		p.mu.Unlock()
		want[i] = d
	}
	for _, p := range probes {
		p.mu.Lock()
		switch rnd.IntN(3) {
		case 0:
			s.stop(&p.tm)
			delete(want, p.id)
		case 1:
			d := time.Duration(rnd.IntN(1000)) * time.Millisecond
			s.arm(&p.tm, d, p, kindEnd)
			want[p.id] = d
		}
		p.mu.Unlock()
	}
	var last time.Duration
	for range 20 {
		clk.Advance(50 * time.Millisecond)
	}
	close(fired)
	got := 0
	for f := range fired {
		got++
		d, ok := want[f.id]
		switch {
		case !ok:
			t.Errorf("timer %d fired at %v: stopped, or fired twice", f.id, f.at)
		case f.at != d:
			t.Errorf("timer %d fired at %v, armed for %v", f.id, f.at, d)
		case f.at < last:
			t.Errorf("timer %d fired at %v after one at %v", f.id, f.at, last)
		}
		delete(want, f.id)
		last = f.at
	}
	if len(want) != 0 || got == 0 {
		t.Errorf("%d fired, %d never did", got, len(want))
	}
	if a := s.armed(); a != 0 {
		t.Errorf("%d timers left in the heap", a)
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
