package b2bua

import (
	"github.com/sbc-project/sbc/b2bua/outcome"
	"github.com/sbc-project/sbc/b2bua/transport"
)

// connLost ends the calls that have a leg on a closed connection: a browser
// whose page was closed or whose network went away cannot send BYE, and
// nothing else would end the other leg until media times out. The dead leg
// gets no BYE (there is no way to reach it); the other one does, at once.
// A callee that is still ringing on the lost connection is left to its
// INVITE transaction, which fails on its own. Only the calls indexed under
// the connection hear of it: a close costs the same with ten calls or a
// hundred thousand.
func (s *Server) connLost(conn *transport.Conn) {
	s.mu.Lock()
	set := s.byConn[conn]
	delete(s.byConn, conn)
	calls := make([]*Call, 0, len(set))
	for c := range set {
		calls = append(calls, c)
	}
	s.mu.Unlock()
	for _, c := range calls {
		c.post(event{kind: evFunc, fn: func(c *Call) { c.legLost(conn) }})
	}
}

// watchConn indexes c under conn (nil: a UDP leg, nothing to watch), for
// connLost. Called by the call's creator or goroutine.
func (s *Server) watchConn(c *Call, conn *transport.Conn) {
	if conn == nil {
		return
	}
	s.mu.Lock()
	set := s.byConn[conn]
	if set == nil {
		set = make(map[*Call]struct{})
		s.byConn[conn] = set
	}
	set[c] = struct{}{}
	s.mu.Unlock()
	c.conns = append(c.conns, conn)
	select {
	case <-conn.Done():
		// Closed before it was indexed: connLost may have missed the call.
		c.post(event{kind: evFunc, fn: func(c *Call) { c.legLost(conn) }})
	default:
	}
}

// unwatchConns takes an ending call out of the connection index.
func (s *Server) unwatchConns(c *Call) {
	s.mu.Lock()
	for _, conn := range c.conns {
		if set := s.byConn[conn]; set != nil {
			delete(set, c)
			if len(set) == 0 {
				delete(s.byConn, conn)
			}
		}
	}
	s.mu.Unlock()
	c.conns = nil
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
		c.hangup(outcome.CauseConnectionLost, l.name)
		return
	}
}
