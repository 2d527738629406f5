package media

import (
	"fmt"
	"os"
	"runtime"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The poll engine reads every plain RTP and RTCP socket of a Manager on
// Linux. A goroutine per socket, blocked in a read, costs a wake-up
// through the runtime's netpoller and scheduler for nearly every packet
// (a call's socket gets one every 20 ms): most of the relay's CPU. Here a
// few loops, one per CPU, each own an epoll set holding many sockets.
// The epoll set is itself in the runtime's netpoller: a loop's goroutine
// is parked like any reader until the set has ready sockets, then takes
// them all with one epoll_wait that does not wait, reads them, and hands
// every datagram to the socket's reader (relay.go) on the loop's
// goroutine. With io_uring (uring_linux.go) one io_uring_enter reads a
// datagram from every ready socket and one more sends what their flows
// queued; without, each socket is read with recvmmsg and each packet
// sent with sendto. A loop never blocks in a system call: every read and
// send is non-blocking, a send that would block fails, and the flow
// counts a drop. (A loop blocked in epoll_wait
// instead holds a thread in a system call, which the runtime's sysmon
// then keeps retaking: measured, 15 % of the relay's CPU went to sysmon.)
//
// Sockets come and go through the loop itself (add, remove), so the loop
// is the only one touching its epoll set and its table of sockets, and
// a socket's removal is acknowledged only once the loop cannot read it
// any more.
//
// No batching window: a loop serves what is ready as soon as the set is
// ready, adding no latency. Sleeping 500 µs after each batch, so that one
// wake-up serves more packets, measured worse (83 k against 94 k packets
// per CPU-second at 400 calls): the timer's wake-ups cost more than the
// netpoller's.

// pollBatch is how many datagrams one recvmmsg takes from a socket. A
// socket of a call gets one every 20 ms, so more than one waits only when
// the loop fell behind; the batch then catches up without a system call
// per packet.
const pollBatch = 8

// pollEvents is how many ready sockets one epoll_wait returns at most.
const pollEvents = 256

// wakeSlot is the epoll data of a loop's eventfd.
const wakeSlot = -1

// engine is a Manager's set of poll loops, started on first use.
type engine struct {
	n       int  // loops to start; 0: GOMAXPROCS (tests set it)
	noBatch bool // send each packet with sendto (tests set it)
	mu      sync.Mutex
	loops   []*loop
	stopped bool
}

// pick returns the loop for the socket on port, starting the loops on
// first use. The RTP and RTCP sockets of a pair share a loop. After stop,
// it returns a stopped loop, which refuses sockets.
func (eng *engine) pick(port int) *loop {
	eng.mu.Lock()
	defer eng.mu.Unlock()
	if eng.loops == nil {
		n := eng.n
		if n <= 0 {
			n = runtime.GOMAXPROCS(0)
		}
		for range n {
			lp, err := newLoop(!eng.noBatch)
			switch {
			case eng.stopped && err == nil:
				lp.shutdown()
				fallthrough
			case err != nil:
				// A stopped loop, which refuses sockets: without an epoll
				// set (the descriptor limit reached), a call gets no
				// media, as it would get no socket.
				lp = &loop{stopped: true}
			default:
				go lp.run()
			}
			eng.loops = append(eng.loops, lp)
		}
	}
	return eng.loops[(port/2)%len(eng.loops)]
}

// stop ends the loops and waits for them. Sockets still attached are let
// go (their WaitGroups are done), but not closed: their owners close them.
func (eng *engine) stop() {
	eng.mu.Lock()
	eng.stopped = true
	loops := eng.loops
	eng.mu.Unlock()
	for _, lp := range loops {
		lp.quit()
	}
}

// loop is one poll loop: an epoll set, the sockets in it, and the
// buffers recvmmsg fills.
type loop struct {
	epfd, wakefd int
	file         *os.File // epfd in the runtime's netpoller, once run
	done         chan struct{}

	mu      sync.Mutex
	ops     []pollOp // for the loop to apply, in order
	woken   bool     // wakefd was written and the loop has not run ops since
	stopped bool     // no op is taken any more

	// Owned by the loop's goroutine.
	conns  []*udpConn // by slot, the epoll data of each socket
	free   []int32
	events [pollEvents]unix.EpollEvent
	// The read buffers: with a send batch, readRing fills one per ready
	// socket, and the packets stay there until the batch is flushed;
	// without, read (recvmmsg, the packets sent at once) fills the first
	// pollBatch.
	bufs  [sendSlots][]byte
	names [sendSlots][sockaddrLen]byte
	iovs  [sendSlots]unix.Iovec
	msgs  [sendSlots]mmsghdr
	used  int        // buffers holding packets of the batch
	ready []*udpConn // the sockets of one epoll_wait, for readRing
	out   *sendBatch // nil: no io_uring, every send is a sendto
}

// mmsghdr is struct mmsghdr of recvmmsg(2).
type mmsghdr struct {
	hdr unix.Msghdr
	n   uint32
}

type pollOp struct {
	c    *udpConn
	add  bool
	quit bool
}

// newLoop returns a loop, which queues its sends in an io_uring batch if
// batch is set and the kernel allows.
func newLoop(batch bool) (*loop, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll: %w", err)
	}
	// Non-blocking, so that os.NewFile hands it to the netpoller.
	if err := unix.SetNonblock(epfd, true); err != nil {
		unix.Close(epfd)
		return nil, fmt.Errorf("epoll: %w", err)
	}
	wakefd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		unix.Close(epfd)
		return nil, fmt.Errorf("eventfd: %w", err)
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: wakeSlot}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, wakefd, &ev); err != nil {
		unix.Close(epfd)
		unix.Close(wakefd)
		return nil, fmt.Errorf("epoll add eventfd: %w", err)
	}
	lp := &loop{epfd: epfd, wakefd: wakefd, done: make(chan struct{}), ready: make([]*udpConn, 0, pollEvents)}
	if batch {
		// Without io_uring the loop sends as it goes.
		lp.out, _ = newSendBatch()
	}
	for i := range lp.msgs {
		lp.bufs[i] = make([]byte, maxPacket)
		lp.iovs[i].Base = &lp.bufs[i][0]
		lp.iovs[i].SetLen(maxPacket)
		h := &lp.msgs[i].hdr
		h.Name = &lp.names[i][0]
		h.Iov = &lp.iovs[i]
		h.SetIovlen(1)
	}
	return lp, nil
}

