package txn

import (
	"bytes"
	"runtime"
	"sync/atomic"
	"testing"
	"time"
	"weak"

	"github.com/ghettovoice/gosip/sip"

	"github.com/sbc-project/sbc/b2bua/sipmsg"
	"github.com/sbc-project/sbc/b2bua/transport"
)

// TestClientLetsRequestGo: a client transaction keeps its request while it
// may re-send or cancel it, and lets it go with the final response; what
// lingers after (Timers D, K, M) still absorbs and ACKs on its key alone.
func TestClientLetsRequestGo(t *testing.T) {
	cases := []struct {
		name   string
		method sip.RequestMethod
		code   int
		after  func(t *testing.T, e *env, tx *ClientTx)
	}{
		{"INVITE 200: a retransmitted 2xx still reaches the TU", sip.INVITE, 200, func(t *testing.T, e *env, tx *ClientTx) {
			e.l.Receive(reply(t, reqOf(t, tx), 200, "uas-1"), udpPeer)
			if got := codes(drainedNow(tx)); len(got) != 1 || got[0] != 200 {
				t.Fatalf("after the final: %v, want the retransmitted 200", got)
			}
		}},
		{"INVITE 486: its retransmission is ACKed again", sip.INVITE, 486, func(t *testing.T, e *env, tx *ClientTx) {
			e.l.Receive(reply(t, reqOf(t, tx), 486, "uas-1"), udpPeer)
			e.out.want(t, 2, method(sip.ACK), "ACK")
		}},
		{"OPTIONS 200: a retransmission is absorbed", sip.OPTIONS, 200, func(t *testing.T, e *env, tx *ClientTx) {
			e.l.Receive(reply(t, reqOf(t, tx), 200, "uas-1"), udpPeer)
			if got := drainedNow(tx); len(got) != 0 {
				t.Fatalf("retransmission delivered: %v", codes(got))
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, rfcTimers)
			tx := startTx(t, e, outbound(t, tc.method, ""), udpPeer)
			e.l.Receive(reply(t, reqOf(t, tx), 100, ""), udpPeer)
			if tx.Request() == nil {
				t.Fatal("request let go before the final response")
			}
			e.l.Receive(reply(t, reqOf(t, tx), tc.code, "uas-1"), udpPeer)
			if got := codes(drainedNow(tx)); len(got) != 2 || got[1] != tc.code {
				t.Fatalf("responses %v, want 100 and %d", got, tc.code)
			}
			if tx.Request() != nil {
				t.Fatalf("request kept after the %d", tc.code)
			}
			tc.after(t, e, tx)
			e.advance(t64)
			closed(t, tx.Done(), "Done")
		})
	}
}

// TestServerLetsRequestGo: a server transaction keeps its request until
// no response can follow: a non-2xx or non-INVITE final at once, a 2xx to
// INVITE once it is ACKed. Retransmissions of the request are still
// answered from the last response.
func TestServerLetsRequestGo(t *testing.T) {
	cases := []struct {
		name  string
		req   rq
		code  int
		until rq // received before the request is let go; method "": none
	}{
		{"INVITE 200, until the ACK", rq{method: sip.INVITE, branch: "z9hG4bK-r1"}, 200,
			rq{method: sip.ACK, branch: "z9hG4bK-r1-ack", toTag: "uas-1"}},
		{"INVITE 486", rq{method: sip.INVITE, branch: "z9hG4bK-r2"}, 486, rq{}},
		{"BYE 200", rq{method: sip.BYE, branch: "z9hG4bK-r3", toTag: "a"}, 200, rq{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, rfcTimers)
			e.l.Receive(tc.req.req(t), udpPeer)
			tx := e.tu.next(t).tx
			respond(t, tx, tc.code, "uas-1")
			if tc.until.method != "" {
				if tx.Request() == nil {
					t.Fatal("request let go before the ACK of the 2xx")
				}
				e.l.Receive(tc.until.req(t), udpPeer)
				e.tu.next(t)
			}
			if tx.Request() != nil {
				t.Fatalf("request kept after the %d", tc.code)
			}
			if tc.req.method != sip.INVITE || tc.code >= 300 {
				e.l.Receive(tc.req.req(t), udpPeer) // a retransmission
				e.out.want(t, 2, status(tc.code), "final")
			}
			e.advance(t64)
			closed(t, tx.Done(), "Done")
		})
	}
}

// drainedNow is what tx delivered so far, without waiting.
func drainedNow(tx *ClientTx) []sip.Response {
	var out []sip.Response
	for {
		select {
		case r, ok := <-tx.Responses():
			if !ok {
				return out
			}
			out = append(out, r)
		default:
			return out
		}
	}
}

