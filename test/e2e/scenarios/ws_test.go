package scenarios

import (
	"net"
	"testing"
	"time"

	"github.com/sbc-project/sbc/b2bua/outcome"
	"github.com/sbc-project/sbc/test/e2e"
)

func TestWebSocketCallToSIPp(t *testing.T) {
	e2e.NeedSIPp(t)
	for _, kind := range []string{"WS", "WSS"} {
		t.Run(kind, func(t *testing.T) {
			port, wait := e2e.StartUAS(t, 1, "u1")
			sbc := e2e.StartSBC(t, e2e.SBCOptions{Trunks: []e2e.TrunkSpec{{Name: "pbx", Addr: e2e.PBXIP(), Port: port}}})
			addr := sbc.WS.String()
			if kind == "WSS" {
				addr = sbc.WSS.String()
			}
			ua := e2e.DialUA(t, kind, addr)
			call := ua.Invite("1000", "")
			call.Answered(ua.Expect(200))
			call.Ack()
			time.Sleep(200 * time.Millisecond)
			call.Bye()
			ua.Expect(200)
			wait()
			sbc.WaitIdle(t)
		})
	}
}

// TestIdleConnectionsDoNotDelayWebSocket opens 200 TCP connections to the WS
// port that never speak, then places a call over a new WebSocket: the
// handshake runs off the accept loop, so the call goes through.
func TestIdleConnectionsDoNotDelayWebSocket(t *testing.T) {
	e2e.NeedSIPp(t)
	port, wait := e2e.StartUAS(t, 1, "u1")
	sbc := e2e.StartSBC(t, e2e.SBCOptions{Trunks: []e2e.TrunkSpec{{Name: "pbx", Addr: e2e.PBXIP(), Port: port}}})
	var idle []net.Conn
	for i := 0; i < 200; i++ {
		c, err := net.Dial("tcp", sbc.WS.String())
		if err != nil {
			t.Fatalf("idle conn %d: %v", i, err)
		}
		idle = append(idle, c)
	}
	defer func() {
		for _, c := range idle {
			c.Close()
		}
	}()
	start := time.Now()
	ua := e2e.DialUA(t, "WS", sbc.WS.String())
	call := ua.Invite("1000", "")
	call.Answered(ua.Expect(200))
	call.Ack()
	call.Bye()
	ua.Expect(200)
	t.Logf("call with 200 idle connections open: %v", time.Since(start))
	wait()
	sbc.WaitIdle(t)
}

// TestWebSocketClosedMidCallEndsCall drops a browser's WebSocket in the
// middle of an answered call, as a closed tab does: the SBC must BYE the
// PBX leg at once (SIPp's UAS completes only on that BYE) and write a CDR
// that says the caller's connection was lost.
func TestWebSocketClosedMidCallEndsCall(t *testing.T) {
	e2e.NeedSIPp(t)
	port, wait := e2e.StartUAS(t, 1, "u1")
	sinks := e2e.NewCDRSinks(t, "")
	sbc := e2e.StartSBC(t, e2e.SBCOptions{
		Trunks: []e2e.TrunkSpec{{Name: "pbx", Addr: e2e.PBXIP(), Port: port}},
		Mutate: sinks.Apply,
	})
	ua := e2e.DialUA(t, "WS", sbc.WS.String())
	call := ua.Invite("1000", "")
	call.Answered(ua.Expect(200))
	call.Ack()
	time.Sleep(200 * time.Millisecond)
	closed := time.Now()
	ua.Close()
	wait() // SIPp's UAS ends only once it has had the BYE and answered it
	if d := time.Since(closed); d > 5*time.Second {
		t.Errorf("BYE reached the PBX %v after the WebSocket closed", d)
	}
	sbc.WaitIdle(t)
	if err := sbc.App.Close(); err != nil {
		t.Fatal(err)
	}
	recs := sinks.Records(t)
	if len(recs) != 1 {
		t.Fatalf("%d CDRs, want 1", len(recs))
	}
	r := recs[0]
	if r.HangupCause != "connection_lost" || r.HangupSide != "a" || r.Disposition != outcome.Answered {
		t.Errorf("CDR cause %q side %q disposition %q, want connection_lost, a, answered", r.HangupCause, r.HangupSide, r.Disposition)
	}
	if r.AnswerTime.IsZero() || r.EndTime.IsZero() {
		t.Errorf("CDR without answer or end time: %+v", r)
	}
}
