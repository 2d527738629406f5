package media

import (
	"fmt"
	"net/netip"
	"sync"
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
type udpConn struct {
	s    poll.Socket
	port int
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

// attach has r read the socket on one of eng's loops. wg counts the
// socket until the loop has let go of it, after close.
func (c *udpConn) attach(eng *engine, r *reader, wg *sync.WaitGroup) {
	if r.e.sdes != nil {
		r.dec = make([]byte, 0, maxPacket)
	}
	lp := eng.pick(c.port)
	if r.e.sdes == nil {
		// An SDES reader decrypts into a buffer of its own, which the
		// next packet reuses: its flow sends at once.
		r.out = lp.Batch()
	}
	c.s.Handler, c.s.Done = r, wg.Done
	wg.Add(1)
	if !lp.Add(&c.s) {
		wg.Done() // the engine is stopped: nothing will be read
	}
}

// Datagram is how the socket's loop hands the reader a datagram: the
// reader already holds the loop's batch (attach).
func (r *reader) Datagram(pkt []byte, from netip.AddrPort, now int64, _ *poll.Batch) {
	r.forwardAt(pkt[:min(len(pkt), maxPacket)], from, now)
}

// close stops reading and sending; the descriptor is closed once the loop
// has let go of it and no send is in flight. Idempotent.
func (c *udpConn) close() { c.s.Close() }

// detach stops reading the socket, as close does, but keeps it open and
// bound: the loop takes it out of its epoll set and drops the owner's
// reference, and the port pool keeps it for the pair's next call
// (releaseKeeping), which reuse readies. Idempotent.
func (c *udpConn) detach() { c.s.Detach() }

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

// reuse readies a socket detach let go of for a new call: it discards
// every datagram that arrived since (its last call's peers may still
// send; the quarantine kept the port from any call meanwhile, and none of
// that may reach the next one) and takes the owner's reference again.
// False when the socket cannot be emptied, is closed, or the loop has not
// let go of it yet: close it with closeIdle.
func (c *udpConn) reuse() bool {
	if !c.s.FD.Detached() {
		return false
	}
	fd := c.s.FD.Sysfd()
	var msgs [drainBatch]drainHdr
	for range drainRounds {
		r1, _, e := unix.RawSyscall6(unix.SYS_RECVMMSG, uintptr(fd), uintptr(unsafe.Pointer(&msgs[0])), drainBatch,
			unix.MSG_DONTWAIT, 0, 0)
		if e == unix.EAGAIN {
			if !c.s.FD.Reown() {
				return false
			}
			c.s.Handler, c.s.Done = nil, nil
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

// closeIdle closes a socket detach let go of (and reuse did not take
// back): at once, or when the last send in flight ends. Idempotent, and
// a no-op on a socket close closed.
func (c *udpConn) closeIdle() { c.s.FD.CloseIdle() }

// close stops reading the endpoint's sockets, which stay bound for the
// port pool (detach).
func (e *rtpEndpoint) close() {
	e.rtp.conn.detach()
	e.rtcp.conn.detach()
}

// release gives the pair back with its sockets, after close and the end
// of their readers. Nothing of the call stays with them: a flow that
// still holds the endpoint (a digit being played) finds no address to
// send to, and the sockets forget the call's readers.
func (e *rtpEndpoint) release() {
	gone := &peer{hold: true}
	for _, s := range [2]*sock{e.rtp, e.rtcp} {
		s.dst.Store(gone)
		s.conn.s.Handler, s.conn.s.Done = nil, nil
	}
	e.pair.releaseKeeping(e.ip, e.rtp.conn, e.rtcp.conn)
}
