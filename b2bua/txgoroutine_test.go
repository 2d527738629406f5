package b2bua

import (
	"net/netip"
	"runtime"
	"testing"

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
	c := &Call{s: &Server{txs: txnLayer{layer: layer}}, events: make(chan event, 2*n), done: make(chan struct{}),
		onResp: map[clientTx]func(sip.Response){}, afterFinal: map[clientTx]func(sip.Response){}}
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
		ev := <-c.events
		if ev.kind != evTxDone {
			t.Fatalf("event %d, want the end of a transaction", ev.kind)
		}
		c.handle(ev) // the call answers itself 408 for each
		timeouts++
	}
	if timeouts != n || len(c.onResp) != 0 {
		t.Fatalf("%d transactions ended, %d still waited for", timeouts, len(c.onResp))
	}
}
