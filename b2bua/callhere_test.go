package b2bua

import (
	"sync"
	"testing"
	"time"

	"github.com/ghettovoice/gosip/sip"

	"github.com/sbc-project/sbc/b2bua/transport"
)

// hereTx is a client transaction key for postHere's tests; its handler
// in the call's handlers records what the call handled.
type hereTx struct{ n int }

func (*hereTx) Cancel() error { return nil }

// hereCall is a call with n response handlers, each recording its
// number in order and running block (if set) first.
type hereCall struct {
	c   *Call
	txs []*hereTx
	mu  sync.Mutex
	got []int
}

func newHereCall(n int, block func(i int)) *hereCall {
	h := &hereCall{c: &Call{s: &Server{}}}
	for i := range n {
		tx := &hereTx{n: i}
		h.txs = append(h.txs, tx)
		h.c.handlers = append(h.c.handlers, txHandler{tx: clientTx(tx), f: func(sip.Response) {
			if block != nil {
				block(i)
			}
			h.mu.Lock()
			h.got = append(h.got, i)
			h.mu.Unlock()
		}})
	}
	return h
}

func (h *hereCall) ev(i int) event { return event{kind: evResponse, client: h.txs[i]} }

func (h *hereCall) handled() []int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]int(nil), h.got...)
}

// returns reports whether f returns within wait.
func returns(f func()) bool {
	done := make(chan struct{})
	go func() { f(); close(done) }()
	select {
	case <-done:
		return true
	case <-time.After(wait):
		return false
	}
}

// TestPostHere: a response posted to an idle call is handled on the
// posting goroutine before postHere returns (no goroutine started for
// it); posted while another goroutine runs the call, it only queues and
// postHere returns at once, and the call handles its events in the order
// posted, one goroutine at a time.
func TestPostHere(t *testing.T) {
	t.Run("idle call runs here", func(t *testing.T) {
		h := newHereCall(1, nil)
		if !h.c.postHere(h.ev(0)) {
			t.Fatal("postHere refused the event")
		}
		if got := h.handled(); len(got) != 1 {
			t.Fatalf("handled %v when postHere returned, want [0]", got)
		}
		if h.c.running {
			t.Fatal("the call is still marked running after its queue emptied")
		}
	})
	t.Run("busy call queues in order", func(t *testing.T) {
		release := make(chan struct{})
		started := make(chan struct{})
		h := newHereCall(4, func(i int) {
			if i == 0 {
				close(started)
				<-release
			}
		})
		first := make(chan bool)
		go func() { first <- h.c.postHere(h.ev(0)) }()
		<-started
		for i := 1; i < 4; i++ {
			if !returns(func() { h.c.postHere(h.ev(i)) }) {
				t.Fatalf("postHere of event %d waited for the call's running handler", i)
			}
		}
		if got := h.handled(); len(got) != 0 {
			t.Fatalf("handled %v while event 0 still ran, want nothing", got)
		}
		close(release)
		if !<-first {
			t.Fatal("postHere refused the first event")
		}
		// The goroutine that ran event 0 handled the rest before returning.
		if got := h.handled(); len(got) != 4 || got[0] != 0 || got[1] != 1 || got[2] != 2 || got[3] != 3 {
			t.Fatalf("handled %v, want [0 1 2 3]", got)
		}
	})
}

// TestPostHereHandsOffWhatMayWait: an event whose handling may wait
// (here: forks ring, so a response may start others' work; the same rule
// keeps REFER, transfers, flow grace and stream legs off the poster) runs
// on a goroutine of its own, so the UDP worker that received it goes on
// with other calls' messages while it waits; the events after it keep
// their order on that goroutine.
func TestPostHereHandsOffWhatMayWait(t *testing.T) {
	release := make(chan struct{})
	h := newHereCall(2, func(i int) {
		if i == 0 {
			<-release
		}
	})
	h.c.forks = []*attempt{{}}
	if !returns(func() { h.c.postHere(h.ev(0)) }) {
		t.Fatal("postHere ran a handler that may wait on the posting goroutine")
	}
	if !returns(func() { h.c.postHere(h.ev(1)) }) {
		t.Fatal("postHere waited for the call's running handler")
	}
	close(release)
	deadline := time.Now().Add(wait)
	for len(h.handled()) < 2 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if got := h.handled(); len(got) != 2 || got[0] != 0 || got[1] != 1 {
		t.Fatalf("handled %v, want [0 1]", got)
	}
}

// TestQuick: which events postHere may run on the goroutine that
// received them.
func TestQuick(t *testing.T) {
	req := func(m sip.RequestMethod) event {
		return event{kind: evRequest, req: sip.NewRequest("", m, nil, "SIP/2.0", nil, "", nil)}
	}
	tcp := &leg{}
	tcp.dst.Kind = transport.TCP
	cases := []struct {
		name  string
		setup func(c *Call)
		ev    event
		want  bool
	}{
		{"response", nil, event{kind: evResponse}, true},
		{"stray 2xx", nil, event{kind: evStray}, true},
		{"BYE", nil, req(sip.BYE), true},
		{"ACK", nil, req(sip.ACK), true},
		{"re-INVITE", nil, req(sip.INVITE), true},
		{"REFER", nil, req(sip.REFER), false},
		{"NOTIFY", nil, req(sip.NOTIFY), false},
		{"timer", nil, event{kind: evTimer}, false},
		{"media", nil, event{kind: evMedia}, false},
		{"func", nil, event{kind: evFunc}, false},
		{"transfer under way", func(c *Call) { c.xfer.cur = &transfer{} }, event{kind: evResponse}, false},
		{"flow grace", func(c *Call) { c.grace = &flowGrace{} }, event{kind: evResponse}, false},
		{"forks", func(c *Call) { c.forks = []*attempt{{}} }, event{kind: evResponse}, false},
		{"stream leg", func(c *Call) { c.b = tcp }, req(sip.BYE), false},
		{"stream destination left", func(c *Call) { c.setup = &callSetup{dests: []dest{{}}}; c.setup.dests[0].to.Kind = transport.TCP }, event{kind: evResponse}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := &Call{s: &Server{}}
			if tc.setup != nil {
				tc.setup(c)
			}
			if got := c.quick(&tc.ev); got != tc.want {
				t.Fatalf("quick = %v, want %v", got, tc.want)
			}
		})
	}
}
