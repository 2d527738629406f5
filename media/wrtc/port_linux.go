package wrtc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/sbc-project/sbc/media/poll"
)

// listenSiblings binds n more UDP sockets to addr, the address of the
// socket whose descriptor ctl runs on, with SO_REUSEPORT, set on that
// socket too: the kernel then spreads the port's datagrams over the group
// by a hash of their source and destination, so one source always reaches
// the same socket, and each socket has a receive buffer and a reader of
// its own. Every socket of the group sends from the same local address.
func listenSiblings(ctl func(func(fd uintptr)) error, addr string, n int) ([]*net.UDPConn, error) {
	v6only := -1 // an IPv6 socket's IPV6_V6ONLY, which the group's sockets must share
	var serr error
	if err := ctl(func(fd uintptr) {
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
// shared port (see poll.SetReadBuffer).
func setSharedReadBuffer(conn *net.UDPConn, bytes int) { poll.SetReadBuffer(conn, bytes) }

// setReadBufferFD is setSharedReadBuffer on a raw descriptor.
func setReadBufferFD(fd uintptr, bytes int) { poll.SetReadBufferFD(int(fd), bytes) }

// txSocket sends the Mux's datagrams with a raw, non-blocking sendto on a
// duplicate of the first socket's descriptor: Go's UDP write (its fd lock,
// the netpoller's write preparation, the scheduler's system-call
// bookkeeping) was measured at about 5 % of the SBC's user CPU. While
// conn is open, a send that would block, and every send once the
// descriptor is gone, goes through conn instead; once the Mux closed conn
// (goOff, see leaveNetpoller) such a send fails, as a queued one does. The
// duplicate is a poll.FD: closed only once no send is in flight.
type txSocket struct {
	conn  *net.UDPConn
	fd    poll.FD // zero (closed): every send goes through conn
	goOff bool    // conn is closed; set before the Mux is used
}

// init sets x up on conn; without a duplicate descriptor x sends through
// conn alone.
func (x *txSocket) init(conn *net.UDPConn) {
	x.conn = conn
	fd, err := poll.DupFD(conn)
	if err != nil {
		return
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		unix.Close(fd)
		return
	}
	_, v6 := sa.(*unix.SockaddrInet6)
	x.fd.Init(fd, v6, true) // an IPv4 address toward an IPv6 socket goes v4-mapped
}

// send sends pkt to to. It does not allocate.
func (x *txSocket) send(pkt []byte, to netip.AddrPort) error {
	if x.goOff {
		return x.fd.SendTo(pkt, to)
	}
	if len(pkt) > 0 {
		err := x.fd.SendTo(pkt, to)
		if err == nil {
			return nil
		}
		if !errors.Is(err, unix.EAGAIN) && err != poll.ErrClosed && err != poll.ErrFamily {
			return err
		}
		// A full send buffer, a destination of the other family, or no
		// duplicate: Go's write waits for room, or reports the error.
	}
	_, err := x.conn.WriteToUDPAddrPort(pkt, to)
	return err
}

// queue queues pkt toward to in b (see poll.Batch.Queue); false when it
// cannot (no duplicate descriptor, closed, a destination of the other
// family): then the caller sends it with send.
func (x *txSocket) queue(b *poll.Batch, pkt []byte, to netip.AddrPort, f poll.Failer, tag int) bool {
	return b.Queue(&x.fd, pkt, to, f, tag)
}

// close stops the raw sends; idempotent.
func (x *txSocket) close() { x.fd.Close() }
