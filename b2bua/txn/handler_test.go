package txn

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/ghettovoice/gosip/sip"
)

// events is a ClientHandler that writes down what it is handed, and fails
// the test if it is ever called twice at once or after Ended.
type events struct {
	t       *testing.T
	running atomic.Int32

	mu  sync.Mutex
	log []string
	end bool
}

func (h *events) enter(what string) {
	if h.running.Add(1) != 1 {
		h.t.Errorf("handler called concurrently (%s)", what)
	}
	h.mu.Lock()
	if h.end {
		h.t.Errorf("%s after Ended", what)
	}
	h.log = append(h.log, what)
	h.mu.Unlock()
	h.running.Add(-1)
}

func (h *events) Response(_ *ClientTx, res sip.Response) { h.enter(fmt.Sprint(res.StatusCode())) }

func (h *events) Ended(*ClientTx) {
	h.enter("end")
	h.mu.Lock()
	h.end = true
	h.mu.Unlock()
}

func (h *events) got() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.log)
}

func (h *events) want(t *testing.T, want ...string) {
	t.Helper()
	if got := h.got(); !slices.Equal(got, want) {
		t.Fatalf("handler got %v, want %v", got, want)
	}
}

func TestClientHandler(t *testing.T) {
	cases := []struct {
		name string
		run  func(t *testing.T, e *env, tx *ClientTx, h *events)
	}{
		{
			name: "responses in order, the end at Timer D, retransmissions absorbed",
			run: func(t *testing.T, e *env, tx *ClientTx, h *events) {
				e.l.Receive(reply(t, reqOf(t, tx), 180, "uas-1"), udpPeer)
				e.l.Receive(reply(t, reqOf(t, tx), 486, "uas-1"), udpPeer)
				e.l.Receive(reply(t, reqOf(t, tx), 486, "uas-1"), udpPeer)
				h.want(t, "180", "486")
				e.out.want(t, 2, method(sip.ACK), "ACK")
				e.advance(t64 - tick)
				h.want(t, "180", "486")
				e.advance(tick)
				h.want(t, "180", "486", "end")
				closed(t, tx.Done(), "Done")
			},
		},
		{
			name: "Timer B: a synthetic 408, then the end",
			run: func(t *testing.T, e *env, _ *ClientTx, h *events) {
				e.advance(t64)
				h.want(t, "408", "end")
			},
		},
		{
			name: "2xx and its retransmissions until Timer M",
			run: func(t *testing.T, e *env, tx *ClientTx, h *events) {
				e.l.Receive(reply(t, reqOf(t, tx), 200, "uas-a"), udpPeer)
				e.l.Receive(reply(t, reqOf(t, tx), 200, "uas-b"), udpPeer)
				e.advance(t64)
				h.want(t, "200", "200", "end")
			},
		},
		{
			name: "Close: the end without a final response",
			run: func(t *testing.T, e *env, tx *ClientTx, h *events) {
				e.l.Receive(reply(t, reqOf(t, tx), 183, "uas-1"), udpPeer)
				e.l.Close()
				h.want(t, "183", "end")
			},
		},
		{
			name: "concurrent responses: one at a time, every one, the end last",
			run: func(t *testing.T, e *env, tx *ClientTx, h *events) {
				e.l.Receive(reply(t, reqOf(t, tx), 200, "uas-a"), udpPeer)
				var wg sync.WaitGroup
				for range 8 {
					wg.Go(func() {
						for range 50 {
							e.l.Receive(reply(t, reqOf(t, tx), 200, "uas-a"), udpPeer)
						}
					})
				}
				wg.Wait()
				e.advance(t64)
				got := h.got()
				if len(got) != 402 || got[401] != "end" {
					t.Fatalf("handler got %d events ending %q, want 401 responses and the end", len(got), got[len(got)-1])
				}
			},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, Timers{})
			h := &events{t: t}
			req := outbound(t, sip.INVITE, "UDP 127.0.0.1:5060")
			tx, err := e.l.RequestWith(req, udpPeer, h)
			if err != nil {
				t.Fatal(err)
			}
			requests.Store(tx, req)
			if tx.Responses() != nil {
				t.Fatal("a transaction with a handler has a Responses channel")
			}
			c.run(t, e, tx, h)
		})
	}
}

func TestClientHandlerSendFails(t *testing.T) {
	e := newEnv(t, Timers{})
	e.out.fail = errors.New("boom")
	h := &events{t: t}
	if _, err := e.l.RequestWith(outbound(t, sip.INVITE, "UDP 127.0.0.1:5060"), udpPeer, h); err == nil {
		t.Fatal("no error from a request that could not be sent")
	}
	e.advance(t64)
	h.want(t)
}

func TestServerNotify(t *testing.T) {
	inv := rq{method: sip.INVITE, branch: "z9hG4bK-inv-n"}
	cancel := rq{method: sip.CANCEL, branch: inv.branch}
	count := func(n *atomic.Int32) func() { return func() { n.Add(1) } }

	t.Run("CANCEL calls cancelled once", func(t *testing.T) {
		e := newEnv(t, Timers{})
		e.l.Receive(inv.req(t), udpPeer)
		tx := e.tu.next(t).tx
		var c, a atomic.Int32
		tx.Notify(count(&c), count(&a))
		respond(t, tx, 180, "uas-1")
		e.l.Receive(cancel.req(t), udpPeer)
		e.l.Receive(cancel.req(t), udpPeer) // retransmission
		if c.Load() != 1 || a.Load() != 0 {
			t.Fatalf("cancelled called %d times, ackTimeout %d; want 1, 0", c.Load(), a.Load())
		}
		respond(t, tx, 487, "uas-1")
		e.advance(t64)
	})
	t.Run("Notify after the CANCEL calls at once", func(t *testing.T) {
		e := newEnv(t, Timers{})
		e.l.Receive(inv.req(t), udpPeer)
		tx := e.tu.next(t).tx
		e.l.Receive(cancel.req(t), udpPeer)
		var c atomic.Int32
		tx.Notify(count(&c), nil)
		if c.Load() != 1 {
			t.Fatalf("cancelled called %d times, want 1", c.Load())
		}
		respond(t, tx, 487, "uas-1")
		e.advance(t64)
	})
	t.Run("Timer L calls ackTimeout", func(t *testing.T) {
		e := newEnv(t, Timers{})
		e.l.Receive(inv.req(t), udpPeer)
		tx := e.tu.next(t).tx
		var c, a atomic.Int32
		tx.Notify(count(&c), count(&a))
		respond(t, tx, 200, "uas-1")
		e.advance(t64 - tick)
		if a.Load() != 0 {
			t.Fatal("ackTimeout before Timer L")
		}
		e.advance(tick)
		if c.Load() != 0 || a.Load() != 1 {
			t.Fatalf("cancelled called %d times, ackTimeout %d; want 0, 1", c.Load(), a.Load())
		}
	})
}
