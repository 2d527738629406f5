package txn

import (
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/ghettovoice/gosip/sip"

	"github.com/sbc-project/sbc/b2bua/sipmsg"
	"github.com/sbc-project/sbc/b2bua/transport"
)

func TestInviteServer(t *testing.T) {
	inv := rq{method: sip.INVITE, branch: "z9hG4bK-inv-1"}
	ackFor := func(tag string) rq { // ACK of a non-2xx: same branch
		return rq{method: sip.ACK, branch: inv.branch, toTag: tag}
	}
	ack2xx := func(tag string) rq { // ACK of a 2xx: new branch
		return rq{method: sip.ACK, branch: "z9hG4bK-ack-2", toTag: tag}
	}
	cases := []struct {
		name string
		run  func(t *testing.T, e *env, tx *ServerTx)
	}{
		{
			name: "retransmitted INVITE re-sends the last provisional",
			run: func(t *testing.T, e *env, tx *ServerTx) {
				e.l.Receive(inv.req(t), udpPeer) // before any response: nothing to re-send
				e.out.want(t, 0, anything, "response")
				respond(t, tx, 100, "")
				respond(t, tx, 180, "uas-1")
				e.l.Receive(inv.req(t), udpPeer)
				got := e.out.want(t, 2, status(180), "180")
				if got[1].dst != udpPeer {
					t.Fatalf("180 went to %v, want %v", got[1].dst, udpPeer)
				}
				e.out.want(t, 1, status(100), "100")
				e.advance(t64) // provisionals are not retransmitted by timers
				e.out.want(t, 2, status(180), "180")
				e.tu.none(t)
				respond(t, tx, 486, "uas-1")
				e.l.Receive(ackFor("uas-1").req(t), udpPeer)
				e.advance(t4)
				closed(t, tx.Done(), "Done")
			},
		},
		{
			name: "486 retransmitted (Timer G) until ACK, ACK absorbed, ends at Timer I",
			run: func(t *testing.T, e *env, tx *ServerTx) {
				respond(t, tx, 486, "uas-1")
				e.advance(t1 + 2*t1 + 4*t1) // Timer G at 0.5s, 1.5s, 3.5s
				e.out.want(t, 4, status(486), "486")
				e.l.Receive(inv.req(t), udpPeer) // INVITE retransmission re-sends it
				e.out.want(t, 5, status(486), "486")
				e.l.Receive(ackFor("uas-1").req(t), udpPeer)
				e.l.Receive(ackFor("uas-1").req(t), udpPeer) // retransmitted ACK
				e.advance(t4 - tick)
				open(t, tx.Done(), "Done before Timer I")
				e.advance(tick)
				closed(t, tx.Done(), "Done")
				e.out.want(t, 5, status(486), "486")
				e.tu.none(t)
				if s := e.l.Stats(); s.Absorbed != 2 || s.Retransmissions != 4 || s.Timeouts != 0 {
					t.Fatalf("stats %+v: want 2 absorbed, 4 retransmissions, no timeout", s)
				}
			},
		},
		{
			name: "486 never ACKed: Timer G capped at T2, ends at Timer H",
			run: func(t *testing.T, e *env, tx *ServerTx) {
				respond(t, tx, 486, "uas-1")
				e.advance(t64 - tick)
				// 0, 0.5, 1.5, 3.5, then every T2: 7.5 ... 31.5
				e.out.want(t, 11, status(486), "486")
				open(t, tx.Done(), "Done before Timer H")
				e.advance(tick)
				closed(t, tx.Done(), "Done")
				if s := e.l.Stats(); s.Timeouts != 1 {
					t.Fatalf("timeouts %d, want 1", s.Timeouts)
				}
			},
		},
		{
			name: "2xx retransmitted until its ACK, which goes to the TU",
			run: func(t *testing.T, e *env, tx *ServerTx) {
				respond(t, tx, 200, "uas-1")
				e.advance(t1 + 2*t1)
				e.l.Receive(inv.req(t), udpPeer) // INVITE retransmission re-sends the 2xx
				e.out.want(t, 4, status(200), "200")
				e.l.Receive(ack2xx("uas-1").req(t), udpPeer)
				c := e.tu.next(t)
				if c.tx != nil || c.req.Method() != sip.ACK {
					t.Fatalf("TU got %s with tx %v, want ACK with nil tx", c.req.Method(), c.tx)
				}
				e.l.Receive(ack2xx("uas-1").req(t), udpPeer) // duplicate absorbed
				e.tu.none(t)
				e.advance(t64 - 3*t1 - tick)
				e.out.want(t, 4, status(200), "200")
				open(t, tx.Done(), "Done before Timer L")
				e.advance(tick)
				closed(t, tx.Done(), "Done")
				open(t, tx.AckTimeout(), "AckTimeout")
			},
		},
		{
			name: "after the 2xx's ACK the 2xx is let go, an INVITE retransmission absorbed",
			run: func(t *testing.T, e *env, tx *ServerTx) {
				respond(t, tx, 200, "uas-1")
				e.l.Receive(ack2xx("uas-1").req(t), udpPeer)
				e.tu.next(t)
				tx.mu.Lock()
				kept := tx.last
				tx.mu.Unlock()
				if kept != nil {
					t.Fatal("the ACKed 2xx is still held for the rest of the Accepted state")
				}
				absorbed := e.l.Stats().Absorbed
				e.l.Receive(inv.req(t), udpPeer) // late retransmission
				e.out.want(t, 1, status(200), "200")
				e.tu.none(t)
				if got := e.l.Stats().Absorbed; got != absorbed+1 {
					t.Fatalf("absorbed %d, want %d", got, absorbed+1)
				}
				var tag string
				tx.cancel(func(t string) { tag = t })
				if tag != "uas-1" {
					t.Fatalf("To tag for a CANCEL %q, want uas-1", tag)
				}
				e.advance(t64)
				closed(t, tx.Done(), "Done")
			},
		},
		{
			name: "2xx never ACKed closes AckTimeout at Timer L",
			run: func(t *testing.T, e *env, tx *ServerTx) {
				respond(t, tx, 200, "uas-1")
				e.advance(t64 - tick)
				e.out.want(t, 11, status(200), "200")
				open(t, tx.AckTimeout(), "AckTimeout")
				e.advance(tick)
				closed(t, tx.AckTimeout(), "AckTimeout")
				closed(t, tx.Done(), "Done")
				e.l.Receive(ack2xx("uas-1").req(t), udpPeer) // late: no transaction, still the TU's
				if c := e.tu.next(t); c.tx != nil {
					t.Fatal("late ACK came with a transaction")
				}
				if s := e.l.Stats(); s.Timeouts != 1 {
					t.Fatalf("timeouts %d, want 1", s.Timeouts)
				}
			},
		},
		{
			name: "ACK with another To tag is not the 2xx's",
			run: func(t *testing.T, e *env, tx *ServerTx) {
				respond(t, tx, 200, "uas-1")
				e.l.Receive(ack2xx("other").req(t), udpPeer)
				e.tu.next(t) // unmatched: handed over as such
				e.advance(t64)
				closed(t, tx.AckTimeout(), "AckTimeout")
			},
		},
		{
			name: "responses after the final are refused",
			run: func(t *testing.T, e *env, tx *ServerTx) {
				respond(t, tx, 486, "uas-1")
				for _, code := range []int{180, 200, 486} {
					if err := tx.Respond(NewResponse(reqOf(t, tx), code, "x")); !errors.Is(err, ErrFinalSent) {
						t.Fatalf("respond %d after 486: %v, want ErrFinalSent", code, err)
					}
				}
				if err := tx.Respond(NewResponse(reqOf(t, tx), 99, "x")); err == nil {
					t.Fatal("status 99 accepted")
				}
				e.l.Receive(ackFor("uas-1").req(t), udpPeer)
				e.advance(t4)
				if err := tx.Respond(NewResponse(reqOf(t, tx), 500, "x")); !errors.Is(err, ErrTerminated) {
					t.Fatalf("respond after end: %v, want ErrTerminated", err)
				}
			},
		},
		{
			name: "another 2xx in Accepted is sent",
			run: func(t *testing.T, e *env, tx *ServerTx) {
				respond(t, tx, 200, "uas-1")
				respond(t, tx, 200, "uas-1")
				e.out.want(t, 2, status(200), "200")
				if err := tx.Respond(NewResponse(reqOf(t, tx), 486, "x")); !errors.Is(err, ErrFinalSent) {
					t.Fatalf("486 after 200: %v", err)
				}
				e.l.Receive(ack2xx("uas-1").req(t), udpPeer)
				e.tu.next(t)
				e.advance(t64)
				closed(t, tx.Done(), "Done")
			},
		},
		{
			name: "Terminate drops the request silently",
			run: func(t *testing.T, e *env, tx *ServerTx) {
				tx.Terminate()
				tx.Terminate()
				closed(t, tx.Done(), "Done")
				e.advance(t64)
				e.out.want(t, 0, anything, "message")
			},
		},
		{
			name: "Close ends the transaction",
			run: func(t *testing.T, e *env, tx *ServerTx) {
				respond(t, tx, 180, "uas-1")
				e.l.Close()
				closed(t, tx.Done(), "Done")
				e.l.Receive(inv.req(t), udpPeer) // dropped after Close
				e.tu.none(t)
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, rfcTimers)
			e.l.Receive(inv.req(t), udpPeer)
			c := e.tu.next(t)
			if c.tx == nil || reqOf(t, c.tx).Method() != sip.INVITE || c.tx.Source() != udpPeer {
				t.Fatal("INVITE not handed to the TU with its transaction")
			}
			tc.run(t, e, c.tx)
		})
	}
}

