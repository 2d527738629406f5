package txn

import (
	"errors"
	"testing"

	"github.com/ghettovoice/gosip/sip"

	"github.com/sbc-project/sbc/b2bua/sipmsg"
	"github.com/sbc-project/sbc/b2bua/transport"
)

// outbound is a request the TU sends, with a fresh branch.
func outbound(t *testing.T, m sip.RequestMethod, via string) sip.Request {
	t.Helper()
	return rq{method: m, branch: NewBranch(), via: via, extra: "Route: <sip:proxy.example;lr>\r\n"}.req(t)
}

func startTx(t *testing.T, e *env, req sip.Request, dst transport.Target) *ClientTx {
	t.Helper()
	tx, err := e.l.Request(req, dst)
	if err != nil {
		t.Fatalf("start transaction: %v", err)
	}
	requests.Store(tx, req)
	return tx
}

func codes(rs []sip.Response) []int {
	out := make([]int, len(rs))
	for i, r := range rs {
		out[i] = int(r.StatusCode())
	}
	return out
}

func TestInviteClient(t *testing.T) {
	cases := []struct {
		name string
		run  func(t *testing.T, e *env, tx *ClientTx)
	}{
		{
			name: "retransmitted until a provisional (Timer A)",
			run: func(t *testing.T, e *env, tx *ClientTx) {
				e.advance(t1 + 2*t1 - tick)
				e.out.want(t, 2, method(sip.INVITE), "INVITE")
				e.advance(tick)
				got := e.out.want(t, 3, method(sip.INVITE), "INVITE")
				if got[2].dst != udpPeer {
					t.Fatalf("INVITE sent to %v, want %v", got[2].dst, udpPeer)
				}
				e.l.Receive(reply(t, reqOf(t, tx), 100, ""), udpPeer)
				if res := next(t, tx); res.StatusCode() != 100 {
					t.Fatalf("got %d, want 100", res.StatusCode())
				}
				e.advance(t64) // no Timer A nor B in Proceeding
				e.out.want(t, 3, method(sip.INVITE), "INVITE")
				noResponse(t, tx)
				e.l.Receive(reply(t, reqOf(t, tx), 486, "uas-1"), udpPeer)
				e.advance(t64)
				if got := codes(drained(t, tx)); len(got) != 1 || got[0] != 486 {
					t.Fatalf("responses %v, want [486]", got)
				}
			},
		},
		{
			name: "Timer B: synthetic 408",
			run: func(t *testing.T, e *env, tx *ClientTx) {
				e.advance(t64 - tick)
				// 0, 0.5, 1.5, 3.5, 7.5, 15.5, 31.5: Timer A has no cap
				e.out.want(t, 7, method(sip.INVITE), "INVITE")
				noResponse(t, tx)
				e.advance(tick)
				got := drained(t, tx)
				if len(got) != 1 || got[0].StatusCode() != 408 {
					t.Fatalf("responses %v, want [408]", codes(got))
				}
				if s := e.l.Stats(); s.Timeouts != 1 {
					t.Fatalf("timeouts %d, want 1", s.Timeouts)
				}
			},
		},
		{
			name: "486: layer ACKs with the INVITE's branch, re-ACKs its retransmission, Timer D",
			run: func(t *testing.T, e *env, tx *ClientTx) {
				e.l.Receive(reply(t, reqOf(t, tx), 180, "uas-1"), udpPeer)
				e.l.Receive(reply(t, reqOf(t, tx), 486, "uas-1"), udpPeer)
				if a, b := next(t, tx), next(t, tx); a.StatusCode() != 180 || b.StatusCode() != 486 {
					t.Fatalf("got %d, %d, want 180, 486", a.StatusCode(), b.StatusCode())
				}
				ack := e.out.want(t, 1, method(sip.ACK), "ACK")[0]
				req := ack.msg.(sip.Request)
				switch {
				case branchOfMsg(req) != branchOfMsg(reqOf(t, tx)):
					t.Fatal("ACK has a new branch")
				case sipmsg.ToTag(req) != "uas-1":
					t.Fatalf("ACK To tag %q, want the response's", sipmsg.ToTag(req))
				case !hasLine(ack.text, "CSeq: 1 ACK"), !hasLine(ack.text, "Route: <sip:proxy.example;lr>"):
					t.Fatalf("ACK lacks CSeq or Route:\n%s", ack.text)
				case req.Recipient().String() != reqOf(t, tx).Recipient().String():
					t.Fatalf("ACK Request-URI %s", req.Recipient())
				case ack.dst != udpPeer:
					t.Fatalf("ACK to %v", ack.dst)
				}
				e.l.Receive(reply(t, reqOf(t, tx), 486, "uas-1"), udpPeer)
				e.out.want(t, 2, method(sip.ACK), "ACK")
				noResponse(t, tx) // the retransmission is not delivered
				e.advance(t64 - tick)
				open(t, tx.Done(), "Done before Timer D")
				e.advance(tick)
				if got := drained(t, tx); len(got) != 0 {
					t.Fatalf("more responses: %v", codes(got))
				}
			},
		},
		{
			name: "2xx, its retransmission and a forked 2xx are all delivered until Timer M",
			run: func(t *testing.T, e *env, tx *ClientTx) {
				e.l.Receive(reply(t, reqOf(t, tx), 200, "uas-a"), udpPeer)
				e.l.Receive(reply(t, reqOf(t, tx), 200, "uas-a"), udpPeer)
				e.l.Receive(reply(t, reqOf(t, tx), 200, "uas-b"), udpPeer)
				e.l.Receive(reply(t, reqOf(t, tx), 180, "uas-c"), udpPeer) // too late, absorbed
				var tags []string
				for range 3 {
					tags = append(tags, sipmsg.ToTag(next(t, tx)))
				}
				if tags[0] != "uas-a" || tags[1] != "uas-a" || tags[2] != "uas-b" {
					t.Fatalf("To tags %v", tags)
				}
				noResponse(t, tx)
				e.out.want(t, 0, method(sip.ACK), "ACK") // the TU ACKs 2xx
				e.advance(t64 - tick)
				e.l.Receive(reply(t, reqOf(t, tx), 200, "uas-a"), udpPeer)
				e.advance(tick)
				if got := drained(t, tx); len(got) != 1 {
					t.Fatalf("responses %v, want the last 200", codes(got))
				}
				e.out.want(t, 1, method(sip.INVITE), "INVITE")
			},
		},
		{
			name: "Cancel before a provisional waits for one",
			run: func(t *testing.T, e *env, tx *ClientTx) {
				if err := tx.Cancel(); err != nil {
					t.Fatal(err)
				}
				e.advance(t1)
				e.out.want(t, 0, method(sip.CANCEL), "CANCEL")
				e.l.Receive(reply(t, reqOf(t, tx), 180, "uas-1"), udpPeer)
				c := e.out.want(t, 1, method(sip.CANCEL), "CANCEL")[0]
				cancel := c.msg.(sip.Request)
				switch {
				case branchOfMsg(cancel) != branchOfMsg(reqOf(t, tx)):
					t.Fatal("CANCEL has another branch")
				case !hasLine(c.text, "CSeq: 1 CANCEL"), sipmsg.ToTag(cancel) != "":
					t.Fatalf("CANCEL CSeq or To wrong:\n%s", c.text)
				case cancel.Recipient().String() != reqOf(t, tx).Recipient().String(), c.dst != udpPeer:
					t.Fatalf("CANCEL to %s via %v", cancel.Recipient(), c.dst)
				}
				e.l.Receive(reply(t, cancel, 200, "uas-1"), udpPeer)
				e.l.Receive(reply(t, reqOf(t, tx), 487, "uas-1"), udpPeer)
				e.advance(t64)
				if got := codes(drained(t, tx)); len(got) != 2 || got[0] != 180 || got[1] != 487 {
					t.Fatalf("responses %v, want [180 487]", got)
				}
				e.out.want(t, 1, method(sip.ACK), "ACK")
				e.out.want(t, 1, method(sip.CANCEL), "CANCEL") // answered: no Timer E
			},
		},
		{
			name: "Cancel after a provisional sends at once; a crossing 2xx is delivered",
			run: func(t *testing.T, e *env, tx *ClientTx) {
				e.l.Receive(reply(t, reqOf(t, tx), 183, "uas-1"), udpPeer)
				next(t, tx)
				if err := tx.Cancel(); err != nil {
					t.Fatal(err)
				}
				if err := tx.Cancel(); err != nil {
					t.Fatal(err)
				}
				cancel := e.out.want(t, 1, method(sip.CANCEL), "CANCEL")[0].msg.(sip.Request)
				e.l.Receive(reply(t, reqOf(t, tx), 200, "uas-1"), udpPeer)
				e.l.Receive(reply(t, cancel, 200, "uas-1"), udpPeer)
				if res := next(t, tx); res.StatusCode() != 200 {
					t.Fatalf("got %d, want 200", res.StatusCode())
				}
				e.advance(t64)
				if got := drained(t, tx); len(got) != 0 {
					t.Fatalf("CANCEL's response delivered: %v", codes(got))
				}
				e.out.want(t, 1, method(sip.CANCEL), "CANCEL")
			},
		},
		{
			name: "CANCELed INVITE never answered: 408 after 64*T1",
			run: func(t *testing.T, e *env, tx *ClientTx) {
				e.l.Receive(reply(t, reqOf(t, tx), 180, "uas-1"), udpPeer)
				next(t, tx)
				if err := tx.Cancel(); err != nil {
					t.Fatal(err)
				}
				e.advance(t64 - tick)
				noResponse(t, tx)
				e.out.want(t, 11, method(sip.CANCEL), "CANCEL") // Timer E
				e.advance(tick)
				if got := codes(drained(t, tx)); len(got) != 1 || got[0] != 408 {
					t.Fatalf("responses %v, want [408]", got)
				}
				if s := e.l.Stats(); s.Timeouts != 2 {
					t.Fatalf("timeouts %d, want 2 (INVITE and CANCEL)", s.Timeouts)
				}
			},
		},
		{
			name: "Cancel after the final does nothing",
			run: func(t *testing.T, e *env, tx *ClientTx) {
				e.l.Receive(reply(t, reqOf(t, tx), 603, "uas-1"), udpPeer)
				next(t, tx)
				if err := tx.Cancel(); err != nil {
					t.Fatal(err)
				}
				e.advance(t64)
				drained(t, tx)
				e.out.want(t, 0, method(sip.CANCEL), "CANCEL")
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, rfcTimers)
			tx := startTx(t, e, outbound(t, sip.INVITE, "UDP 127.0.0.1:5060"), udpPeer)
			tc.run(t, e, tx)
			closed(t, tx.Done(), "Done")
		})
	}
}

