package b2bua

import (
	"github.com/sbc-project/sbc/b2bua/registrar"
	"github.com/sbc-project/sbc/b2bua/transport"
)

// The calls the server holds: tracking for shutdown, the dialog index
// in-dialog requests are routed by, and the index of calls by the
// connections their legs live on.

// track registers a call; it fails once Close has begun.
func (s *Server) track(c *Call) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errClosed
	}
	s.calls[c] = struct{}{}
	s.wg.Add(1)
	return nil
}

func (s *Server) untrack(c *Call) {
	s.mu.Lock()
	delete(s.calls, c)
	s.mu.Unlock()
	s.wg.Done()
}

// addDialog indexes a leg's dialog so in-dialog requests find it.
func (s *Server) addDialog(l *leg) {
	s.mu.Lock()
	s.dialogs[dialogKey{l.callID, l.localTag}] = l
	s.mu.Unlock()
}

func (s *Server) removeDialog(l *leg) {
	s.mu.Lock()
	if s.dialogs[dialogKey{l.callID, l.localTag}] == l {
		delete(s.dialogs, dialogKey{l.callID, l.localTag})
	}
	s.mu.Unlock()
}

// ActiveCalls is the number of calls held.
func (s *Server) ActiveCalls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.calls)
}

// connLost ends the calls that have a leg on a closed connection: a browser
// whose page was closed or whose network went away cannot send BYE, and
// nothing else would end the other leg until media times out. The dead leg
// gets no BYE (there is no way to reach it); the other one does, at once,
// or, with a flow grace, once the grace ran out with nobody taking the
// dialog over (flowgrace.go).
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
	if len(calls) == 0 {
		return
	}
	// Who the connection was, for a call that waits for its party to come
	// back (flowgrace.go): the observers run in order, and the
	// registration service's, which removes the bindings, comes after.
	var owner registrar.Binding
	if s.cfg.FlowGrace > 0 && s.reg != nil {
		owner, _ = s.reg.BindingOn(conn, "")
	}
	for _, c := range calls {
		c.post(event{kind: evFunc, fn: func(c *Call) { c.legLost(conn, owner) }})
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
		c.post(event{kind: evFunc, fn: func(c *Call) { c.legLost(conn, registrar.Binding{}) }})
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
