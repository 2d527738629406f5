package e2e

import (
	"net"
	"testing"
	"time"

	"github.com/sbc-project/sbc/b2bua/outcome"
)

func TestWebSocketCallToSIPp(t *testing.T) {
	needSIPp(t)
	for _, kind := range []string{"WS", "WSS"} {
		t.Run(kind, func(t *testing.T) {
			port, wait := startUAS(t, 1, "u1")
			sbc := startSBC(t, sbcOptions{trunks: []trunkSpec{{name: "pbx", addr: "127.0.0.3", port: port}}})
			addr := sbc.ws.String()
			if kind == "WSS" {
				addr = sbc.wss.String()
			}
			ua := dialUA(t, kind, addr)
			call := ua.invite("1000", "")
			call.answered(ua.expect(200))
			call.ack()
			time.Sleep(200 * time.Millisecond)
			call.bye()
			ua.expect(200)
			wait()
			sbc.waitIdle(t)
		})
	}
}

// TestIdleConnectionsDoNotDelayWebSocket opens 200 TCP connections to the WS
// port that never speak, then places a call over a new WebSocket: the
// handshake runs off the accept loop, so the call goes through.
func TestIdleConnectionsDoNotDelayWebSocket(t *testing.T) {
	needSIPp(t)
	port, wait := startUAS(t, 1, "u1")
	sbc := startSBC(t, sbcOptions{trunks: []trunkSpec{{name: "pbx", addr: "127.0.0.3", port: port}}})
	var idle []net.Conn
	for i := 0; i < 200; i++ {
		c, err := net.Dial("tcp", sbc.ws.String())
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
	ua := dialUA(t, "WS", sbc.ws.String())
	call := ua.invite("1000", "")
	call.answered(ua.expect(200))
	call.ack()
	call.bye()
	ua.expect(200)
	t.Logf("call with 200 idle connections open: %v", time.Since(start))
	wait()
	sbc.waitIdle(t)
}

// TestWebSocketClosedMidCallEndsCall drops a browser's WebSocket in the
// middle of an answered call, as a closed tab does: the SBC must BYE the
// PBX leg at once (SIPp's UAS completes only on that BYE) and write a CDR
// that says the caller's connection was lost.
func TestWebSocketClosedMidCallEndsCall(t *testing.T) {
	needSIPp(t)
	port, wait := startUAS(t, 1, "u1")
	sinks := newCDRSinks(t, "")
	sbc := startSBC(t, sbcOptions{
		trunks: []trunkSpec{{name: "pbx", addr: "127.0.0.3", port: port}},
		mutate: sinks.apply,
	})
	ua := dialUA(t, "WS", sbc.ws.String())
	call := ua.invite("1000", "")
	call.answered(ua.expect(200))
	call.ack()
	time.Sleep(200 * time.Millisecond)
	closed := time.Now()
	ua.close()
	wait() // SIPp's UAS ends only once it has had the BYE and answered it
	if d := time.Since(closed); d > 5*time.Second {
		t.Errorf("BYE reached the PBX %v after the WebSocket closed", d)
	}
	sbc.waitIdle(t)
	if err := sbc.app.Close(); err != nil {
		t.Fatal(err)
	}
	recs := sinks.records(t)
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
