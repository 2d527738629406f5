package txn

import (
	"testing"
	"time"
)

// TestSignal: a transaction's Done, Cancelled and AckTimeout channels are
// made on demand: one asked for before the event closes with it, one
// asked for after is closed already, and asking twice gives one channel.
func TestSignal(t *testing.T) {
	var before signal
	ch := before.wait()
	if ch != before.wait() {
		t.Error("two channels for one signal")
	}
	open(t, ch, "signal before fire")
	before.fire()
	before.fire() // idempotent: no double close
	closed(t, ch, "signal asked before fire")

	var after signal
	after.fire()
	closed(t, after.wait(), "signal asked after fire")

	var never signal
	if never.ch != nil {
		t.Error("a channel made before anyone asked")
	}
}

// noTimer is a stopper that allocates nothing, for counting what arm
// itself allocates.
type noTimer struct{}

func (noTimer) Stop() bool { return true }

// TestArmAllocatesOnlyItsCallback: arming a transaction timer allocates
// the callback and nothing else (the clock's timer aside): the timer's
// function is a method expression, not a method value.
func TestArmAllocatesOnlyItsCallback(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	l := &Layer{afterFunc: func(time.Duration, func()) stopper { return noTimer{} }}
	tx := &ClientTx{l: l}
	allocs := testing.AllocsPerRun(100, func() {
		arm(&tx.retrans, time.Second, tx, &tx.mu, l, (*ClientTx).timerA)
	})
	if allocs > 1 {
		t.Errorf("%.1f allocations per arming", allocs)
	}
}
