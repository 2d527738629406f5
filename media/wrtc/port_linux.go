package wrtc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/sbc-project/sbc/media/internal/sockaddr"
)

// listenSiblings binds n more UDP sockets to conn's address with
// SO_REUSEPORT, set on conn too: the kernel then spreads the port's
// datagrams over the group by a hash of their source and destination, so
// one source always reaches the same socket, and each socket has a receive
// buffer and a reader of its own. Every socket of the group sends from the
// same local address.
func listenSiblings(conn *net.UDPConn, n int) ([]*net.UDPConn, error) {
	rc, err := conn.SyscallConn()
	if err != nil {
		return nil, err
	}
	v6only := -1 // an IPv6 socket's IPV6_V6ONLY, which the group's sockets must share
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
		if v, err := unix.GetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_V6ONLY); err == nil {
			v6only = v
		}
	}); err != nil {
		return nil, err
	}
	if serr != nil {
		return nil, fmt.Errorf("reuseport: %w", serr)
	}
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var err error
		if cerr := c.Control(func(fd uintptr) {
			err = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
			if err == nil && v6only >= 0 {
				err = unix.SetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, v6only)
			}
		}); cerr != nil {
			return cerr
		}
		return err
	}}
	addr := conn.LocalAddr().String()
	var out []*net.UDPConn
	for range n {
		pc, err := lc.ListenPacket(context.Background(), "udp", addr)
		if err != nil {
			for _, c := range out {
				c.Close()
			}
			return nil, fmt.Errorf("bind %s again: %w", addr, err)
		}
		out = append(out, pc.(*net.UDPConn))
	}
	return out, nil
}

// setSharedReadBuffer asks bytes of receive buffer for a socket of a
// shared port: beyond net.core.rmem_max when the process may
// (SO_RCVBUFFORCE, CAP_NET_ADMIN), else up to it.
func setSharedReadBuffer(conn *net.UDPConn, bytes int) {
	rc, err := conn.SyscallConn()
	if err == nil {
		var serr error
		err = rc.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, bytes)
		})
		if err == nil && serr == nil {
			return
		}
	}
	_ = conn.SetReadBuffer(bytes)
}

// txSocket sends the Mux's datagrams with a raw, non-blocking sendto on a
// duplicate of the first socket's descriptor: Go's UDP write (its fd lock,
// the netpoller's write preparation, the scheduler's system-call
// bookkeeping) was measured at about 5 % of the SBC's user CPU. A send
// that would block, and every send once the descriptor is gone, goes
// through conn instead.
//
// The duplicate is closed only once nobody can use it: state counts
// references (the owner's, dropped by close, and one per sendto in flight)
// and has the closing bit, so a descriptor number the kernel hands out again
// never gets a stray packet.
type txSocket struct {
	conn  *net.UDPConn
	fd    int
	v6    bool // an AF_INET6 socket (IPv4 destinations go v4-mapped)
	state atomic.Int64
}

// closingBit marks a txSocket closed.
const closingBit = 1 << 62

// init sets x up on conn; without a duplicate descriptor x sends through
// conn alone.
func (x *txSocket) init(conn *net.UDPConn) {
	x.conn, x.fd = conn, -1
	fd, err := dupFD(conn)
	if err != nil {
		return
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		unix.Close(fd)
		return
	}
	_, x.v6 = sa.(*unix.SockaddrInet6)
	x.fd = fd
	x.state.Store(1)
}

// send sends pkt to to. It does not allocate.
func (x *txSocket) send(pkt []byte, to netip.AddrPort) error {
	if x.fd >= 0 && len(pkt) > 0 && x.acquire() {
		var sa [sockaddrLen]byte
		n := x.sockaddr(&sa, to)
		var e syscall.Errno
		if n > 0 {
			_, _, e = unix.RawSyscall6(unix.SYS_SENDTO, uintptr(x.fd), uintptr(unsafe.Pointer(&pkt[0])), uintptr(len(pkt)),
				unix.MSG_DONTWAIT, uintptr(unsafe.Pointer(&sa[0])), n)
		}
		x.unref()
		switch {
		case n > 0 && e == 0:
			return nil
		case n > 0 && !errors.Is(e, unix.EAGAIN):
			return e
		}
		// A full send buffer, or a destination of the other family: Go's
		// write waits for room, or reports the error.
	}
	_, err := x.conn.WriteToUDPAddrPort(pkt, to)
	return err
}

// acquire takes a reference for one sendto; false once closing.
func (x *txSocket) acquire() bool {
	for {
		v := x.state.Load()
		if v&closingBit != 0 || v == 0 {
			return false
		}
		if x.state.CompareAndSwap(v, v+1) {
			return true
		}
	}
}

// unref drops a reference; the last one after close closes the duplicate.
func (x *txSocket) unref() {
	if x.state.Add(-1) == closingBit {
		unix.Close(x.fd)
	}
}

// close stops the raw sends; idempotent.
func (x *txSocket) close() {
	for {
		v := x.state.Load()
		if v&closingBit != 0 || v == 0 {
			return
		}
		if x.state.CompareAndSwap(v, v|closingBit) {
			break
		}
	}
	x.unref()
}

// sockaddr writes to as the socket's family's sockaddr into sa and returns
// its length, or 0 when to cannot be reached from the socket (an IPv4
// address toward an IPv6 socket goes v4-mapped: the dual-stack form).
func (x *txSocket) sockaddr(sa *[sockaddrLen]byte, to netip.AddrPort) uintptr {
	return sockaddr.Put(sa, to, x.v6, true)
}
