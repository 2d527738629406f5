package txn

import "testing"

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
