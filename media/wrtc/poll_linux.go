package wrtc

import (
	"net"
	"net/netip"
	"sync"

	"github.com/sbc-project/sbc/media/poll"
)

// A poll engine (media/poll) reads the UDP sockets of every Mux on
// Linux, as it reads media's plain RTP sockets: the Mux's own
// (MuxConfig.Poll: media's, so that one wake-up serves both sides of a
// call), else the process's poller below. A
// goroutine per socket, blocked in a read, costs a wake-up through the
// runtime's netpoller and scheduler for nearly every packet, and with a
// port per call a socket gets one every 20 ms. Here a few loops, one per
// CPU, each own an epoll set holding many sockets; a wake-up's ready
// sockets are read with one io_uring_enter (or recvmmsg each), and each
// datagram handed to its Mux's dispatch on the loop's goroutine.
//
// A loop reads a duplicate of the socket's descriptor, in its set until
// the Mux detaches it (Mux.Close, before the socket closes), so a
// descriptor number the kernel hands out again is never read by mistake.
// The poller's loops start with the first socket attached to them and end
// with the last one detached, so a process without WebRTC media has none.

// pollBatch is how many datagrams one recvmmsg takes from a socket
// without io_uring. A call's own socket gets one every 20 ms; a shared
// port's sockets get thousands a second, and a wake-up that finds them
// late drains more per system call.
const pollBatch = 32

// poller is the process's poll engine, running while muxes are attached.
var poller struct {
	mu       sync.Mutex
	eng      *poll.Engine
	next     int // the loop of the next Mux's first socket
	attached int // sockets attached
}

// attachPoller has a loop read s's socket: a loop of the Mux's engine, or
// of the process's own (started with the first socket). Loop base+n when
// base is set (≥ 0: a Mux's sibling sockets go to the loops after its
// first socket's), else the next in turn. False when that is impossible
// (no descriptor to spare, no epoll set, the engine stopped): the caller
// reads the socket with a goroutine instead.
func attachPoller(s *muxSocket, base, n int) bool {
	fd, err := poll.DupFD(s.conn)
	if err != nil {
		return false
	}
	ps := &poll.Socket{Handler: s}
	ps.FD.Init(fd, false, false) // read only: the family does not matter
	detached := make(chan struct{})
	ps.Done = func() { close(detached) }
	ix := base + n
	var lp *poll.Loop
	if eng := s.m.poll; eng != nil {
		if base < 0 {
			ix = int(s.m.addr.Port()) / 2 // as media spreads its port pairs
		}
		lp = eng.Loop(ix)
	} else {
		lp, ix = sharedLoop(base, n)
	}
	if !lp.Add(ps) {
		ps.FD.Close()
		if s.m.poll == nil {
			releaseLoop()
		}
		return false
	}
	s.ps, s.loopIx, s.detached = ps, ix, detached
	return true
}

// sharedLoop returns a loop of the process's engine (see attachPoller),
// starting it if needed, and its index; give it back with releaseLoop.
func sharedLoop(base, n int) (*poll.Loop, int) {
	poller.mu.Lock()
	defer poller.mu.Unlock()
	if poller.eng == nil {
		poller.eng = poll.NewEngine(poll.Config{BufSize: maxPacket, ReadBatch: pollBatch, Clock: poll.Monotonic})
	}
	ix := base + n
	if base < 0 {
		poller.next++
		ix = poller.next
	}
	poller.attached++
	return poller.eng.Loop(ix), ix
}

// detachPoller takes s's socket out of its loop and returns once the loop
// cannot read it any more (its duplicate descriptor is then closed).
func detachPoller(s *muxSocket) {
	s.ps.Close()
	<-s.detached
	if s.m.poll == nil {
		releaseLoop()
	}
}

// releaseLoop counts a socket detached; the last one ends the loops, and
// returns once they have.
func releaseLoop() {
	poller.mu.Lock()
	defer poller.mu.Unlock()
	if poller.attached--; poller.attached > 0 {
		return
	}
	poller.eng.Stop()
	poller.eng = nil
}

// Datagram hands one datagram a loop read from the socket to the Mux.
func (s *muxSocket) Datagram(pkt []byte, from netip.AddrPort, _ int64, b *poll.Batch) {
	s.got.Add(1)
	s.m.dispatch(pkt, from, b)
}

// pollSocket is a socket of the poller.
type pollSocket = poll.Socket

// leaveNetpoller closes s's Go socket once a poll loop reads s through a
// descriptor of its own (and, for the Mux's first socket, tx sends through
// its own): the socket stays open on those. A Go socket sits in the
// runtime's netpoller, edge-triggered for reads and writes, so each
// datagram the socket received or sent woke the netpoller for an event
// nobody waits on (measured: the runtime's netpoll and scheduler were
// 9 % of the SBC's CPU at 500 WebRTC calls).
func (m *Mux) leaveNetpoller(s *muxSocket, first bool) {
	if s.ps == nil {
		return // read by the goroutine read, on the Go socket
	}
	if first {
		if !m.tx.fd.Acquire() {
			return // no raw descriptor to send with: tx needs the Go socket
		}
		m.tx.fd.Unref()
		m.tx.goOff = true
	}
	_ = s.conn.Close()
}

// control runs f on the descriptor of the Mux's first socket: tx's own
// once the Go socket is closed, else the Go socket's.
func (m *Mux) control(f func(fd uintptr)) error {
	if !m.tx.goOff {
		rc, err := m.conn.SyscallConn()
		if err != nil {
			return err
		}
		return rc.Control(f)
	}
	if !m.tx.fd.Acquire() {
		return net.ErrClosed
	}
	defer m.tx.fd.Unref()
	f(uintptr(m.tx.fd.Sysfd()))
	return nil
}

// Touch reads ahead what dispatch and the demux will read for a datagram
// pkt from from (poll.Toucher): the route set, the routed transport's
// receive state and its route's Sink. Nothing else reads the routes
// without a lock, and the demux's touch only loads.
func (s *muxSocket) Touch(pkt []byte, from netip.AddrPort) uintptr {
	from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
	t := s.m.routes.Load().lookup(from)
	if t == nil {
		return 0
	}
	return t.d.touch(pkt)
}

// touch loads the line of the Mux's sending descriptor (Transport.TouchSend).
func (x *txSocket) touch() uintptr {
	if x.fd.Closed() {
		return 1
	}
	return 0
}
