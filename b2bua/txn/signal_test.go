package txn

import (
	"fmt"
	"testing"
	"time"

	"github.com/ghettovoice/gosip/sip"

	"github.com/sbc-project/sbc/b2bua/sipmsg"
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

// noTimer is a runtime timer that allocates nothing, for counting what
// arming itself allocates.
type noTimer struct{}

func (noTimer) Stop() bool                 { return true }
func (noTimer) Reset(d time.Duration) bool { return true }

type noClock struct{}

func (noClock) now() time.Duration                           { return 0 }
func (noClock) afterFunc(d time.Duration, f func()) resetter { return noTimer{} }

// TestArmAllocatesNothing: arming and stopping a transaction's timers
// allocates nothing once the layer's heap has room (each arming was a
// runtime timer and a callback of its own: 190 B, a dozen a call).
func TestArmAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	l := &Layer{}
	l.sched = scheduler{l: l, clock: noClock{}}
	tx := &ClientTx{l: l}
	allocs := testing.AllocsPerRun(100, func() {
		l.sched.arm(&tx.retrans, time.Second, tx, kindA)
		l.sched.arm(&tx.timeout, 2*time.Second, tx, kindB)
		l.sched.arm(&tx.retrans, 3*time.Second, tx, kindA)
		l.sched.stop(&tx.retrans, &tx.timeout)
	})
	if allocs > 0 {
		t.Errorf("%.1f allocations per arming", allocs)
	}
}

// TestOutboxOrder: an outbox sends its messages in the order queued,
// beyond the two it holds in place, and counts retransmissions, before
// it runs its calls.
func TestOutboxOrder(t *testing.T) {
	c := &capture{}
	l := New(c.send, nil, rfcTimers, nil)
	defer l.Close()
	var out outbox
	var order []string
	for i := range 4 {
		res := sipmsg.EmptyResponse("SIP/2.0", 180+i, "R")
		out.send(res, udpPeer, i == 3)
	}
	out.then(func() {
		order = append(order, fmt.Sprintf("call after %d sends", len(c.matching(func(sent) bool { return true }))))
	})
	if out.empty() {
		t.Fatal("an outbox with four messages is empty")
	}
	if err := out.flush(l); err != nil {
		t.Fatal(err)
	}
	for i, s := range c.matching(func(sent) bool { return true }) {
		if code := int(s.msg.(sip.Response).StatusCode()); code != 180+i {
			t.Errorf("message %d is a %d", i, code)
		}
	}
	if len(order) != 1 || order[0] != "call after 4 sends" {
		t.Errorf("calls: %v", order)
	}
	if n := l.Stats().Retransmissions; n != 1 {
		t.Errorf("%d retransmissions counted, want 1", n)
	}
}
