package poll

import (
	"net"

	"golang.org/x/sys/unix"
)

// SetReadBuffer asks bytes of receive buffer for conn: beyond
// net.core.rmem_max when the process may (SO_RCVBUFFORCE, CAP_NET_ADMIN),
// else up to it. Best effort: the default buffer still works.
func SetReadBuffer(conn *net.UDPConn, bytes int) {
	rc, err := conn.SyscallConn()
	if err == nil {
		err = rc.Control(func(fd uintptr) { SetReadBufferFD(int(fd), bytes) })
	}
	if err != nil {
		_ = conn.SetReadBuffer(bytes)
	}
}

// SetReadBufferFD is SetReadBuffer on a raw descriptor.
func SetReadBufferFD(fd, bytes int) {
	if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, bytes) != nil {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, bytes)
	}
}

// DupFD returns a non-blocking duplicate of conn's descriptor, which the
// caller owns (an FD's, for a loop to read or for raw sends).
func DupFD(conn *net.UDPConn) (int, error) {
	rc, err := conn.SyscallConn()
	if err != nil {
		return -1, err
	}
	fd := -1
	var derr error
	if err := rc.Control(func(s uintptr) {
		fd, derr = unix.FcntlInt(s, unix.F_DUPFD_CLOEXEC, 0)
	}); err != nil {
		return -1, err
	}
	if derr != nil {
		return -1, derr
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}
