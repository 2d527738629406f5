package media

import (
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/sbc-project/sbc/media/poll"
)

// udpConn is one plain RTP or RTCP socket of the relay on Linux: a
// non-blocking UDP socket the SBC opens itself, outside the Go runtime's
// netpoller, read by one loop of the poll engine (poll_linux.go) and
// written with sendto (or the loop's io_uring batch) from whichever
// goroutine relays toward it. Its descriptor is a poll.FD: closed only
// once no loop reads it and no send is in flight.
//
// A socket joins its loop's epoll set at its first call and stays there
// until it is closed, through its calls and the port pool's quarantine
// between them: the loop hands every datagram to the socket itself
// (Datagram), which passes it to the reader of its call, or drops it
// while the socket is parked. Two epoll_ctl and a round trip through the
// loop per socket and call were 5 % of the SBC's CPU per call
// (BENCHMARKS.md, issue 15 eighth step).
type udpConn struct {
	s    poll.Socket
	port int
	// cur is the reader of the socket's call; nil while parked (no call:
	// in the pool, or stopped). Set by the owner, read by the loop.
	cur atomic.Pointer[reader]
	lp  *poll.Loop // the loop reading the socket; nil before its first call. Owner's.
}

// errFamily: the destination's family is not the socket's.
var errFamily = poll.ErrFamily

// listenUDP opens a non-blocking UDP socket bound to ip:port. An IPv6
// socket is IPv6 only, as bindPair's are.
func listenUDP(ip netip.Addr, port int) (*udpConn, error) { return listenUDPWith(ip, port, nil) }

// listenUDPWith is listenUDP with opt (nil: none) run on the socket
// before bind.
func listenUDPWith(ip netip.Addr, port int, opt func(fd int) error) (*udpConn, error) {
	family := unix.AF_INET
	if ip.Is6() {
		family = unix.AF_INET6
	}
	fd, err := unix.Socket(family, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_UDP)
	if err != nil {
		return nil, fmt.Errorf("udp socket: %w", err)
	}
	var sa unix.Sockaddr
	if ip.Is6() {
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 1); err != nil {
			unix.Close(fd)
			return nil, fmt.Errorf("udp socket: ipv6 only: %w", err)
		}
		sa = &unix.SockaddrInet6{Port: port, Addr: ip.As16()}
	} else {
		sa = &unix.SockaddrInet4{Port: port, Addr: ip.As4()}
	}
	if opt != nil {
		if err := opt(fd); err != nil {
			unix.Close(fd)
			return nil, fmt.Errorf("udp socket: %w", err)
		}
	}
	if err := unix.Bind(fd, sa); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("bind %s: %w", netip.AddrPortFrom(ip, uint16(port)), err)
	}
	c := &udpConn{port: port}
	c.s.FD.Init(fd, ip.Is6(), false)
	return c, nil
}

// openPair takes a port pair from pool with its RTP and RTCP sockets on
// ip: those the pair kept from its last call (portPool.takeKept), else
// new ones.
func openPair(pool *portPool, ip netip.Addr) (*pair, *udpConn, *udpConn, error) {
	return pool.takeKept(ip, func(port int) (rtp, rtcp *udpConn, err error) {
		if rtp, err = listenUDP(ip, port); err != nil {
			return nil, nil, fmt.Errorf("rtp port: %w", err)
		}
		if rtcp, err = listenUDP(ip, port+1); err != nil {
			rtp.close()
			return nil, nil, fmt.Errorf("rtcp port: %w", err)
		}
		return rtp, rtcp, nil
	})
}

// writeTo sends pkt to to without blocking: a full socket buffer
// (EAGAIN) is an error like any other, and the caller counts a drop.
// It does not allocate.
func (c *udpConn) writeTo(pkt []byte, to netip.AddrPort) error { return c.s.FD.SendTo(pkt, to) }

// queue sends pkt to to through b, counted in o (see poll.Batch.Queue),
// or at once when b is nil.
func (c *udpConn) queue(b *sendBatch, pkt []byte, to netip.AddrPort, o out) bool {
	if b == nil {
		return c.writeTo(pkt, to) == nil
	}
	tag := tagRTP
	if o.rtcp {
		tag = tagRTCP
	}
	return b.Queue(&c.s.FD, pkt, to, o.ctr, tag)
}

