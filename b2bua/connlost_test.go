package b2bua

import (
	"testing"

	"github.com/sbc-project/sbc/b2bua/transport"
)

// TestConnLostReachesOnlyItsCalls: a closed connection posts to the calls
// indexed under it and to no other, and an ended call leaves the index.
func TestConnLostReachesOnlyItsCalls(t *testing.T) {
	s := &Server{byConn: make(map[*transport.Conn]map[*Call]struct{})}
	// running: the events wait in the queue, as for a call whose goroutine is busy.
	newCall := func() *Call { return &Call{s: s, running: true, done: make(chan struct{})} }
	ws, other := &transport.Conn{}, &transport.Conn{}
	onWS, bothLegs, udpOnly := newCall(), newCall(), newCall()
	s.watchConn(onWS, ws)
	s.watchConn(bothLegs, other)
	s.watchConn(bothLegs, ws)
	s.watchConn(udpOnly, nil)
	var idle []*Call
	for range 1000 {
		c := newCall()
		s.watchConn(c, other)
		idle = append(idle, c)
	}

	s.connLost(ws)
	for name, c := range map[string]*Call{"call on the connection": onWS, "call with a leg on it": bothLegs} {
		if n := len(c.queue); n != 1 {
			t.Errorf("%s got %d events, want 1", name, n)
		}
	}
	if n := len(udpOnly.queue); n != 0 {
		t.Errorf("UDP call got %d events", n)
	}
	for _, c := range idle {
		if len(c.queue) != 0 {
			t.Fatal("a call on another connection got an event")
		}
	}
	if _, ok := s.byConn[ws]; ok {
		t.Error("the closed connection is still indexed")
	}

	for _, c := range append(idle, bothLegs) {
		s.unwatchConns(c)
	}
	if len(s.byConn) != 0 {
		t.Errorf("%d connections indexed after every call ended", len(s.byConn))
	}
}

// BenchmarkConnLost: closing a connection with one call among many costs
// the same whatever the number of calls.
func BenchmarkConnLost(b *testing.B) {
	s := &Server{byConn: make(map[*transport.Conn]map[*Call]struct{})}
	for range 10000 {
		s.watchConn(&Call{s: s, running: true, done: make(chan struct{})}, &transport.Conn{})
	}
	b.ReportAllocs()
	for b.Loop() {
		conn := &transport.Conn{}
		s.watchConn(&Call{s: s, running: true, done: make(chan struct{})}, conn)
		s.connLost(conn)
	}
}