// add queues c for the loop to read; false if the loop is stopped.
func (lp *loop) add(c *udpConn) bool { return lp.post(pollOp{c: c, add: true}) }

// remove queues c's removal; the loop then marks c's WaitGroup done and
// drops c's owner reference. False if the loop is stopped (it let go of
// c already, without dropping the reference).
func (lp *loop) remove(c *udpConn) bool { return lp.post(pollOp{c: c}) }

// quit stops the loop after the ops queued before, and waits for it.
func (lp *loop) quit() {
	if lp.post(pollOp{quit: true}) {
		<-lp.done
	}
}

func (lp *loop) post(op pollOp) bool {
	lp.mu.Lock()
	defer lp.mu.Unlock()
	if lp.stopped {
		return false
	}
	lp.ops = append(lp.ops, op)
	if op.quit {
		lp.stopped = true
	}
	if !lp.woken {
		lp.woken = true
		var one = [8]byte{1}
		// Cannot fail but by overflowing the counter, which woken prevents.
		_, _ = unix.Write(lp.wakefd, one[:])
	}
	return true
}

// run waits for ready sockets and reads them until quit.
func (lp *loop) run() {
	defer close(lp.done)
	// The epoll set is itself pollable: the runtime's netpoller wakes the
	// loop's goroutine when it has ready sockets, as it would a goroutine
	// reading one socket, and the loop then takes them all without
	// waiting. Neither a thread nor a P is held while the loop is idle.
	lp.file = os.NewFile(uintptr(lp.epfd), "epoll")
	rc, err := lp.file.SyscallConn()
	if err != nil {
		panic(fmt.Sprintf("media: epoll set: %v", err))
	}
	// take returns false to wait for the netpoller, true once the loop
	// must end. It does not return after each batch: a new Read would
	// reset the set's readiness and need an epoll_wait that finds
	// nothing to learn that nothing came meanwhile (one system call per
	// wake-up). Within one Read, any packet arriving on a socket of the
	// set after epoll_wait returned makes the set ready again, so the
	// netpoller wakes the loop (or does not let it sleep) for it. What
	// does not: sockets epoll_wait had no room to report, and datagrams
	// a full recvmmsg left behind (level-triggered epoll keeps reporting
	// them, but the set signals no new readiness for them); take serves
	// those before waiting.
	take := func(fd uintptr) bool {
		for {
			r1, _, e := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, fd, uintptr(unsafe.Pointer(&lp.events[0])), pollEvents, 0, 0, 0)
			if e != 0 || r1 == 0 {
				return false // wait for the set to become ready
			}
			quit, more := lp.handle(int(r1))
			if quit {
				return true
			}
			if !more && int(r1) < pollEvents {
				return false
			}
		}
	}
	if err := rc.Read(take); err != nil {
		panic(fmt.Sprintf("media: epoll set: %v", err))
	}
	lp.file.Close()
}