func TestInviteServerTrying(t *testing.T) {
	cases := []struct {
		name      string
		answerNow bool
		want      int // 100 Trying sent by the layer
	}{
		{name: "slow TU gets a 100 from the layer after 200ms", want: 1},
		{name: "fast TU preempts it", answerNow: true, want: 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, Timers{})
			e.l.Receive(rq{method: sip.INVITE, branch: "z9hG4bK-t"}.req(t), udpPeer)
			tx := e.tu.next(t).tx
			if tc.answerNow {
				respond(t, tx, 180, "uas-1")
			}
			e.advance(DefaultTrying - tick)
			e.out.want(t, 0, status(100), "100")
			e.advance(tick)
			e.out.want(t, tc.want, status(100), "100")
			if tc.want > 0 {
				e.l.Receive(rq{method: sip.INVITE, branch: "z9hG4bK-t"}.req(t), udpPeer)
				e.out.want(t, 2, status(100), "100") // re-sent like any provisional
			}
			respond(t, tx, 200, "uas-1")
			e.advance(t64)
			closed(t, tx.Done(), "Done")
		})
	}
}

func TestNonInviteServer(t *testing.T) {
	opt := rq{method: sip.OPTIONS, branch: "z9hG4bK-opt-1"}
	cases := []struct {
		name string
		run  func(t *testing.T, e *env, tx *ServerTx)
	}{
		{
			name: "retransmissions absorbed, then answered with the final until Timer J",
			run: func(t *testing.T, e *env, tx *ServerTx) {
				e.l.Receive(opt.req(t), udpPeer)
				e.out.want(t, 0, anything, "response")
				respond(t, tx, 200, "uas-1")
				e.l.Receive(opt.req(t), udpPeer)
				e.advance(t64 - tick)
				e.out.want(t, 2, status(200), "200") // no retransmission timer
				open(t, tx.Done(), "Done before Timer J")
				e.advance(tick)
				closed(t, tx.Done(), "Done")
				if s := e.l.Stats(); s.Absorbed != 1 || s.Retransmissions != 1 {
					t.Fatalf("stats %+v: want 1 absorbed, 1 retransmission", s)
				}
			},
		},
		{
			name: "provisional re-sent, then final",
			run: func(t *testing.T, e *env, tx *ServerTx) {
				respond(t, tx, 100, "")
				e.l.Receive(opt.req(t), udpPeer)
				e.out.want(t, 2, status(100), "100")
				respond(t, tx, 404, "uas-1")
				if err := tx.Respond(NewResponse(reqOf(t, tx), 200, "x")); !errors.Is(err, ErrFinalSent) {
					t.Fatalf("second final: %v", err)
				}
				e.advance(t64)
				closed(t, tx.Done(), "Done")
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, rfcTimers)
			e.l.Receive(opt.req(t), udpPeer)
			c := e.tu.next(t)
			if c.tx == nil {
				t.Fatal("no transaction")
			}
			tc.run(t, e, c.tx)
			e.tu.none(t)
		})
	}
}

