package media

import (
	"net"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// conns returns the four plain sockets of a call's first stream.
func conns(c *call) []*udpConn {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	var out []*udpConn
	for _, e := range c.s.streams[0].ends {
		re := e.(*rtpEndpoint)
		out = append(out, re.rtp.conn, re.rtcp.conn)
	}
	return out
}

// checkClosed fails unless every conn's descriptor is closed: closing,
// and no reference left (udpConn.unref closed it).
func checkClosed(t *testing.T, cs []*udpConn) {
	t.Helper()
	for _, c := range cs {
		if !c.s.FD.Closed() {
			t.Fatalf("socket on port %d: not closed, or a reference left", c.port)
		}
	}
}

// checkIdle fails unless every conn is kept open for the port pool,
// parked: read by no call (udpConn.park), not closed.
func checkIdle(t *testing.T, cs []*udpConn) {
	t.Helper()
	for _, c := range cs {
		if c.cur.Load() != nil || c.s.FD.Closed() {
			t.Fatalf("socket on port %d: parked %v, closed %v; want parked and open", c.port, c.cur.Load() == nil, c.s.FD.Closed())
		}
	}
}

// loopConns counts the sockets in the tables of m's loops, each after a
// round trip through the loop (which orders its table writes before the
// count).
func loopConns(t *testing.T, m *Manager) int {
	t.Helper()
	n := m.eng.n
	if n <= 0 {
		n = runtime.GOMAXPROCS(0)
	}
	total := 0
	for i := range n {
		total += m.eng.get().Loop(i).Sockets()
	}
	return total
}

func TestPollManySocketsOnOneLoop(t *testing.T) {
	const calls = 25
	m := newTestManager(t, 2*calls+16, netip.Addr{}, nil) // slack: a peer may hold a port of the range
	m.eng.n = 1
	var cs []*call
	for range calls {
		cs = append(cs, setupCall(t, m))
	}
	if m.eng.get().Loop(0) != m.eng.get().Loop(1) {
		t.Fatal("more than one loop, want 1")
	}
	if n := loopConns(t, m); n != 4*calls {
		t.Fatalf("%d sockets on the loop, want %d", n, 4*calls)
	}
	// Every socket gets a packet at once; the loop serves them all.
	for i, c := range cs {
		send(t, c.a.rtp, rtpPacket(uint16(i)), c.portA)
		send(t, c.b.rtp, rtpPacket(uint16(i)), c.portB)
		send(t, c.a.rtcp, rtcpPacket(), c.portA+1)
	}
	for _, c := range cs {
		recv(t, c.b.rtp)
		recv(t, c.a.rtp)
		recv(t, c.b.rtcp)
	}
	waitFor(t, "relayed counters", func() bool { r := m.Relayed(); return r.RTP == 2*calls && r.RTCP == calls })
	var closed []*udpConn
	for _, c := range cs {
		closed = append(closed, conns(c)...)
		c.s.Close()
	}
	checkIdle(t, closed)
	// Parked, they stay in the loop's epoll set for their next call.
	if n := loopConns(t, m); n != 4*calls {
		t.Fatalf("%d sockets on the loop after every call closed, want the %d parked ones", n, 4*calls)
	}
	if r := m.Relayed(); r.RTP != 2*calls || r.RTCP != calls {
		t.Fatalf("Relayed after the calls closed = %+v, want %d RTP and %d RTCP", r, 2*calls, calls)
	}
	// The sockets the pool kept close with the manager.
	m.Close()
	checkClosed(t, closed)
	if n := loopConns(t, m); n != 0 {
		t.Fatalf("%d sockets left on the loop after the manager closed", n)
	}
}

// TestPollChurnWhileFlowing sets up and tears down calls on the loops
// while another call's packets keep flowing through them.
func TestPollChurnWhileFlowing(t *testing.T) {
	m := newTestManager(t, 8, netip.Addr{}, nil)
	m.eng.n = 1
	steady := setupCall(t, m)
	var stop atomic.Bool
	var sent atomic.Uint64
	var senders sync.WaitGroup
	senders.Go(func() {
		for seq := uint16(0); !stop.Load() && seq < 60000; seq++ {
			if _, err := steady.a.rtp.WriteToUDPAddrPort(rtpPacket(seq), netip.AddrPortFrom(loopback, uint16(steady.portA))); err == nil {
				sent.Add(1)
			}
			if seq%64 == 0 {
				// Let the loop keep up: no drop in the socket buffer.
				waitForQuiet(steady.s, sent.Load())
			}
		}
	})
	go drain(steady.b.rtp)
	for i := range 30 {
		c := setupCall(t, m)
		send(t, c.a.rtp, rtpPacket(uint16(i)), c.portA)
		recv(t, c.b.rtp)
		cs := conns(c)
		c.s.Close()
		checkIdle(t, cs)
	}
	stop.Store(true)
	senders.Wait()
	waitFor(t, "the steady call's packets", func() bool { return steady.s.Stats().AtoB.Packets == sent.Load() })
	if got := m.pool.inUse(); got != 2 {
		t.Fatalf("%d pairs in use, want the steady call's 2", got)
	}
}

// waitForQuiet waits, bounded by a second, until s relayed n packets A→B.
func waitForQuiet(s *Session, n uint64) {
	for range 1000 {
		if s.Stats().AtoB.Packets >= n {
			return
		}
		time.Sleep(time.Millisecond)
	}
}

// TestPollCloseWhileSending closes a call while both sides blast packets
// at it: once Close returns, nothing more is counted, and every socket is
// let go by the loop, kept for the port pool.
func TestPollCloseWhileSending(t *testing.T) {
	m := newTestManager(t, 4, netip.Addr{}, nil)
	c := setupCall(t, m)
	cs := conns(c)
	var stop atomic.Bool
	var wg sync.WaitGroup
	blast := func(p *udpPeer, port int) {
		for seq := uint16(0); !stop.Load() && seq < 60000; seq++ {
			_, _ = p.rtp.WriteToUDPAddrPort(rtpPacket(seq), netip.AddrPortFrom(loopback, uint16(port)))
			_, _ = p.rtcp.WriteToUDPAddrPort(rtcpPacket(), netip.AddrPortFrom(loopback, uint16(port+1)))
		}
	}
	wg.Go(func() { blast(c.a, c.portA) })
	wg.Go(func() { blast(c.b, c.portB) })
	go drain(c.a.rtp)
	go drain(c.b.rtp)
	waitFor(t, "packets both ways", func() bool { st := c.s.Stats(); return st.AtoB.Packets > 10 && st.BtoA.Packets > 10 })
	c.s.Close()
	final := c.s.Stats()
	checkIdle(t, cs)
	// The blast goes on toward the closed ports for a while.
	before := m.Relayed()
	for range 200 {
		send(t, c.a.rtp, rtpPacket(1), c.portA)
	}
	stop.Store(true)
	wg.Wait()
	if got := c.s.Stats(); got != final {
		t.Fatalf("Stats changed after Close:\n%+v\n%+v", final, got)
	}
	if got := m.Relayed(); got != before {
		t.Fatalf("Relayed changed after Close: %+v, then %+v", before, got)
	}
}

// TestPollFailedSendIsDropped: a send that fails (here toward a socket
// already closed; on a full socket buffer sendto fails the same way, with
// EAGAIN, never blocking) is counted as a drop, and the loop goes on
// serving its other sockets.
func TestPollFailedSendIsDropped(t *testing.T) {
	m := newTestManager(t, 4, netip.Addr{}, nil)
	m.eng.n = 1
	c, other := setupCall(t, m), setupCall(t, m)
	c.s.mu.Lock()
	toB := c.s.streams[0].ends[SideB].(*rtpEndpoint)
	c.s.mu.Unlock()
	toB.rtp.conn.close()
	const n = 20
	for i := range n {
		send(t, c.a.rtp, rtpPacket(uint16(i)), c.portA)
	}
	waitFor(t, "drops counted", func() bool { return c.s.Stats().AtoB.Dropped == n })
	if got := c.s.Stats().AtoB.Packets; got != 0 {
		t.Fatalf("%d packets counted as relayed through a closed socket", got)
	}
	send(t, other.a.rtp, rtpPacket(1), other.portA)
	recv(t, other.b.rtp)
}

// TestPollStopLetsGo: a socket still attached when the engine stops is let
// go by its loop (its WaitGroup is done) and closed by its owner.
func TestPollStopLetsGo(t *testing.T) {
	eng := &engine{n: 1}
	c, err := listenUDP(loopback, 0)
	if err != nil {
		t.Fatalf("listenUDP: %v", err)
	}
	var wg sync.WaitGroup
	c.attach(eng, &reader{e: &rtpEndpoint{}}, &wg)
	eng.stop()
	wg.Wait()
	c.close()
	checkClosed(t, []*udpConn{c})
	// A socket attached after stop is never read, and still closes.
	c2, err := listenUDP(loopback, 0)
	if err != nil {
		t.Fatalf("listenUDP: %v", err)
	}
	c2.attach(eng, &reader{e: &rtpEndpoint{}}, &wg)
	wg.Wait()
	c2.close()
	checkClosed(t, []*udpConn{c2})
}

// TestPollDrainsBacklog: datagrams a socket still holds after the loop
// read it are served although nothing more arrives. The set signals no
// new readiness for them, so a loop that waits after such a read would
// leave them there until the socket's next packet. Both ways of reading:
// recvmmsg (pollBatch at a time) and the io_uring batch (one at a time).
func TestPollDrainsBacklog(t *testing.T) {
	for _, batch := range []bool{false, true} {
		t.Run(map[bool]string{false: "recvmmsg", true: "batch"}[batch], func(t *testing.T) {
			m := newTestManager(t, 4, netip.Addr{}, nil)
			m.eng.n, m.eng.noBatch = 1, !batch
			c := setupCall(t, m)
			send(t, c.a.rtp, rtpPacket(0), c.portA)
			recv(t, c.b.rtp)
			if batch && !m.eng.get().Loop(0).Batched() {
				t.Skip("no io_uring on this kernel")
			}
			c.s.mu.Lock()
			f := c.s.streams[0].flows[SideA]
			in := c.s.streams[0].ends[SideA].(*rtpEndpoint).rtp.conn
			c.s.mu.Unlock()

			// Hold the loop inside the flow of one packet, and queue a
			// backlog of several batches behind it.
			f.mu.Lock()
			send(t, c.a.rtp, rtpPacket(1), c.portA)
			waitFor(t, "the loop to hold the packet", func() bool { return f.c.received.Load() == 2 })
			const backlog = 3*pollBatch + 1
			one := queuedBytesOfOne(t, rtpPacket(2))
			for i := range backlog {
				send(t, c.a.rtp, rtpPacket(uint16(2+i)), c.portA)
			}
			waitFor(t, "the backlog queued", func() bool { return rmemAlloc(t, in.s.FD.Sysfd()) >= backlog*one })
			f.mu.Unlock()

			for range backlog + 1 {
				recv(t, c.b.rtp)
			}
			// Counted once sent: the count may trail the last arrival.
			waitFor(t, "every packet counted", func() bool { return c.s.Stats().AtoB.Packets == backlog+2 })
		})
	}
}

// rmemAlloc returns the bytes a socket's receive queue holds (its
// SK_MEMINFO_RMEM_ALLOC).
func rmemAlloc(t *testing.T, fd int) int {
	t.Helper()
	var info [unix.SK_MEMINFO_VARS]uint32
	n := uint32(unsafe.Sizeof(info))
	_, _, e := unix.RawSyscall6(unix.SYS_GETSOCKOPT, uintptr(fd), unix.SOL_SOCKET, unix.SO_MEMINFO,
		uintptr(unsafe.Pointer(&info[0])), uintptr(unsafe.Pointer(&n)), 0)
	if e != 0 {
		t.Fatalf("getsockopt SO_MEMINFO: %v", e)
	}
	return int(info[unix.SK_MEMINFO_RMEM_ALLOC])
}

// queuedBytesOfOne returns what one datagram pkt, sent over loopback,
// takes in a receiving socket's queue.
func queuedBytesOfOne(t *testing.T, pkt []byte) int {
	t.Helper()
	rx, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	defer rx.Close()
	tx, err := net.DialUDP("udp4", nil, rx.LocalAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer tx.Close()
	if _, err := tx.Write(pkt); err != nil {
		t.Fatalf("write: %v", err)
	}
	raw, err := rx.SyscallConn()
	if err != nil {
		t.Fatalf("raw conn: %v", err)
	}
	n := 0
	waitFor(t, "one datagram queued", func() bool {
		_ = raw.Control(func(fd uintptr) { n = rmemAlloc(t, int(fd)) })
		return n > 0
	})
	return n
}

// TestPollSendErrorIsDropped: a send the kernel refuses (toward a
// broadcast address from a socket without SO_BROADCAST: EACCES) counts as
// a drop, not as relayed, whether the loop sends each packet at once or
// queues it in its io_uring batch, whose failures come back only with
// the completions.
func TestPollSendErrorIsDropped(t *testing.T) {
	for _, batch := range []bool{false, true} {
		t.Run(map[bool]string{false: "sendto", true: "batch"}[batch], func(t *testing.T) {
			m := newTestManager(t, 4, netip.Addr{}, nil)
			m.eng.n, m.eng.noBatch = 1, !batch
			a := newPeer(t, false)
			s := m.NewSession("call-broadcast")
			t.Cleanup(s.Close)
			if _, err := s.Offer(SideA, a.sdp()); err != nil {
				t.Fatalf("Offer: %v", err)
			}
			toA, err := s.Answer(SideB, sipSDP("255.255.255.255", 40000))
			if err != nil {
				t.Fatalf("Answer: %v", err)
			}
			if got := m.eng.get().Loop(0).Batched(); got != batch {
				if batch {
					t.Skip("no io_uring on this kernel: the loop sends with sendto")
				}
				t.Fatalf("loop has a send batch: %v, want %v", got, batch)
			}
			const n = 20
			for i := range n {
				send(t, a.rtp, rtpPacket(uint16(i)), mPort(t, toA, 0))
			}
			waitFor(t, "drops counted", func() bool { return s.Stats().AtoB.Dropped == n })
			if st := s.Stats().AtoB; st.Packets != 0 || st.Bytes != 0 {
				t.Fatalf("%d packets (%d bytes) counted as relayed toward a broadcast address", st.Packets, st.Bytes)
			}
		})
	}
}

// A media UDP socket fits the 96-byte size class (104, in the 112 class,
// with its poll.Socket's slot and full flag apart): a call has four.
func TestUDPConnSizeClass(t *testing.T) {
	if got := unsafe.Sizeof(udpConn{}); got > 96 {
		t.Fatalf("a udpConn is %d bytes, more than the 96-byte size class", got)
	}
}
