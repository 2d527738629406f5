package media

import (
	"fmt"
	"net/netip"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// A poll loop relays what one wake-up brought (poll_linux.go): under
// load, tens of packets, each read from and sent through another call's
// socket. recvmmsg and sendmmsg batch the datagrams of one socket only,
// so each packet cost a recvmmsg and a sendto, and on this kind of
// machine (a VM, where a system call traps to the hypervisor) a system
// call's entry and exit cost about as much as the UDP work itself. A
// sendBatch does the loop's receives and sends through an io_uring
// instead: one io_uring_enter receives a datagram from every ready
// socket, and one more sends everything their flows queued. Both are
// non-blocking (MSG_DONTWAIT), so the kernel completes each operation
// before io_uring_enter returns, and a send that would block fails
// (EAGAIN) as sendto does, counted as a drop. The packets stay in the
// loop's read buffers until their sends completed.
//
// Where io_uring is not available (an old kernel, or disabled by
// kernel.io_uring_disabled or a seccomp filter), the loop reads with
// recvmmsg and sends each packet with sendto as it goes.

// sendSlots is how many sends a batch holds: the loop's read buffers.
// When the buffers are used up, the loop flushes the batch before reading
// on.
const sendSlots = 64

// sendBatch is one poll loop's queue of sends and the io_uring that
// submits them. It belongs to the loop's goroutine.
type sendBatch struct {
	ring ring
	n    int // queued sends
	// Per slot: the datagram's header, the socket it leaves from (one
	// reference held until it completed), and the counters to correct
	// if it fails.
	hdrs  [sendSlots]unix.Msghdr
	iovs  [sendSlots]unix.Iovec
	names [sendSlots][sockaddrLen]byte
	conns [sendSlots]*udpConn
	ctrs  [sendSlots]*flowCounters
	rtcp  [sendSlots]bool
	sizes [sendSlots]int
	// got holds the result of each receive of recv: bytes, or -errno.
	got [sendSlots]int32
}

// newSendBatch returns a batch with its own io_uring, or an error when
// the kernel offers none.
func newSendBatch() (*sendBatch, error) {
	b := &sendBatch{}
	if err := b.ring.setup(sendSlots); err != nil {
		return nil, err
	}
	for i := range b.hdrs {
		b.hdrs[i].Name = &b.names[i][0]
		b.hdrs[i].Iov = &b.iovs[i]
		b.hdrs[i].SetIovlen(1)
	}
	return b, nil
}

// full reports whether the batch has no free slot.
func (b *sendBatch) full() bool { return b.n == sendSlots }

// queue adds pkt, toward to from c, to the batch, and reports false when
// it cannot be sent: to is of another family, or c is closed. The caller
// counts it as relayed in o's counters, which the flush corrects if the
// send fails. pkt must stay untouched until the flush. A full batch
// (which the loop's flushing prevents) sends at once.
func (b *sendBatch) queue(c *udpConn, pkt []byte, to netip.AddrPort, o out) bool {
	if b.n == sendSlots || len(pkt) == 0 {
		return c.writeTo(pkt, to) == nil
	}
	i := b.n
	nl := c.sockaddr(&b.names[i], to)
	if nl == 0 || !c.acquire() {
		return false
	}
	b.hdrs[i].Namelen = uint32(nl)
	b.iovs[i].Base = &pkt[0]
	b.iovs[i].SetLen(len(pkt))
	b.conns[i], b.ctrs[i], b.rtcp[i], b.sizes[i] = c, o.ctr, o.rtcp, len(pkt)
	sqe := b.ring.sqe(uint32(i))
	*sqe = uringSQE{
		opcode:   ioringOpSendmsg,
		fd:       int32(c.fd),
		addr:     uint64(uintptr(unsafe.Pointer(&b.hdrs[i]))),
		len:      1,
		opFlags:  unix.MSG_DONTWAIT,
		userData: uint64(i),
	}
	b.n++
	return true
}

// recv receives one datagram with each hdrs[i] from conns[i] (at most
// sendSlots), with one io_uring_enter, and leaves each result in b.got[i].
// The batch must be empty (flushed).
func (b *sendBatch) recv(conns []*udpConn, hdrs func(i int) *unix.Msghdr) {
	for i, c := range conns {
		*b.ring.sqe(uint32(i)) = uringSQE{
			opcode:   ioringOpRecvmsg,
			fd:       int32(c.fd),
			addr:     uint64(uintptr(unsafe.Pointer(hdrs(i)))),
			len:      1,
			opFlags:  unix.MSG_DONTWAIT,
			userData: recvTag | uint64(i),
		}
	}
	b.enter(uint32(len(conns)))
}

// recvTag marks the completion of a receive.
const recvTag = 1 << 32

// flush submits the queued sends, waits for their results, and counts
// the failed ones as drops. Afterwards the packets' buffers are free.
func (b *sendBatch) flush() {
	if b.n == 0 {
		return
	}
	b.enter(uint32(b.n))
	b.n = 0
}

// enter submits entries 0..n-1 and takes their completions.
func (b *sendBatch) enter(n uint32) {
	r := &b.ring
	r.submit(n)
	for left := n; left > 0; {
		// Non-blocking operations complete within io_uring_enter: waiting
		// for all of them is no wait at all.
		pending := r.tail - atomic.LoadUint32(r.sqHead)
		_, _, e := unix.RawSyscall6(unix.SYS_IO_URING_ENTER, uintptr(r.fd), uintptr(pending), uintptr(left),
			ioringEnterGetevents, 0, 0)
		if e != 0 && e != unix.EINTR && e != unix.EAGAIN && e != unix.EBUSY {
			panic(fmt.Sprintf("media: io_uring_enter: %v", e))
		}
		left -= b.reap()
	}
}

// reap takes the completions the ring holds and returns how many.
func (b *sendBatch) reap() uint32 {
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
		if cqe.res < 0 {
			c := b.ctrs[i]
			if b.rtcp[i] {
				c.rtcpPackets.Add(^uint64(0))
				c.rtcpBytes.Add(-uint64(b.sizes[i]))
			} else {
				c.packets.Add(^uint64(0))
				c.bytes.Add(-uint64(b.sizes[i]))
			}
			c.dropped.Add(1)
		}
		b.conns[i].unref()
		b.conns[i], b.ctrs[i] = nil, nil
	}
	atomic.StoreUint32(r.cqHead, tail)
	return tail - head
}

