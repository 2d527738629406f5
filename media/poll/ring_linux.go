package poll

import (
	"fmt"
	"net/netip"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// A loop serves what one wake-up brought: under load, tens of packets,
// each read from and sent through another call's socket. recvmmsg and
// sendmmsg batch the datagrams of one socket only, so each packet cost a
// receive and a sendto, and on a VM, where a system call traps to the
// hypervisor, a system call's entry and exit cost about as much as the UDP
// work itself. A Batch does the loop's receives and sends through an
// io_uring instead: one io_uring_enter receives from every ready socket,
// and one more sends everything the handlers queued. Both are
// non-blocking (MSG_DONTWAIT), so the kernel completes each operation
// before io_uring_enter returns, in order, and a send that would block
// fails (EAGAIN) as sendto does, reported to its Failer. The packets stay
// in the loop's read buffers (or the batch's own) until their sends
// completed.
//
// Where io_uring is not available (an old kernel, or disabled by
// kernel.io_uring_disabled or a seccomp filter), the loop reads with
// recvmmsg and the handlers send each packet with sendto as they go.

// Slots is how many datagrams one io_uring round receives, and how many
// sends a batch holds: the loop's read buffers.
const Slots = 64

// maxDepth is the most receives one socket gets in one round: a socket
// that gave a datagram for every receive of its last round and is still
// ready when the loop looks again gets twice as many, up to this (a
// shared port's sockets under load), and one that gave fewer gets as many
// as it gave. A call's own socket, one datagram per wake-up, keeps one
// receive: doubling it on every full round (as before) spent a receive
// that found nothing on every other round.
const maxDepth = 16

// ScratchSize is the size of a batch's scratch buffers (Scratch).
const ScratchSize = 2048 + 64

// Batch is one poll loop's queue of sends and the io_uring that submits
// them. It belongs to the loop's goroutine.
type Batch struct {
	ring ring
	n    int // queued sends
	// Per slot: the datagram's header, the descriptor it leaves from (one
	// reference held until it completed), and whom to tell if it fails.
	hdrs  [Slots]unix.Msghdr
	iovs  [Slots]unix.Iovec
	names [Slots][SockaddrLen]byte
	fds   [Slots]*FD
	fail  [Slots]Failer
	tags  [Slots]int
	sizes [Slots]int
	// got holds the result of each receive: bytes, or -errno.
	got [Slots]int32
	// scratch: buffers a handler writes a packet into that must outlive
	// it until the flush (an encrypted one); used counts those taken.
	scratch [Slots][]byte
	used    int
	// now is when the loop woke up for the datagrams it is handing its
	// handlers (its Config.Clock; 0 without one).
	now int64
}

// NewBatch returns a batch with its own io_uring, or an error when the
// kernel offers none.
func NewBatch() (*Batch, error) {
	b := &Batch{}
	if err := b.ring.setup(Slots); err != nil {
		return nil, err
	}
	slab := make([]byte, Slots*ScratchSize)
	for i := range b.hdrs {
		b.hdrs[i].Name = &b.names[i][0]
		b.hdrs[i].Iov = &b.iovs[i]
		b.hdrs[i].SetIovlen(1)
		b.scratch[i] = slab[i*ScratchSize : i*ScratchSize : (i+1)*ScratchSize]
	}
	return b, nil
}

// Now is the time the loop's current datagrams were read at (its
// Config.Clock, read once per wake-up; 0 without a clock): a handler that
// was handed the batch and not the time reads it here instead of the
// clock, which costs tens of ns per packet in a VM.
func (b *Batch) Now() int64 { return b.now }

// Full reports whether the batch has no free send slot.
func (b *Batch) Full() bool { return b.n == Slots }

// Scratch returns an empty buffer of ScratchSize capacity that stays
// untouched until the flush, for a packet to be queued; nil when all are
// taken (the caller then uses a buffer of its own and sends at once).
func (b *Batch) Scratch() []byte {
	if b.used == Slots {
		return nil
	}
	b.used++
	return b.scratch[b.used-1]
}

// Queue adds pkt, toward to from fd, to the batch, and reports false when
// it cannot be sent: to is of another family, or fd is closed. The caller
// counts it as sent; f (if not nil) hears of it if the send fails, with
// tag and pkt's size. pkt must stay untouched until the flush. A full
// batch sends at once.
func (b *Batch) Queue(fd *FD, pkt []byte, to netip.AddrPort, f Failer, tag int) bool {
	if b.n == Slots || len(pkt) == 0 {
		return fd.SendTo(pkt, to) == nil
	}
	i := b.n
	nl := fd.Sockaddr(&b.names[i], to)
	if nl == 0 || !fd.Acquire() {
		return false
	}
	b.fds[i], b.fail[i], b.tags[i], b.sizes[i] = fd, f, tag, len(pkt)
	// The iovec also keeps pkt reachable for the collector while only
	// the ring refers to it.
	b.iovs[i].Base = &pkt[0]
	b.iovs[i].SetLen(len(pkt))
	if b.ring.sendTo {
		// IORING_OP_SEND with a destination (sendto(2)): no msghdr and
		// iovec for the kernel to copy in and import per datagram.
		*b.ring.sqe(uint32(i)) = uringSQE{
			opcode:     ioringOpSend,
			fd:         int32(fd.fd),
			off:        uint64(uintptr(unsafe.Pointer(&b.names[i][0]))), // addr2
			addr:       uint64(uintptr(unsafe.Pointer(&pkt[0]))),
			len:        uint32(len(pkt)),
			opFlags:    unix.MSG_DONTWAIT,
			userData:   uint64(i),
			spliceFdIn: int32(nl), // addr_len, its upper half __pad3 zero
		}
		b.n++
		return true
	}
	b.hdrs[i].Namelen = uint32(nl)
	*b.ring.sqe(uint32(i)) = uringSQE{
		opcode:   ioringOpSendmsg,
		fd:       int32(fd.fd),
		addr:     uint64(uintptr(unsafe.Pointer(&b.hdrs[i]))),
		len:      1,
		opFlags:  unix.MSG_DONTWAIT,
		userData: uint64(i),
	}
	b.n++
	return true
}

// prepRecv sets receive i: one datagram from fd into hdr.
func (b *Batch) prepRecv(i int, fd int, hdr *unix.Msghdr) {
	*b.ring.sqe(uint32(i)) = uringSQE{
		opcode:   ioringOpRecvmsg,
		fd:       int32(fd),
		addr:     uint64(uintptr(unsafe.Pointer(hdr))),
		len:      1,
		opFlags:  unix.MSG_DONTWAIT,
		userData: recvTag | uint64(i),
	}
}

// recvTag marks the completion of a receive.
const recvTag = 1 << 32

// Flush submits the queued sends, waits for their results, and tells the
// Failers of the failed ones. Afterwards the packets' buffers are free.
func (b *Batch) Flush() {
	b.used = 0
	if b.n == 0 {
		return
	}
	b.enter(uint32(b.n))
	b.n = 0
}

// enter submits entries 0..n-1 and takes their completions.
func (b *Batch) enter(n uint32) {
	r := &b.ring
	r.submit(n)
	for left := n; left > 0; {
		// Non-blocking operations complete within io_uring_enter: waiting
		// for all of them is no wait at all.
		pending := r.tail - atomic.LoadUint32(r.sqHead)
		_, _, e := unix.RawSyscall6(unix.SYS_IO_URING_ENTER, uintptr(r.fd), uintptr(pending), uintptr(left),
			ioringEnterGetevents, 0, 0)
		if e != 0 && e != unix.EINTR && e != unix.EAGAIN && e != unix.EBUSY {
			panic(fmt.Sprintf("poll: io_uring_enter: %v", e))
		}
		left -= b.reap()
	}
}

// reap takes the completions the ring holds and returns how many.
func (b *Batch) reap() uint32 {
	r := &b.ring
	head := atomic.LoadUint32(r.cqHead)
	tail := atomic.LoadUint32(r.cqTail)
	for h := head; h != tail; h++ {
		cqe := &r.cqes[h&r.cqMask]
		if cqe.userData&recvTag != 0 {
			b.got[cqe.userData&^recvTag] = cqe.res
			continue
		}
		i := int(cqe.userData)
		if cqe.res < 0 && b.fail[i] != nil {
			b.fail[i].SendFailed(b.tags[i], b.sizes[i])
		}
		if cqe.res == -int32(unix.EINVAL) && b.ring.sendTo {
			// A kernel whose IORING_OP_SEND refuses the destination
			// after all: SENDMSG from now on, this datagram lost.
			b.ring.sendTo = false
		}
		b.fds[i].Unref()
		b.fds[i], b.fail[i] = nil, nil
	}
	atomic.StoreUint32(r.cqHead, tail)
	return tail - head
}

// Close releases the ring. The batch must be empty.
func (b *Batch) Close() { b.ring.close() }

// readRing reads the ready sockets through the loop's batch, up to Slots
// receives per io_uring_enter (each socket its depth of them), and hands
// the datagrams to their handlers, which may queue sends in the batch.
// It reports whether a socket may hold more: one that gave a datagram for
// each of its receives (for UDP the kernel does not say), so the loop
// looks at the set again before waiting.
func (lp *Loop) readRing(ready []*Socket, now int64) (more bool) {
	b := lp.out
	b.now = now
	for len(ready) > 0 {
		b.Flush() // the buffers are free again
		n, k := 0, 0
		for k < len(ready) && n+ready[k].depth <= Slots {
			s := ready[k]
			for range s.depth {
				lp.msgs[n].hdr.Namelen = SockaddrLen
				b.prepRecv(n, s.FD.fd, &lp.msgs[n].hdr)
				lp.from[n] = s
				n++
			}
			k++
		}
		b.enter(uint32(n))
		lp.recvs += uint64(n)
		lp.touchAll(n)
		for i := 0; i < n; {
			s := lp.from[i]
			d, got := s.depth, 0
			for j := i; j < i+d; j++ {
				r := b.got[j]
				if r < 0 {
					continue // EAGAIN (nothing more), or an error about one datagram
				}
				got++
				if src := lp.srcs[j]; src.IsValid() {
					s.Handler.Datagram(lp.bufs[j][:min(int(r), lp.cfg.BufSize)], src, now, b)
				}
			}
			s.full = got == d
			if s.full {
				more = true // handle doubles the depth if the socket is still ready
			} else {
				s.depth = max(got, 1)
			}
			i += d
		}
		ready = ready[k:]
	}
	return more
}

// touchAll reads the sources of a round's n receives into srcs (invalid:
// no datagram, or an unreadable source) and, when more than one datagram
// came, has their Touchers read ahead (Toucher).
func (lp *Loop) touchAll(n int) {
	b := lp.out
	var sum uintptr
	for j := range n {
		src := netip.AddrPort{}
		if r := b.got[j]; r >= 0 {
			if a, ok := AddrPortOf(lp.names[j][:min(int(lp.msgs[j].hdr.Namelen), SockaddrLen)]); ok {
				src = a
				if t, ok := lp.from[j].Handler.(Toucher); ok && n > 1 {
					sum += t.Touch(lp.bufs[j][:min(int(r), lp.cfg.BufSize)], src)
				}
			}
		}
		lp.srcs[j] = src
	}
	lp.touched = sum
}

// io_uring ABI (include/uapi/linux/io_uring.h).
const (
	ioringOpSendmsg         = 9
	ioringOpRecvmsg         = 10
	ioringOpSend            = 26
	ioringOpSendZC          = 47 // Linux 6.0, as IORING_OP_SEND's destination (addr2)
	ioringRegisterProbe     = 8
	ioringOpSupported       = 1 // io_uring_probe_op.flags
	ioringEnterGetevents    = 1
	ioringOffSQRing         = 0
	ioringOffCQRing         = 0x8000000
	ioringOffSQEs           = 0x10000000
	ioringFeatSingleMmap    = 1
	ioringFeatNativeWorkers = 1 << 9
)

type uringSQE struct {
	opcode      uint8
	flags       uint8
	ioprio      uint16
	fd          int32
	off         uint64
	addr        uint64
	len         uint32
	opFlags     uint32
	userData    uint64
	bufIndex    uint16
	personality uint16
	spliceFdIn  int32
	addr3       uint64
	_           uint64
}

type uringCQE struct {
	userData uint64
	res      int32
	flags    uint32
}

type uringParams struct {
	sqEntries, cqEntries, flags, sqThreadCPU, sqThreadIdle, features, wqFd uint32
	resv                                                                   [3]uint32
	sqOff                                                                  struct {
		head, tail, ringMask, ringEntries, flags, dropped, array, resv1 uint32
		userAddr                                                        uint64
	}
	cqOff struct {
		head, tail, ringMask, ringEntries, overflow, cqes, flags, resv1 uint32
		userAddr                                                        uint64
	}
}

// ring is a minimal io_uring: a submission queue whose entry i is always
// in slot i (the batch fills slots 0..n-1 and submits them at once), and
// a completion queue.
type ring struct {
	fd           int
	sqMem, cqMem []byte
	sqeMem       []byte
	sqHead       *uint32
	sqTail       *uint32
	sqArray      []uint32
	sqes         []uringSQE
	cqHead       *uint32
	cqTail       *uint32
	cqMask       uint32
	cqes         []uringCQE
	tail         uint32 // our copy of the submission tail
	sqMask       uint32
	// sendTo: IORING_OP_SEND takes a destination address (Linux 6.0);
	// else sends are IORING_OP_SENDMSG.
	sendTo bool
}

func (r *ring) setup(entries uint32) error {
	var p uringParams
	fd, _, e := unix.RawSyscall(unix.SYS_IO_URING_SETUP, uintptr(entries), uintptr(unsafe.Pointer(&p)), 0)
	if e != 0 {
		return fmt.Errorf("io_uring_setup: %w", e)
	}
	r.fd = int(fd)
	fail := func(err error) error {
		r.close()
		return err
	}
	// 5.12 or later: one mapping for both rings, and MSG_DONTWAIT
	// operations that complete (or fail with EAGAIN) within
	// io_uring_enter, which flush and recv rely on not to block.
	if want := uint32(ioringFeatSingleMmap | ioringFeatNativeWorkers); p.features&want != want {
		return fail(fmt.Errorf("io_uring: kernel too old (features %#x)", p.features))
	}
	sqSize := int(p.sqOff.array) + int(p.sqEntries)*4
	if cqSize := int(p.cqOff.cqes) + int(p.cqEntries)*int(unsafe.Sizeof(uringCQE{})); cqSize > sqSize {
		sqSize = cqSize
	}
	var err error
	r.sqMem, err = unix.Mmap(r.fd, ioringOffSQRing, sqSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		return fail(fmt.Errorf("io_uring mmap: %w", err))
	}
	r.cqMem = r.sqMem
	r.sqeMem, err = unix.Mmap(r.fd, ioringOffSQEs, int(p.sqEntries)*int(unsafe.Sizeof(uringSQE{})), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		return fail(fmt.Errorf("io_uring mmap: %w", err))
	}
	base := unsafe.Pointer(&r.sqMem[0])
	r.sqHead = (*uint32)(unsafe.Add(base, p.sqOff.head))
	r.sqTail = (*uint32)(unsafe.Add(base, p.sqOff.tail))
	r.sqMask = *(*uint32)(unsafe.Add(base, p.sqOff.ringMask))
	r.sqArray = unsafe.Slice((*uint32)(unsafe.Add(base, p.sqOff.array)), p.sqEntries)
	r.sqes = unsafe.Slice((*uringSQE)(unsafe.Pointer(&r.sqeMem[0])), p.sqEntries)
	r.cqHead = (*uint32)(unsafe.Add(base, p.cqOff.head))
	r.cqTail = (*uint32)(unsafe.Add(base, p.cqOff.tail))
	r.cqMask = *(*uint32)(unsafe.Add(base, p.cqOff.ringMask))
	r.cqes = unsafe.Slice((*uringCQE)(unsafe.Add(base, p.cqOff.cqes)), p.cqEntries)
	r.tail = atomic.LoadUint32(r.sqTail)
	r.sendTo = r.supports(ioringOpSendZC)
	return nil
}

// supports reports whether the kernel's io_uring knows opcode op
// (IORING_REGISTER_PROBE, Linux 5.6). Kernels before 6.0 refuse a
// destination on IORING_OP_SEND (EINVAL); 6.0 brought it together with
// IORING_OP_SEND_ZC, which the probe can see.
func (r *ring) supports(op uint8) bool {
	var probe struct {
		lastOp, opsLen uint8
		_              uint16
		_              [3]uint32
		ops            [256]struct {
			op    uint8
			_     uint8
			flags uint16
			_     uint32
		}
	}
	_, _, e := unix.RawSyscall6(unix.SYS_IO_URING_REGISTER, uintptr(r.fd), ioringRegisterProbe,
		uintptr(unsafe.Pointer(&probe)), uintptr(len(probe.ops)), 0, 0)
	if e != 0 || op > probe.lastOp {
		return false
	}
	return probe.ops[op].flags&ioringOpSupported != 0
}

// sqe returns submission entry i.
func (r *ring) sqe(i uint32) *uringSQE { return &r.sqes[i] }

// submit publishes entries 0..n-1 to the kernel, in order.
func (r *ring) submit(n uint32) {
	for i := range n {
		r.sqArray[(r.tail+i)&r.sqMask] = i
	}
	r.tail += n
	atomic.StoreUint32(r.sqTail, r.tail)
}

func (r *ring) close() {
	if r.sqeMem != nil {
		_ = unix.Munmap(r.sqeMem)
		r.sqeMem = nil
	}
	if r.sqMem != nil {
		_ = unix.Munmap(r.sqMem)
		r.sqMem, r.cqMem = nil, nil
	}
	if r.fd > 0 {
		unix.Close(r.fd)
		r.fd = -1
	}
}