func TestServerReliable(t *testing.T) {
	inv := rq{method: sip.INVITE, branch: "z9hG4bK-tcp", via: "TCP 127.0.0.1:5070"}
	cases := []struct {
		name string
		req  rq
		run  func(t *testing.T, e *env, tx *ServerTx)
	}{
		{
			name: "486 sent once, ends at the ACK",
			req:  inv,
			run: func(t *testing.T, e *env, tx *ServerTx) {
				respond(t, tx, 486, "uas-1")
				e.advance(t64 / 2)
				e.out.want(t, 1, status(486), "486")
				e.l.Receive(rq{method: sip.ACK, branch: inv.branch, via: inv.via, toTag: "uas-1"}.req(t), tcpPeer)
				e.advance(0) // Timer I is zero
				closed(t, tx.Done(), "Done")
			},
		},
		{
			name: "2xx sent once, ACK to the TU",
			req:  inv,
			run: func(t *testing.T, e *env, tx *ServerTx) {
				respond(t, tx, 200, "uas-1")
				e.l.Receive(rq{method: sip.ACK, branch: "z9hG4bK-a2", via: inv.via, toTag: "uas-1"}.req(t), tcpPeer)
				if c := e.tu.next(t); c.tx != nil {
					t.Fatal("ACK of 2xx came with a transaction")
				}
				e.advance(t64)
				e.out.want(t, 1, status(200), "200")
				closed(t, tx.Done(), "Done")
			},
		},
		{
			name: "non-INVITE ends with its final",
			req:  rq{method: sip.BYE, branch: "z9hG4bK-bye", via: "TCP 127.0.0.1:5070"},
			run: func(t *testing.T, e *env, tx *ServerTx) {
				respond(t, tx, 200, "uas-1")
				e.advance(0) // Timer J is zero
				closed(t, tx.Done(), "Done")
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, rfcTimers)
			e.l.Receive(tc.req.req(t), tcpPeer)
			tx := e.tu.next(t).tx
			tc.run(t, e, tx)
			for _, s := range e.out.matching(anything) {
				if s.dst != tcpPeer {
					t.Fatalf("response to %v, want %v", s.dst, tcpPeer)
				}
			}
		})
	}
}

