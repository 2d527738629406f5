package transport

import (
	"errors"
	"net"
	"net/netip"
	"os"

	"golang.org/x/sys/unix"

	"github.com/sbc-project/sbc/media/poll"
)

// rawSender sends a UDP listener's datagrams with a plain non-blocking
// sendto on a duplicate of its descriptor, outside Go's net.UDPConn.
//
// Why: every SIP message the SBC sends over UDP leaves from its one
// listening socket, from the UDP workers (100 Trying, the overload
// control's 503) and from every call's goroutine. net.UDPConn.WriteTo
// holds the descriptor's write lock for the system call (on loopback
// it includes the delivery to the receiver, ~20 µs); a sender that finds
// it taken parks and, once handed the lock, waits for a P behind every
// runnable goroutine. In a runtime trace at 1,200 calls/s the UDP
// workers' largest scheduling delay was exactly that wait, in
// respond100 and in the 503 of refuseEarly: the intake, which the
// overload control measures, queued behind the calls it feeds
// (BENCHMARKS.md, "Issue 15, sixth step"). The kernel takes concurrent
// sendto calls on one UDP socket without a lock of ours.
type rawSender struct {
	fd poll.FD
}

// newRawSender duplicates sock's descriptor for raw sends; nil if it
// cannot (the listener then sends through sock as before).
func newRawSender(sock *net.UDPConn) *rawSender {
	fd, err := poll.DupFD(sock)
	if err != nil {
		return nil
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		unix.Close(fd)
		return nil
	}
	_, v6 := sa.(*unix.SockaddrInet6)
	mapped := false
	if v6 {
		only, err := unix.GetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY)
		mapped = err == nil && only == 0
	}
	r := &rawSender{}
	r.fd.Init(fd, v6, mapped)
	return r
}

// send sends data to dst; handled false leaves the datagram to the
// UDPConn: a destination this socket's family cannot take in this form
// (whose error the UDPConn reports as it always did) or a full send
// buffer (EAGAIN: the UDPConn waits for room). It does not allocate.
func (r *rawSender) send(data []byte, dst netip.AddrPort) (handled bool, err error) {
	if r == nil || len(data) == 0 {
		return false, nil
	}
	err = r.fd.SendTo(data, dst)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, poll.ErrFamily), errors.Is(err, unix.EAGAIN):
		return false, nil
	case errors.Is(err, poll.ErrClosed):
		return true, ErrClosed
	}
	return true, &net.OpError{Op: "write", Net: "udp", Addr: net.UDPAddrFromAddrPort(dst), Err: os.NewSyscallError("sendto", err)}
}

// close lets the duplicate go once no send is in flight. Idempotent.
func (r *rawSender) close() {
	if r != nil {
		r.fd.Close()
	}
}
