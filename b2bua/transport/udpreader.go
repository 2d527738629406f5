package transport

import (
	"sync/atomic"
	"time"
)

// udpReader reads one UDP listener's socket, one goroutine at a time.
//
// A datagram whose slot has nothing to do (no worker delivering, none
// queued) while no other datagram waits in the socket is delivered by
// the reader itself. Handing every datagram to a worker woke a second
// thread for each: at 800 calls/s most of the eleven context switches
// of a call were such hand-offs (reader, worker, the call's goroutine;
// BENCHMARKS.md, issue 15 tenth step). With datagrams waiting, or the
// slot busy, the worker takes it as before, so that a busy listener
// still uses every core.
//
// A handler that does not return within readStall does not stop the
// socket: a new goroutine takes the reading over (takeOver), and the one
// stuck goes when its handler returns. The slot's lock keeps the
// datagrams of the stuck one's Call-ID behind it.
type udpReader struct {
	l        *Layer
	li       *listener
	w        *udpWorkers
	dropped  atomic.Uint32 // the socket's drop count, as last reported
	turn     atomic.Pointer[readTurn]
	stall    *time.Timer // takeOver, armed while the reader delivers
	finished chan struct{}
}

// readTurn is one goroutine's turn at reading.
type readTurn struct{ state atomic.Int32 }

const (
	turnReading    int32 = iota
	turnDelivering       // delivering a datagram itself
	turnReplaced         // another goroutine reads now
)

// readStall is how long the reader's own delivery of a datagram may take
// before another goroutine reads on. A handler takes microseconds; the
// call events that may wait run on goroutines of their own (b2bua
// postHere).
const readStall = 5 * time.Millisecond

// read reads and delivers until the socket closes (then it closes
// finished) or, while it delivered a datagram, another goroutine took
// the reading over.
func (r *udpReader) read(t *readTurn) {
	buf := make([]byte, r.l.lim.MaxMessageSize+1)
	oob := make([]byte, rxInfoSize)
	for {
		p, ok, closed := r.readOne(buf, oob)
		if closed {
			r.stall.Stop()
			close(r.finished)
			return
		}
		if ok && !r.handle(t, p) {
			return
		}
	}
}

// handle delivers p itself when its slot is idle and nothing else
// waits in the socket, else hands it to the slot's worker. false: the
// reading was taken over meanwhile.
func (r *udpReader) handle(t *readTurn, p Packet) bool {
	s := r.w.slot(&p)
	if s.pending.Load() != 0 || r.li.raw.backlog() || !s.run.TryLock() {
		r.w.hand(r.l, s, p)
		return true
	}
	r.w.inline.Add(1)
	t.state.Store(turnDelivering)
	r.stall.Reset(readStall)
	r.l.deliver(p)
	s.run.Unlock()
	if !t.state.CompareAndSwap(turnDelivering, turnReading) {
		return false
	}
	r.stall.Stop()
	return true
}

// takeOver starts a new reader when the one reading is still delivering
// a datagram itself after readStall.
func (r *udpReader) takeOver() {
	t := r.turn.Load()
	if !t.state.CompareAndSwap(turnDelivering, turnReplaced) {
		return
	}
	r.l.log.Debug("sip udp: a handler is slow, another goroutine reads on", "listener", r.li.name)
	next := &readTurn{}
	r.turn.Store(next)
	go r.read(next)
}
