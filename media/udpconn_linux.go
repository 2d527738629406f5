package media

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/sbc-project/sbc/media/internal/sockaddr"
)

// udpConn is one plain RTP or RTCP socket of the relay on Linux: a
// non-blocking UDP socket the SBC opens itself, outside the Go runtime's
// netpoller, read by one loop of the poll engine (poll_linux.go) and
// written with sendto from whichever goroutine relays toward it.
//
// Its descriptor is closed only once nobody can use it any more: state
// counts references (the owner's, held until the loop let go of the
// socket, and one per sendto in flight) and has the closing bit. A send
// that finds the bit set sends nothing, so a descriptor number the kernel
// hands out again after close never receives a stale packet.
type udpConn struct {
	fd    int
	port  int
	v6    bool
	state atomic.Int64

	// Set by attach before the loop learns of the socket (under the
	// loop's mutex), read by the loop only.
	r  *reader
	wg *sync.WaitGroup
	// slot is c's index in the loop's table; -1 when not in it. The
	// loop's only.
	slot int32
	// lp is the loop reading the socket; nil before attach. Owner only.
	lp *loop
	// idle: detach let go of the owner's reference; the socket is kept
	// bound for the port pool. Owner only.
	idle bool
}

// closingBit marks a udpConn closed: no new reference is handed out.
const closingBit = 1 << 62

// errClosedConn is what a send on a closed udpConn returns.
var errClosedConn = net.ErrClosed

// sockaddrLen is room for a sockaddr_in6, the larger of the two families.
const sockaddrLen = sockaddr.Len

// listenUDP opens a non-blocking UDP socket bound to ip:port. An IPv6
// socket is IPv6 only, as bindPair's are.
func listenUDP(ip netip.Addr, port int) (*udpConn, error) {
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
	if err := unix.Bind(fd, sa); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("bind %s: %w", netip.AddrPortFrom(ip, uint16(port)), err)
	}
	c := &udpConn{fd: fd, port: port, v6: ip.Is6(), slot: -1}
	c.state.Store(1) // the owner's reference
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

// acquire takes a reference for one use of fd; false once closing.
func (c *udpConn) acquire() bool {
	for {
		v := c.state.Load()
		if v&closingBit != 0 {
			return false
		}
		if c.state.CompareAndSwap(v, v+1) {
			return true
		}
	}
}

// unref drops a reference; the last one after close closes fd.
func (c *udpConn) unref() {
	if c.state.Add(-1) == closingBit {
		unix.Close(c.fd)
	}
}

// writeTo sends pkt to to without blocking: a full socket buffer
// (EAGAIN) is an error like any other, and the caller counts a drop.
// It does not allocate.
func (c *udpConn) writeTo(pkt []byte, to netip.AddrPort) error {
	if len(pkt) == 0 {
		return nil
	}
	var sa [sockaddrLen]byte
	n := c.sockaddr(&sa, to)
	if n == 0 {
		return errFamily
	}
	if !c.acquire() {
		return errClosedConn
	}
	_, _, e := unix.RawSyscall6(unix.SYS_SENDTO, uintptr(c.fd), uintptr(unsafe.Pointer(&pkt[0])), uintptr(len(pkt)),
		unix.MSG_DONTWAIT, uintptr(unsafe.Pointer(&sa[0])), n)
	c.unref()
	if e != 0 {
		return e
	}
	return nil
}

// errFamily: the destination's family is not the socket's.
var errFamily = errors.New("media: destination of another address family")

// sockaddr writes to as the socket's family's sockaddr into sa and returns
// its length, or 0 when to cannot be reached from the socket.
func (c *udpConn) sockaddr(sa *[sockaddrLen]byte, to netip.AddrPort) uintptr {
	return sockaddr.Put(sa, to, c.v6, false)
}

// addrPortOf reads a sockaddr the kernel wrote (recvmmsg's msg_name).
func addrPortOf(sa []byte) (netip.AddrPort, bool) { return sockaddr.AddrPort(sa) }

// attach has r read the socket on one of eng's loops. wg counts the
// socket until the loop has let go of it, after close.
func (c *udpConn) attach(eng *engine, r *reader, wg *sync.WaitGroup) {
	if r.e.sdes != nil {
		r.dec = make([]byte, 0, maxPacket)
	}
	c.r, c.wg = r, wg
	lp := eng.pick(c.port)
	wg.Add(1)
	if !lp.add(c) {
		wg.Done() // the engine is stopped: nothing will be read
		return
	}
	c.lp = lp
}

// close stops reading and sending; the descriptor is closed once the loop
// has let go of it and no send is in flight. Idempotent.
func (c *udpConn) close() {
	for {
		v := c.state.Load()
		if v&closingBit != 0 {
			return
		}
		if c.state.CompareAndSwap(v, v|closingBit) {
			break
		}
	}
	// The loop drops the owner's reference once it no longer reads the
	// socket; without a loop, nothing reads it.
	if c.lp != nil && c.lp.remove(c) {
		return
	}
	c.unref()
}

// detach stops reading the socket, as close does, but keeps it open and
// bound: the loop takes it out of its epoll set and drops the owner's
// reference, and the port pool keeps it for the pair's next call
// (releaseKeeping), which reuse readies. Idempotent.
func (c *udpConn) detach() {
	if c.idle || c.state.Load()&closingBit != 0 {
		return // detached, or closed (close is final)
	}
	c.idle = true
	if c.lp != nil && c.lp.remove(c) {
		return
	}
	c.unref()
}

// drainBatch is how many datagrams one recvmmsg of reuse discards.
const drainBatch = 32

// drainRounds bounds reuse: a socket still full after this many batches
// is being flooded, and a new one is bound instead.
const drainRounds = 64

// reuse readies a socket detach let go of for a new call: it discards
// every datagram that arrived since (its last call's peers may still
// send; the quarantine kept the port from any call meanwhile, and none of
// that may reach the next one) and takes the owner's reference again.
// False when the socket cannot be emptied or is closed: close it with
// closeIdle.
func (c *udpConn) reuse() bool {
	if c.state.Load()&closingBit != 0 {
		return false // closed: its descriptor may be another socket's now
	}
	// No iovec: each datagram is consumed without being copied.
	var msgs [drainBatch]mmsghdr
	for range drainRounds {
		r1, _, e := unix.RawSyscall6(unix.SYS_RECVMMSG, uintptr(c.fd), uintptr(unsafe.Pointer(&msgs[0])), drainBatch,
			unix.MSG_DONTWAIT, 0, 0)
		if e == unix.EAGAIN {
			if !c.acquire() {
				return false
			}
			c.idle, c.lp = false, nil
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
func (c *udpConn) closeIdle() {
	for {
		v := c.state.Load()
		if v&closingBit != 0 {
			return
		}
		if c.state.CompareAndSwap(v, v|closingBit) {
			if v == 0 {
				unix.Close(c.fd)
			}
			return
		}
	}
}

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
		s.conn.r, s.conn.wg = nil, nil
	}
	e.pair.releaseKeeping(e.ip, e.rtp.conn, e.rtcp.conn)
}