// close releases the ring. The batch must be empty.
func (b *sendBatch) close() { b.ring.close() }

// io_uring ABI (include/uapi/linux/io_uring.h).
const (
	ioringOpSendmsg         = 9
	ioringOpRecvmsg         = 10
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
	return nil
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

// readRing reads one datagram from each of ready, sendSlots sockets per
// io_uring_enter, and forwards them as read at now; their flows queue
// their sends in the batch. It reports whether any socket gave a
// datagram: it may hold more, and for UDP the kernel does not say, so
// the loop looks at the set again before waiting.
func (lp *loop) readRing(ready []*udpConn, now int64) (more bool) {
	hdr := func(i int) *unix.Msghdr {
		lp.msgs[i].hdr.Namelen = sockaddrLen
		return &lp.msgs[i].hdr
	}
	for len(ready) > 0 {
		lp.flush() // the buffers are free again
		k := min(len(ready), sendSlots)
		lp.out.recv(ready[:k], hdr)
		lp.used = k
		for i, c := range ready[:k] {
			n := lp.out.got[i]
			if n < 0 {
				continue // EAGAIN (nothing after all), or an error about one datagram
			}
			more = true
			src, ok := addrPortOf(lp.names[i][:min(int(lp.msgs[i].hdr.Namelen), sockaddrLen)])
			if !ok {
				continue
			}
			c.r.forwardAt(lp.bufs[i][:min(int(n), maxPacket)], src, now)
		}
		ready = ready[k:]
	}
	return more
}
