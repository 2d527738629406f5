package poll

import (
	"errors"
	"net"
	"net/netip"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// FD is a non-blocking UDP descriptor with references: the owner's, held
// from Init until Close (or, for a socket in a loop, until the loop lets
// go of it), and one per send in flight. Close sets the closing bit: no
// new reference is handed out, and the last reference closes the
// descriptor, so a descriptor number the kernel hands out again never
// gets a stale packet. The zero FD is closed: it sends nothing.
type FD struct {
	fd     int
	v6     bool // an AF_INET6 socket
	mapped bool // dual-stack: IPv4 destinations go v4-mapped
	state  atomic.Int64
}

// closingBit marks an FD closed: no new reference is handed out.
const closingBit = 1 << 62

// ErrClosed is what a send on a closed FD returns.
var ErrClosed = net.ErrClosed

// ErrFamily: the destination's family is not the socket's.
var ErrFamily = errors.New("poll: destination of another address family")

// Init sets f up on fd, which f owns from now on. v6: an AF_INET6 socket;
// mapped: one that is dual-stack, where IPv4 destinations go v4-mapped.
func (f *FD) Init(fd int, v6, mapped bool) {
	f.fd, f.v6, f.mapped = fd, v6, mapped
	f.state.Store(1) // the owner's reference
}

// Sysfd is the descriptor; valid while the caller holds a reference.
func (f *FD) Sysfd() int { return f.fd }

// Acquire takes a reference for one use of the descriptor; false once
// closing (or never opened).
func (f *FD) Acquire() bool {
	for {
		v := f.state.Load()
		if v&closingBit != 0 || v == 0 {
			return false
		}
		if f.state.CompareAndSwap(v, v+1) {
			return true
		}
	}
}

// Unref drops a reference; the last one after Shut closes the descriptor.
func (f *FD) Unref() {
	if f.state.Add(-1) == closingBit {
		unix.Close(f.fd)
	}
}

// Shut sets the closing bit without dropping the owner's reference, and
// reports whether this call set it (false: closed already, or never
// opened). Whoever holds the owner's reference then drops it.
func (f *FD) Shut() bool {
	for {
		v := f.state.Load()
		if v&closingBit != 0 || v == 0 {
			return false
		}
		if f.state.CompareAndSwap(v, v|closingBit) {
			return true
		}
	}
}

// Close stops new uses and drops the owner's reference; the descriptor
// closes when the last send in flight ends. Idempotent.
func (f *FD) Close() {
	if f.Shut() {
		f.Unref()
	}
}

// Closed reports whether the descriptor is closed: closing, and no
// reference left.
func (f *FD) Closed() bool { return f.state.Load() == closingBit }

// Sockaddr writes to as the socket's family's sockaddr into sa and returns
// its length, or 0 when to cannot be reached from the socket.
func (f *FD) Sockaddr(sa *[SockaddrLen]byte, to netip.AddrPort) uintptr {
	return PutSockaddr(sa, to, f.v6, f.mapped)
}

// SendTo sends pkt to to with one non-blocking sendto: a full socket
// buffer (EAGAIN) is an error like any other. It does not allocate.
func (f *FD) SendTo(pkt []byte, to netip.AddrPort) error {
	if len(pkt) == 0 {
		return nil
	}
	var sa [SockaddrLen]byte
	n := f.Sockaddr(&sa, to)
	if n == 0 {
		return ErrFamily
	}
	if !f.Acquire() {
		return ErrClosed
	}
	_, _, e := unix.RawSyscall6(unix.SYS_SENDTO, uintptr(f.fd), uintptr(unsafe.Pointer(&pkt[0])), uintptr(len(pkt)),
		unix.MSG_DONTWAIT, uintptr(unsafe.Pointer(&sa[0])), n)
	f.Unref()
	if e != 0 {
		return e
	}
	return nil
}