func TestCancelServer(t *testing.T) {
	inv := rq{method: sip.INVITE, branch: "z9hG4bK-inv-c"}
	cancel := rq{method: sip.CANCEL, branch: inv.branch}
	cases := []struct {
		name string
		run  func(t *testing.T, e *env)
	}{
		{
			name: "matched CANCEL: 200 with the INVITE's tag, Cancelled closed",
			run: func(t *testing.T, e *env) {
				e.l.Receive(inv.req(t), udpPeer)
				tx := e.tu.next(t).tx
				respond(t, tx, 180, "uas-7")
				open(t, tx.Cancelled(), "Cancelled")
				e.l.Receive(cancel.req(t), udpPeer)
				closed(t, tx.Cancelled(), "Cancelled")
				ok := e.out.want(t, 1, statusFor(200, sip.CANCEL), "200 to CANCEL")
				if sipmsg.ToTag(ok[0].msg) != "uas-7" || ok[0].dst != udpPeer {
					t.Fatalf("200 to CANCEL has To tag %q (want the INVITE's), goes to %v", sipmsg.ToTag(ok[0].msg), ok[0].dst)
				}
				e.l.Receive(cancel.req(t), udpPeer) // retransmitted CANCEL
				e.out.want(t, 2, statusFor(200, sip.CANCEL), "200 to CANCEL")
				respond(t, tx, 487, "uas-7")
				e.l.Receive(rq{method: sip.ACK, branch: inv.branch, toTag: "uas-7"}.req(t), udpPeer)
				e.advance(t64)
				closed(t, tx.Done(), "Done")
				e.tu.none(t) // neither CANCEL nor ACK reach the TU
			},
		},
		{
			// RFC 3261 9.2: the 200 to the CANCEL, then the INVITE's 487,
			// even when the TU answers 487 the moment it hears of the
			// CANCEL (Notify's callback runs on the CANCEL's goroutine).
			name: "a TU answering 487 at once: the 200 to the CANCEL goes first",
			run: func(t *testing.T, e *env) {
				e.l.Receive(inv.req(t), udpPeer)
				tx := e.tu.next(t).tx
				respond(t, tx, 180, "uas-7")
				tx.Notify(func() { respond(t, tx, 487, "uas-7") }, nil)
				e.l.Receive(cancel.req(t), udpPeer)
				e.out.want(t, 1, statusFor(487, sip.INVITE), "487 to the INVITE")
				var order []int
				for _, s := range e.out.matching(anything) {
					if res, ok := s.msg.(sip.Response); ok && res.StatusCode() >= 200 {
						order = append(order, int(res.StatusCode()))
					}
				}
				if len(order) != 2 || order[0] != 200 || order[1] != 487 {
					t.Fatalf("final responses in the order %v, want [200 487]", order)
				}
				e.l.Receive(rq{method: sip.ACK, branch: inv.branch, toTag: "uas-7"}.req(t), udpPeer)
				e.advance(t64)
				closed(t, tx.Done(), "Done")
			},
		},
		{
			name: "CANCEL after the final: 200, no effect",
			run: func(t *testing.T, e *env) {
				e.l.Receive(inv.req(t), udpPeer)
				tx := e.tu.next(t).tx
				respond(t, tx, 200, "uas-7")
				e.l.Receive(cancel.req(t), udpPeer)
				e.out.want(t, 1, statusFor(200, sip.CANCEL), "200 to CANCEL")
				open(t, tx.Cancelled(), "Cancelled")
				e.l.Receive(rq{method: sip.ACK, branch: "z9hG4bK-a", toTag: "uas-7"}.req(t), udpPeer)
				e.tu.next(t)
				e.advance(t64)
			},
		},
		{
			name: "CANCEL from another address: 481, the INVITE goes on",
			run: func(t *testing.T, e *env) {
				e.l.Receive(inv.req(t), udpPeer)
				tx := e.tu.next(t).tx
				respond(t, tx, 180, "uas-7")
				stranger := transport.Target{Kind: transport.UDP, Addr: netip.MustParseAddrPort("127.0.0.66:5070")}
				e.l.Receive(cancel.req(t), stranger)
				e.out.want(t, 1, statusFor(481, sip.CANCEL), "481 to the stranger's CANCEL")
				open(t, tx.Cancelled(), "Cancelled")
				respond(t, tx, 486, "uas-7")
				e.l.Receive(rq{method: sip.ACK, branch: inv.branch, toTag: "uas-7"}.req(t), udpPeer)
				e.advance(t64)
				closed(t, tx.Done(), "Done")
				e.tu.none(t)
			},
		},
		{
			name: "one branch from two addresses: two transactions",
			run: func(t *testing.T, e *env) {
				other := transport.Target{Kind: transport.UDP, Addr: netip.MustParseAddrPort("127.0.0.66:5070")}
				opt := rq{method: sip.OPTIONS, branch: "z9hG4bK-shared"}
				e.l.Receive(opt.req(t), udpPeer)
				e.l.Receive(opt.req(t), other)
				first, second := e.tu.next(t), e.tu.next(t)
				respond(t, first.tx, 200, "a")
				respond(t, second.tx, 200, "b")
				e.out.want(t, 2, statusFor(200, sip.OPTIONS), "a 200 to each")
				e.advance(t64)
			},
		},
		{
			name: "unmatched CANCEL: 481",
			run: func(t *testing.T, e *env) {
				e.l.Receive(cancel.req(t), udpPeer)
				res := e.out.want(t, 1, statusFor(481, sip.CANCEL), "481")
				if sipmsg.ToTag(res[0].msg) == "" {
					t.Fatal("481 without To tag")
				}
				e.tu.none(t)
				e.advance(t64)
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.run(t, newEnv(t, rfcTimers))
		})
	}
}

