package b2bua

import (
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/ghettovoice/gosip/sip"

	"github.com/sbc-project/sbc/b2bua/transport"
	"github.com/sbc-project/sbc/b2bua/txn"
)

type noRequests struct{}

func (noRequests) OnRequest(sip.Request, *txn.ServerTx) {}

// A call's client transactions live in the transaction layer's state and
// timers only: the INVITEs a call sends wait for their answer (and, over
// UDP, for Timer B/D/K) without a goroutine each, and when they end the
// call still hears of it.
func TestCallTransactionsNeedNoGoroutine(t *testing.T) {
	layer := txn.New(func(sip.Message, transport.Target) error { return nil }, noRequests{}, txn.Timers{}, nil)
	defer layer.Close()
	const n = 200
	// running: the events wait in the queue, handled below by the test.
	c := &Call{s: &Server{txs: txnLayer{layer: layer}}, running: true, done: make(chan struct{})}
	l := &leg{dst: transport.Target{Kind: transport.UDP, Addr: netip.MustParseAddrPort("192.0.2.20:5060")}}
	before := runtime.NumGoroutine()
	for i := range n {
		req := callerRequest(t, "INVITE", i+1, "", "")
		hop, _ := req.ViaHop()
		hop.Params.Add("branch", sip.String{Str: txn.NewBranch()})
		if _, err := c.send(l, req, func(sip.Response) {}); err != nil {
			t.Fatal(err)
		}
	}
	if grown := runtime.NumGoroutine() - before; grown > n/4 {
		t.Fatalf("%d goroutines more with %d transactions pending", grown, n)
	}
	layer.Close() // each ends without a final response
	timeouts := 0
	for range n {
		ev := nextQueued(t, c)
		if ev.kind != evTxDone {
			t.Fatalf("event %d, want the end of a transaction", ev.kind)
		}
		c.handle(ev) // the call answers itself 408 for each
		timeouts++
	}
	if timeouts != n || len(c.handlers) != 0 {
		t.Fatalf("%d transactions ended, %d still waited for", timeouts, len(c.handlers))
	}
}

// nextQueued waits for the next event posted to c, whose queue no
// goroutine runs (running set by the test).
func nextQueued(t *testing.T, c *Call) event {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		c.qmu.Lock()
		if len(c.queue) > 0 {
			ev := c.queue[0]
			c.queue = c.queue[1:]
			c.qmu.Unlock()
			return ev
		}
		c.qmu.Unlock()
		if time.Now().After(deadline) {
			t.Fatal("no event posted")
		}
		time.Sleep(time.Millisecond)
	}
}