func TestNonInviteClient(t *testing.T) {
	cases := []struct {
		name string
		run  func(t *testing.T, e *env, tx *ClientTx)
	}{
		{
			name: "Timer E doubles up to T2, Timer F: synthetic 408",
			run: func(t *testing.T, e *env, tx *ClientTx) {
				e.advance(t64 - tick)
				// 0, 0.5, 1.5, 3.5, then every T2: 7.5 ... 31.5
				e.out.want(t, 11, method(sip.OPTIONS), "OPTIONS")
				noResponse(t, tx)
				e.advance(tick)
				if got := codes(drained(t, tx)); len(got) != 1 || got[0] != 408 {
					t.Fatalf("responses %v, want [408]", got)
				}
			},
		},
		{
			name: "retransmitted every T2 after a provisional, final stops it, Timer K",
			run: func(t *testing.T, e *env, tx *ClientTx) {
				e.advance(t1)
				e.out.want(t, 2, method(sip.OPTIONS), "OPTIONS")
				e.l.Receive(reply(t, reqOf(t, tx), 100, ""), udpPeer)
				next(t, tx)
				e.advance(2 * t1) // the armed Timer E fires, re-armed at T2
				e.out.want(t, 3, method(sip.OPTIONS), "OPTIONS")
				e.advance(t2 - tick)
				e.out.want(t, 3, method(sip.OPTIONS), "OPTIONS")
				e.advance(tick)
				e.out.want(t, 4, method(sip.OPTIONS), "OPTIONS")
				e.l.Receive(reply(t, reqOf(t, tx), 200, "uas-1"), udpPeer)
				e.l.Receive(reply(t, reqOf(t, tx), 200, "uas-1"), udpPeer)
				if res := next(t, tx); res.StatusCode() != 200 {
					t.Fatalf("got %d", res.StatusCode())
				}
				noResponse(t, tx) // the retransmitted final is absorbed
				e.advance(t4 - tick)
				open(t, tx.Done(), "Done before Timer K")
				e.advance(tick)
				drained(t, tx)
				e.out.want(t, 4, method(sip.OPTIONS), "OPTIONS")
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, rfcTimers)
			tx := startTx(t, e, outbound(t, sip.OPTIONS, "UDP 127.0.0.1:5060"), udpPeer)
			if err := tx.Cancel(); err == nil {
				t.Fatal("Cancel of a non-INVITE succeeded")
			}
			tc.run(t, e, tx)
			closed(t, tx.Done(), "Done")
		})
	}
}