// TestAcceptedInviteLetsDatagramGo: an INVITE transaction lingers 64*T1
// after its 2xx was ACKed (Timer L) with only its keys; those keys must
// not be substrings of the datagram received (ParseOwned, as the server
// parses), or every call pins its INVITE's bytes for 32 s.
func TestAcceptedInviteLetsDatagramGo(t *testing.T) {
	tu := &txOnly{txs: make(chan *ServerTx, 4)} // the recorder keeps every request
	clk := &fakeClock{}
	l := New(func(sip.Message, transport.Target) error { return nil }, tu, rfcTimers, nil)
	l.sched.clock = clk
	l.sched.slack = 0 // exact deadlines
	defer l.Close()
	data := []byte(rq{method: sip.INVITE, branch: "z9hG4bK-pin1", callID: "pinned-call"}.raw())
	held := weak.Make(&data[0])
	msg, err := sipmsg.NewParser(sipmsg.Limits{}).ParseOwned(data)
	if err != nil {
		t.Fatal(err)
	}
	data = nil
	l.Receive(msg, udpPeer)
	msg = nil
	tx := <-tu.txs
	res := NewResponse(tx.Request(), 200, "OK")
	res = withToTag(res, "uas-1")
	if err := tx.Respond(res); err != nil {
		t.Fatal(err)
	}
	res = nil
	// The ACK, in a datagram of its own.
	l.Receive(rq{method: sip.ACK, branch: "z9hG4bK-pin1-ack", callID: "pinned-call", toTag: "uas-1"}.req(t), udpPeer)
	if tu.acks.Load() != 1 {
		t.Fatal("the ACK of the 2xx did not reach the TU")
	}
	if tx.Request() != nil {
		t.Fatal("request kept after the ACK")
	}
	for range 3 {
		runtime.GC()
	}
	if held.Value() != nil {
		t.Fatal("the INVITE's datagram is still reachable while the transaction lingers")
	}
	if l.Count() != 1 {
		t.Fatalf("%d transactions, want the lingering INVITE", l.Count())
	}
	clk.Advance(t64)
}

// txOnly is a Handler that keeps the transactions it is given, and of
// requests only the count of ACKs.
type txOnly struct {
	txs  chan *ServerTx
	acks atomic.Int32
}

func (h *txOnly) OnRequest(req sip.Request, tx *ServerTx) {
	if tx == nil {
		h.acks.Add(1)
		return
	}
	h.txs <- tx
}

// TestCompletedKeepsOnlyBytes: with a rendered sender, a non-INVITE's
// final response lingers 64*T1 (Timer J) as its bytes only: they went out
// with the message the first time, go out again, alone, on each
// retransmission of the request, and neither the response nor the
// request's datagram stays reachable.
func TestCompletedKeepsOnlyBytes(t *testing.T) {
	tu := &txOnly{txs: make(chan *ServerTx, 4)}
	clk := &fakeClock{}
	type wire struct {
		data   []byte
		hasMsg bool
	}
	sent := make(chan wire, 4)
	l := New(func(sip.Message, transport.Target) error {
		t.Error("a final kept as bytes went out as a message")
		return nil
	}, tu, rfcTimers, nil)
	l.SetRenderedSender(func(data []byte, msg sip.Message, _ transport.Target) error {
		if msg != nil && !bytes.Equal(data, sipmsg.Render(msg)) {
			t.Errorf("bytes and message differ:\n%s\n---\n%s", data, msg)
		}
		sent <- wire{bytes.Clone(data), msg != nil}
		return nil
	})
	l.sched.clock = clk
	l.sched.slack = 0 // exact deadlines
	defer l.Close()
	bye := rq{method: sip.BYE, branch: "z9hG4bK-bye1", callID: "bye-call", toTag: "a"}
	data := []byte(bye.raw())
	held := weak.Make(&data[0])
	msg, err := sipmsg.NewParser(sipmsg.Limits{}).ParseOwned(data)
	if err != nil {
		t.Fatal(err)
	}
	data = nil
	l.Receive(msg, udpPeer)
	msg = nil
	tx := <-tu.txs
	res := NewResponse(tx.Request(), 200, "OK")
	if err := tx.Respond(res); err != nil {
		t.Fatal(err)
	}
	res = nil
	next := func(what string) wire {
		t.Helper()
		select {
		case w := <-sent:
			return w
		case <-time.After(wait):
			t.Fatalf("%s: nothing sent as bytes", what)
			return wire{}
		}
	}
	first := next("the 200")
	if !first.hasMsg || !bytes.HasPrefix(first.data, []byte("SIP/2.0 200 OK\r\n")) {
		t.Fatalf("first send: message %v, %q", first.hasMsg, first.data)
	}
	for range 3 {
		runtime.GC()
	}
	if held.Value() != nil {
		t.Fatal("the BYE's datagram is still reachable while its transaction lingers")
	}
	l.Receive(bye.req(t), udpPeer) // a retransmission
	again := next("the 200 again")
	if again.hasMsg || !bytes.Equal(again.data, first.data) {
		t.Fatalf("retransmission: message %v, bytes equal %v", again.hasMsg, bytes.Equal(again.data, first.data))
	}
	clk.Advance(t64)
	if l.Count() != 0 {
		t.Fatalf("%d transactions after Timer J", l.Count())
	}
}