// attach has r read the socket on one of eng's loops, from now on: a
// datagram the loop read before (an earlier call's, read while parked)
// never reaches r.
func (c *udpConn) attach(eng *engine, r *reader, _ *sync.WaitGroup) {
	if r.e.sdes != nil {
		r.dec = newDecryption()
	}
	lp := eng.pick(c.port)
	if r.e.sdes == nil {
		// An SDES reader decrypts into a buffer of its own, which the
		// next packet reuses: its flow sends at once.
		r.out = lp.Batch()
	}
	r.since = monotonic()
	c.cur.Store(r)
	if c.lp == nil {
		c.s.Handler = c
		if lp.Add(&c.s) { // false: the engine is stopped, nothing is read
			c.lp = lp
		}
	}
}

// Datagram is how the socket's loop hands it a datagram: to its call's
// reader, which already holds the loop's batch (attach). A datagram read
// while parked is dropped, and so is one stamped no later than the
// reader's start: the loop read it before the call took the socket.
func (c *udpConn) Datagram(pkt []byte, from netip.AddrPort, now int64, _ *poll.Batch) {
	r := c.cur.Load()
	if r == nil || now <= r.since {
		return
	}
	r.forwardAt(pkt[:min(len(pkt), maxPacket)], from, now)
}

// close stops reading and sending; the descriptor is closed once the loop
// has let go of it and no send is in flight. Idempotent.
func (c *udpConn) close() { c.s.Close() }

// park stops handing the socket's datagrams to its reader; the loop goes
// on reading and drops them. Once quiesce returned too, no datagram goes
// to the old reader any more.
func (c *udpConn) park() { c.cur.Store(nil) }

// quiesce waits until the socket's loop is done with the datagrams it
// was handling (poll.Loop.Quiesce): after park, none reaches the old
// reader, and its sends are flushed.
func (c *udpConn) quiesce() {
	if c.lp != nil {
		c.lp.Quiesce()
	}
}

// drainBatch is how many datagrams one recvmmsg of reuse discards.
const drainBatch = 32

// drainRounds bounds reuse: a socket still full after this many batches
// is being flooded, and a new one is bound instead.
const drainRounds = 64

// drainHdr is one entry of reuse's recvmmsg: no name, no iovec, so each
// datagram is consumed without being copied.
type drainHdr struct {
	hdr unix.Msghdr
	n   uint32
	_   [4]byte
}

// reuse readies a parked socket for a new call: it discards every
// datagram waiting in it (its last call's peers may still send; the
// quarantine kept the port from any call meanwhile, and none of that may
// reach the next one), concurrently with its loop, which drops what it
// reads (Datagram). False when the socket is closed or cannot be emptied
// (flooded): close it.
func (c *udpConn) reuse() bool {
	if !c.s.FD.Acquire() {
		return false
	}
	defer c.s.FD.Unref()
	fd := c.s.FD.Sysfd()
	var msgs [drainBatch]drainHdr
	for range drainRounds {
		r1, _, e := unix.RawSyscall6(unix.SYS_RECVMMSG, uintptr(fd), uintptr(unsafe.Pointer(&msgs[0])), drainBatch,
			unix.MSG_DONTWAIT, 0, 0)
		if e == unix.EAGAIN {
			return true
		}
		if e == 0 && r1 == 0 {
			return false
		}
		// e set: an error about one datagram (an ICMP error queued by a
		// send to a closed port); it is consumed, go on.
	}
	return false
}

// close stops handing the endpoint's datagrams to its readers; the
// sockets stay bound, and in their loop, for the port pool.
func (e *rtpEndpoint) close() {
	e.rtp.conn.park()
	e.rtcp.conn.park()
	e.rtp.conn.quiesce()
	e.rtcp.conn.quiesce()
}

// release gives the pair back with its sockets, after close. Nothing of
// the call stays with them: a flow that still holds the endpoint (a
// digit being played) finds no address to send to.
func (e *rtpEndpoint) release() {
	gone := &peer{hold: true}
	for _, s := range [2]*sock{e.rtp, e.rtcp} {
		s.dst.Store(gone)
	}
	e.pair.releaseKeeping(e.ip, e.rtp.conn, e.rtcp.conn)
}
