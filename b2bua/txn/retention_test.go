package txn

import (
	"testing"

	"github.com/ghettovoice/gosip/sip"
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
