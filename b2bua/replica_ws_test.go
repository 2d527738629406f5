package b2bua

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/ghettovoice/gosip/sip"

	"github.com/sbc-project/sbc/b2bua/outcome"
	"github.com/sbc-project/sbc/b2bua/transport"
)

// A restored call whose caller was on a WebSocket (replica_restore.go
// restored): the connection died with its node, so the leg waits for
// the caller's new connection for the flow grace, as after a lost
// connection, and alice, registered again with her instance on the new
// node, ends the call from there; without a flow grace the call ends at
// once, with a BYE to the PBX. The nodes on 127.0.15.31, alice from
// 127.0.15.32, the PBX on 127.0.15.33.
func TestRestoredWebSocketLeg(t *testing.T) {
	for _, tt := range []struct {
		name  string
		grace time.Duration
	}{{"waits for the caller", 30 * time.Second}, {"ends without a grace", 0}} {
		t.Run(tt.name, func(t *testing.T) {
			restore := func(h *Hooks) {
				h.RestoreMedia = func(string, []byte) (MediaSession, error) { return fakeMedia{}, nil }
			}
			pbx := newRawPeerAt(t, "127.0.15.33")
			g1 := startGraceSBCAt(t, tt.grace, "127.0.15.31", pbx, restore)
			alice := g1.dial(t, transport.WS, "127.0.15.32", "alice")
			alice.register("1111-aaaa")
			c := g1.call(t, alice)
			state := stateOfCall(t, g1.s)
			var st CallState
			if err := json.Unmarshal(state, &st); err != nil || st.A.FlowUser != "alice" || !strings.Contains(st.A.FlowInstance, "1111-aaaa") {
				t.Fatalf("state of alice's leg: %+v (%v)", st.A, err)
			}
			g1.s.Abandon()
			g2 := startGraceSBCAt(t, tt.grace, "127.0.15.31", pbx, restore)
			if err := g2.s.Restore(state, "node1"); err != nil {
				t.Fatal(err)
			}
			if tt.grace == 0 {
				bye := pbx.recv("BYE", isRequest(sip.BYE))
				pbx.answer(bye, "200 OK")
				if r := g2.rec.next(t); r.Cause != outcome.CauseConnectionLost || r.TakenOverFrom != "node1" {
					t.Errorf("record: cause %s, taken over from %q", r.Cause, r.TakenOverFrom)
				}
				return
			}
			waitUntil(t, "the restored call to wait for alice", g2.inGrace)
			back := g2.dial(t, transport.WS, "127.0.15.32", "alice")
			back.register("1111-aaaa")
			back.send(c.request(back, "BYE", "")...)
			back.recv("200 to BYE on the new connection", isResponse(200, sip.BYE))
			bye := pbx.recv("BYE", isRequest(sip.BYE))
			pbx.answer(bye, "200 OK")
			if r := g2.rec.next(t); r.Cause != outcome.CauseCallerBye || r.TakenOverFrom != "node1" {
				t.Errorf("record: cause %s, taken over from %q", r.Cause, r.TakenOverFrom)
			}
		})
	}
}

// stateOfCall is the continuation state of s's one call.
func stateOfCall(t *testing.T, s *Server) []byte {
	return onTheCall(t, s, func(c *Call) []byte {
		st, err := c.State()
		if err != nil {
			t.Error(err)
		}
		b, _ := json.Marshal(&st)
		return b
	})
}

// onTheCall runs fn on the goroutine of s's one call and returns what it
// returned, failing t when there is no call or it does not run fn.
func onTheCall[T any](t *testing.T, s *Server, fn func(*Call) T) T {
	t.Helper()
	s.mu.Lock()
	var call *Call
	for c := range s.calls {
		call = c
	}
	s.mu.Unlock()
	res := make(chan T, 1)
	if call == nil || !call.post(event{kind: evFunc, fn: func(c *Call) { res <- fn(c) }}) {
		t.Fatal("no call")
	}
	select {
	case v := <-res:
		return v
	case <-time.After(wait):
		t.Fatal("the call did not run its event")
		var none T
		return none
	}
}
