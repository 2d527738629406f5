package b2bua

import "github.com/sbc-project/sbc/b2bua/transport"

// CauseConnectionLost ends a call whose caller's or callee's connection (a
// browser's WebSocket, a TCP or TLS phone) closed under it.
const CauseConnectionLost = "connection_lost"

// CauseMaxDuration ends an answered call that reached
// policy.admission.max_duration.
const CauseMaxDuration = "max_duration"

// connLost ends the calls that have a leg on a closed connection: a browser
// whose page was closed or whose network went away cannot send BYE, and
// nothing else would end the other leg until media times out. The dead leg
// gets no BYE (there is no way to reach it); the other one does, at once.
// A callee that is still ringing on the lost connection is left to its
// INVITE transaction, which fails on its own.
func (s *Server) connLost(conn *transport.Conn) {
	s.mu.Lock()
	calls := make([]*Call, 0, len(s.calls))
	for c := range s.calls {
		calls = append(calls, c)
	}
	s.mu.Unlock()
	for _, c := range calls {
		c.post(event{kind: evFunc, fn: func(c *Call) { c.legLost(conn) }})
	}
}

// legLost hangs the call up if one of its confirmed legs, or its caller,
// lived on conn.
func (c *Call) legLost(conn *transport.Conn) {
	if c.state == stateEnding {
		return
	}
	for _, l := range []*leg{c.a, c.b} {
		if l == nil || l.dst.Conn != conn {
			continue
		}
		if l == c.b && !l.confirmed {
			return
		}
		c.log.Info("connection lost: ending the call", "leg", l.name, "conn", conn.String())
		l.confirmed = false // no BYE into a closed connection
		c.hangup(CauseConnectionLost, l.name)
		return
	}
}