func TestClientReliable(t *testing.T) {
	cases := []struct {
		name   string
		method sip.RequestMethod
		code   int // peer's answer; 0: none
		want   int // delivered
	}{
		{name: "INVITE: no Timer A, Timer B still fires", method: sip.INVITE, want: 408},
		{name: "INVITE 486: ACK, no Timer D", method: sip.INVITE, code: 486, want: 486},
		{name: "BYE 200: no Timer K", method: sip.BYE, code: 200, want: 200},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, rfcTimers)
			tx := startTx(t, e, outbound(t, tc.method, "TCP 127.0.0.1:5060"), tcpPeer)
			e.advance(t64 / 2)
			e.out.want(t, 1, method(tc.method), string(tc.method))
			if tc.code != 0 {
				e.l.Receive(reply(t, reqOf(t, tx), tc.code, "uas-1"), tcpPeer)
				e.advance(0)
			} else {
				e.advance(t64 / 2)
			}
			got := codes(drained(t, tx))
			if len(got) != 1 || got[0] != tc.want {
				t.Fatalf("responses %v, want [%d]", got, tc.want)
			}
			if tc.code >= 300 {
				e.out.want(t, 1, method(sip.ACK), "ACK")
			}
		})
	}
}

func TestRequestErrors(t *testing.T) {
	bare := sip.NewRequest("", sip.OPTIONS, &sip.SipUri{FHost: "127.0.0.1"}, "SIP/2.0", nil, "", nil)
	cases := []struct {
		name  string
		req   func(t *testing.T) sip.Request
		setup func(e *env)
		is    error
	}{
		{name: "ACK", req: func(t *testing.T) sip.Request { return outbound(t, sip.ACK, "UDP 127.0.0.1:5060") }},
		{name: "no magic cookie", req: func(t *testing.T) sip.Request {
			return rq{method: sip.OPTIONS, branch: "1234"}.req(t)
		}},
		{name: "no headers", req: func(*testing.T) sip.Request { return bare }},
		{name: "send fails", req: func(t *testing.T) sip.Request { return outbound(t, sip.OPTIONS, "") },
			setup: func(e *env) { e.out.fail = errors.New("boom") }},
		{name: "closed", req: func(t *testing.T) sip.Request { return outbound(t, sip.OPTIONS, "") },
			setup: func(e *env) { e.l.Close() }, is: ErrClosed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, rfcTimers)
			if tc.setup != nil {
				tc.setup(e)
			}
			tx, err := e.l.Request(tc.req(t), udpPeer)
			if err == nil || tx != nil {
				t.Fatalf("Request: %v, %v; want an error", tx, err)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Fatalf("error %v, want %v", err, tc.is)
			}
		})
	}

	t.Run("branch in use", func(t *testing.T) {
		e := newEnv(t, rfcTimers)
		req := outbound(t, sip.OPTIONS, "")
		tx := startTx(t, e, req, udpPeer)
		if _, err := e.l.Request(req, udpPeer); err == nil {
			t.Fatal("second transaction with the same branch")
		}
		e.l.Receive(reply(t, req, 200, "x"), udpPeer)
		e.advance(t4)
		closed(t, tx.Done(), "Done")
	})
}

func TestResponsesNeverBlock(t *testing.T) {
	e := newEnv(t, rfcTimers)
	tx := startTx(t, e, outbound(t, sip.INVITE, ""), udpPeer)
	for range 2 * responsesCap { // the TU reads nothing meanwhile
		e.l.Receive(reply(t, reqOf(t, tx), 180, "uas-1"), udpPeer)
	}
	e.l.Receive(reply(t, reqOf(t, tx), 200, "uas-1"), udpPeer)
	e.advance(t64)
	got := codes(drained(t, tx))
	if len(got) != responsesCap-finalReserve+1 || got[len(got)-1] != 200 {
		t.Fatalf("delivered %v: want %d provisionals then the 200", got, responsesCap-finalReserve)
	}
	if s := e.l.Stats(); s.Dropped != uint64(2*responsesCap-(responsesCap-finalReserve)) {
		t.Fatalf("dropped %d", s.Dropped)
	}
}
