package transport

import (
	"fmt"
	"net"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// rxInfoSize is the control-message buffer a datagram's arrival time and
// its socket's drop count fit in.
var rxInfoSize = unix.CmsgSpace(int(unsafe.Sizeof(unix.Timespec{}))) + unix.CmsgSpace(4)

// enableRxInfo asks the kernel to attach to every datagram read from sock
// the time it arrived (SO_TIMESTAMPNS), so that the wait in the socket
// buffer is measured and not only the wait in our own queues, and the
// number of datagrams the socket dropped so far because its buffer was
// full (SO_RXQ_OVFL).
func enableRxInfo(sock *net.UDPConn) error {
	rc, err := sock.SyscallConn()
	if err != nil {
		return fmt.Errorf("receive timestamps: %w", err)
	}
	var serr error
	err = rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1)
		if serr == nil {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RXQ_OVFL, 1)
		}
	})
	if err == nil {
		err = serr
	}
	if err != nil {
		return fmt.Errorf("receive timestamps: %w", err)
	}
	return nil
}

// parseRxInfo reads the arrival time (zero when absent) and the socket's
// drop count (ok false when absent) from a datagram's control messages. It
// allocates nothing: it runs for every datagram.
func parseRxInfo(oob []byte) (arrived time.Time, drops uint32, ok bool) {
	for len(oob) >= unix.SizeofCmsghdr {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
		n := int(h.Len)
		if n < unix.SizeofCmsghdr || n > len(oob) {
			break
		}
		data := oob[unix.CmsgLen(0):n]
		if h.Level == unix.SOL_SOCKET {
			switch h.Type {
			case unix.SCM_TIMESTAMPNS:
				if len(data) >= int(unsafe.Sizeof(unix.Timespec{})) {
					ts := (*unix.Timespec)(unsafe.Pointer(&data[0]))
					arrived = time.Unix(int64(ts.Sec), int64(ts.Nsec))
				}
			case unix.SO_RXQ_OVFL:
				if len(data) >= 4 {
					drops, ok = *(*uint32)(unsafe.Pointer(&data[0])), true
				}
			}
		}
		space := unix.CmsgSpace(n - unix.CmsgLen(0))
		if space > len(oob) {
			break
		}
		oob = oob[space:]
	}
	return arrived, drops, ok
}
