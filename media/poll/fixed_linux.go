package poll

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// A loop's io_uring reads its sockets through registered files
// (IORING_REGISTER_FILES, IOSQE_FIXED_FILE): an operation on a plain
// descriptor looks the file up and takes a reference on it (fget), and
// drops it when done (fput), two atomic operations on the file's count per
// datagram; measured at 500 WebRTC calls, fget alone was 2.7 % of the
// SBC's CPU (kernel included, BENCHMARKS.md "Issue 15, tenth step"). A
// socket's entry in the table is its slot in the loop, set when the loop
// registers the socket and cleared when it lets go of it, before the
// owner's reference is dropped: the table's own reference on the file
// never keeps a closed socket (and its port) alive. A send from a socket
// of the same loop uses the entry too (FD.fixed); sends from any other
// descriptor, and a kernel or a slot without the table, use the plain
// descriptor as before.

// maxFixed is the most registered files a ring's table holds (the slots
// of a loop beyond it read through the plain descriptor): 8 bytes of
// kernel memory each, and never more than RLIMIT_NOFILE allows.
const maxFixed = 1 << 14

// io_uring ABI for registered files (include/uapi/linux/io_uring.h).
const (
	ioringRegisterFiles       = 2
	ioringRegisterFilesUpdate = 6
	iosqeFixedFile            = 1 << 0
)

// filesUpdate is struct io_uring_files_update.
type filesUpdate struct {
	offset uint32
	resv   uint32
	fds    uint64 // pointer to __s32 descriptors
}

// registerFiles gives the ring an empty (sparse) table of registered
// files; without one (an old kernel, a low descriptor limit) the ring
// works on plain descriptors only.
func (r *ring) registerFiles() {
	n := maxFixed
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err == nil && lim.Cur < uint64(n) {
		n = int(lim.Cur)
	}
	if n <= 0 {
		return
	}
	fds := make([]int32, n)
	for i := range fds {
		fds[i] = -1 // sparse: no file yet
	}
	_, _, e := unix.RawSyscall6(unix.SYS_IO_URING_REGISTER, uintptr(r.fd), ioringRegisterFiles,
		uintptr(unsafe.Pointer(&fds[0])), uintptr(n), 0, 0)
	if e == 0 {
		r.files = n
	}
}

// setFile puts descriptor fd (-1: none) in entry i of the ring's table
// and reports whether it did.
func (r *ring) setFile(i int, fd int) bool {
	if i < 0 || i >= r.files {
		return false
	}
	r.update[0] = int32(fd)
	u := filesUpdate{offset: uint32(i), fds: uint64(uintptr(unsafe.Pointer(&r.update[0])))}
	r1, _, e := unix.RawSyscall6(unix.SYS_IO_URING_REGISTER, uintptr(r.fd), ioringRegisterFilesUpdate,
		uintptr(unsafe.Pointer(&u)), 1, 0, 0)
	return e == 0 && r1 == 1
}

// fix registers s's descriptor in the loop's table under its slot, so
// that its receives (and sends of this loop) skip the file lookup. The
// loop's goroutine calls it, once s is registered.
func (lp *Loop) fix(s *Socket) {
	if lp.out == nil || !lp.out.ring.setFile(int(s.slot), s.FD.fd) {
		return
	}
	s.FD.fixedIx = s.slot
	s.FD.fixedIn.Store(lp.out)
}

// unfix takes s's descriptor out of the loop's table, before the loop
// lets go of s: once the owner's reference is dropped, nothing but the
// descriptor keeps the socket open.
func (lp *Loop) unfix(s *Socket) {
	if s.FD.fixedIn.Load() != lp.out || lp.out == nil {
		return
	}
	s.FD.fixedIn.Store(nil)
	lp.out.ring.setFile(int(s.slot), -1)
}

// target is what an io_uring operation on f names in b's ring: its
// registered entry when b's loop registered f, else its descriptor.
func (f *FD) target(b *Batch) (fd int32, flags uint8) {
	if f.fixedIn.Load() == b {
		return f.fixedIx, iosqeFixedFile
	}
	return int32(f.fd), 0
}