// TestServerTUTimeout: a request the TU never answers is answered 500 by
// the layer at its deadline (Timers.TU, TUInvite for INVITE), counted, and
// the transaction then ends as after any final response.
func TestServerTUTimeout(t *testing.T) {
	const tu, tuInvite = 10 * time.Second, 40 * time.Second
	cases := []struct {
		name     string
		req      rq
		deadline time.Duration
	}{
		{"BYE", rq{method: sip.BYE, branch: "z9hG4bK-bye-1", toTag: "a"}, tu},
		{"re-INVITE", rq{method: sip.INVITE, branch: "z9hG4bK-inv-1", toTag: "a"}, tuInvite},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, Timers{TU: tu, TUInvite: tuInvite, Trying: -1})
			e.l.Receive(tc.req.req(t), udpPeer)
			tx := e.tu.next(t).tx
			e.advance(tc.deadline - tick)
			e.out.want(t, 0, anything, "response before the deadline")
			e.advance(tick)
			e.out.want(t, 1, status(500), "500 at the deadline")
			if n := e.l.Stats().TUTimeouts; n != 1 {
				t.Fatalf("TU timeouts %d, want 1", n)
			}
			if err := tx.Respond(NewResponse(reqOf(t, tx), 200, "OK")); !errors.Is(err, ErrFinalSent) {
				t.Fatalf("late answer of the TU: %v, want ErrFinalSent", err)
			}
			if tc.req.method == sip.INVITE {
				e.l.Receive(rq{method: sip.ACK, branch: tc.req.branch, toTag: "a"}.req(t), udpPeer)
			}
			e.advance(t64)
			closed(t, tx.Done(), "Done")
		})
	}
}