// handle reads the sockets of n ready events and applies the queued ops
// if the loop was woken. quit: the loop must end; more: a socket may
// hold datagrams its read left behind.
func (lp *loop) handle(n int) (quit, more bool) {
	wake := false
	// One clock read for the batch: its packets were all read within
	// microseconds.
	now := monotonic()
	ready := lp.ready[:0]
	for i := range n {
		slot := lp.events[i].Fd
		if slot == wakeSlot {
			wake = true
			continue
		}
		if lp.out != nil {
			ready = append(ready, lp.conns[slot])
		} else if lp.read(lp.conns[slot], now) {
			more = true
		}
	}
	if len(ready) > 0 && lp.readRing(ready, now) {
		more = true
	}
	lp.flush()
	// Removals only after the batch: no event of it refers to a socket
	// gone from the table.
	return wake && lp.control(), more
}

// flush sends what the batch holds and frees the read buffers.
func (lp *loop) flush() {
	if lp.out != nil {
		lp.out.flush()
	}
	lp.used = 0
}

// read takes what waits on c, up to pollBatch datagrams, and forwards it
// as read at now; the flows send at once (no send batch).
// It reports whether it took a full batch: more may wait, and
// level-triggered epoll reports c again if so.
func (lp *loop) read(c *udpConn, now int64) (full bool) {
	for i := range pollBatch {
		lp.msgs[i].hdr.Namelen = sockaddrLen
	}
	r1, _, e := unix.RawSyscall6(unix.SYS_RECVMMSG, uintptr(c.fd), uintptr(unsafe.Pointer(&lp.msgs[0])), pollBatch,
		unix.MSG_DONTWAIT, 0, 0)
	if e != 0 {
		// EAGAIN (nothing after all) or an error about one datagram: the
		// socket stays usable.
		return false
	}
	for i := range int(r1) {
		m := &lp.msgs[i]
		src, ok := addrPortOf(lp.names[i][:min(int(m.hdr.Namelen), sockaddrLen)])
		if !ok {
			continue
		}
		c.r.forwardAt(lp.bufs[i][:min(int(m.n), maxPacket)], src, now)
	}
	return int(r1) == pollBatch
}

// control applies the queued ops; true when the loop must end.
func (lp *loop) control() bool {
	var buf [8]byte
	_, _ = unix.Read(lp.wakefd, buf[:])
	lp.mu.Lock()
	ops := lp.ops
	lp.ops = nil
	lp.woken = false
	lp.mu.Unlock()
	for _, op := range ops {
		switch {
		case op.quit:
			lp.shutdown()
			return true
		case op.add:
			lp.register(op.c)
		default:
			// The reference first: once the WaitGroup is done, the
			// owner may check the descriptor is closed.
			lp.unregister(op.c)
			wg := op.c.wg
			op.c.unref()
			wg.Done()
		}
	}
	return false
}

// register adds c to the epoll set under a free slot.
func (lp *loop) register(c *udpConn) {
	var slot int32
	if n := len(lp.free); n > 0 {
		slot = lp.free[n-1]
		lp.free = lp.free[:n-1]
		lp.conns[slot] = c
	} else {
		slot = int32(len(lp.conns))
		lp.conns = append(lp.conns, c)
	}
	c.slot = slot
	if lp.out != nil && c.r.e.sdes == nil {
		// An SDES reader decrypts into a buffer of its own, which the
		// next packet reuses: its flow sends at once.
		c.r.out = lp.out
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: slot}
	if err := unix.EpollCtl(lp.epfd, unix.EPOLL_CTL_ADD, c.fd, &ev); err != nil {
		// Out of memory for the epoll set: the socket is not read, as if
		// no packet ever came.
		lp.unregister(c)
	}
}

// unregister takes c out of the epoll set and the table. The owner's
// reference keeps c.fd open until then.
func (lp *loop) unregister(c *udpConn) {
	if c.slot < 0 {
		return
	}
	_ = unix.EpollCtl(lp.epfd, unix.EPOLL_CTL_DEL, c.fd, nil)
	lp.conns[c.slot] = nil
	lp.free = append(lp.free, c.slot)
	c.slot = -1
}

// shutdown lets go of every socket still in the table and closes the
// loop's descriptors.
func (lp *loop) shutdown() {
	for _, c := range lp.conns {
		if c != nil {
			lp.unregister(c)
			c.wg.Done()
		}
	}
	if lp.file == nil { // else run closes it, outside its Read
		unix.Close(lp.epfd)
	}
	unix.Close(lp.wakefd)
	if lp.out != nil {
		lp.out.close()
	}
}