// TestServerAnsweredInTimeHasNoTUTimeout: an answer before the deadline
// stops it.
func TestServerAnsweredInTimeHasNoTUTimeout(t *testing.T) {
	e := newEnv(t, Timers{TU: time.Second})
	e.l.Receive(rq{method: sip.OPTIONS, branch: "z9hG4bK-o"}.req(t), udpPeer)
	tx := e.tu.next(t).tx
	respond(t, tx, 200, "uas-1")
	e.advance(t64)
	closed(t, tx.Done(), "Done")
	e.out.want(t, 1, status(200), "only the TU's 200")
	if n := e.l.Stats().TUTimeouts; n != 0 {
		t.Fatalf("TU timeouts %d, want 0", n)
	}
}

// The layer's 100 Trying, queued when its timer fired, is not sent if
// the TU answered before the queue was flushed (a timer goroutine
// descheduled at the wrong moment): the caller must never get a 100
// after the TU's 180 or 200.
func TestLateTryingNotSentAfterTheTUsAnswer(t *testing.T) {
	e := newEnv(t, Timers{})
	e.l.Receive(rq{method: sip.INVITE, branch: "z9hG4bK-late"}.req(t), udpPeer)
	tx := e.tu.next(t).tx
	var out outbox
	tx.mu.Lock()
	tx.sendTrying(&out) // the timer fired: the 100 is queued, not yet sent
	tx.mu.Unlock()
	respond(t, tx, 180, "uas-1")
	respond(t, tx, 200, "uas-1")
	if err := out.flush(e.l); err != nil {
		t.Fatal(err)
	}
	e.out.want(t, 0, status(100), "100 after the TU's answer")
	e.out.want(t, 1, status(200), "200")
	e.l.Receive(rq{method: sip.ACK, branch: "z9hG4bK-late-ack", toTag: "uas-1"}.req(t), udpPeer)
	if ack := e.tu.next(t); ack.req.Method() != sip.ACK {
		t.Fatalf("the TU got %s, want the ACK of its 2xx", ack.req.Method())
	}
	e.advance(t64)
	closed(t, tx.Done(), "Done")

	// Not answered meanwhile: the queued 100 goes out.
	e.l.Receive(rq{method: sip.INVITE, branch: "z9hG4bK-slow", callID: "slow-call"}.req(t), udpPeer)
	tx = e.tu.next(t).tx
	out = outbox{}
	tx.mu.Lock()
	tx.sendTrying(&out)
	tx.mu.Unlock()
	if err := out.flush(e.l); err != nil {
		t.Fatal(err)
	}
	e.out.want(t, 1, status(100), "100 of a slow TU")
	respond(t, tx, 486, "uas-2")
	e.l.Receive(rq{method: sip.ACK, branch: "z9hG4bK-slow", callID: "slow-call", toTag: "uas-2"}.req(t), udpPeer)
	e.advance(t64)
	closed(t, tx.Done(), "Done")
}
