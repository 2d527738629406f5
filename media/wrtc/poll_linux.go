package wrtc

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"slices"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/sbc-project/sbc/media/internal/sockaddr"
)

// The poller reads the UDP sockets of every Mux on Linux, as the media
// package's poll engine reads the plain RTP sockets (media/poll_linux.go,
// where the reasons are measured): a goroutine per socket, blocked in a
// read, costs a wake-up through the runtime's netpoller and scheduler for
// nearly every packet, and with a port per call a socket gets one every
// 20 ms. Here a few loops, one per CPU, each own an epoll set holding many
// sockets; the set is itself in the runtime's netpoller, so an idle loop
// holds no thread. A ready socket is read with recvmmsg and each datagram
// handed to its Mux's dispatch on the loop's goroutine.
//
// The loop reads a duplicate of the socket's descriptor, registered in its
// set until the Mux detaches it (Mux.Close, before the socket closes), so
// a descriptor number the kernel hands out again is never read by mistake.
// The loops start with the first attached Mux and end with the last one
// detached, so a process without WebRTC media has none.

// pollBatch is how many datagrams one recvmmsg takes from a socket. A
// call's own socket gets one every 20 ms; a shared port's sockets get
// thousands a second, and a wake-up that finds them late drains more per
// system call (the buffers are the loop's: 256 kB for each of a few loops).
const pollBatch = 32

// pollEvents is how many ready sockets one epoll_wait returns at most.
const pollEvents = 128

// wakeSlot is the epoll data of a loop's eventfd.
const wakeSlot = -1

// sockaddrLen is room for a sockaddr_in6, the larger of the two families.
const sockaddrLen = sockaddr.Len

// poller is the process's set of loops, running while muxes are attached.
var poller struct {
	mu       sync.Mutex
	loops    []*pollLoop
	next     int
	attached int // muxes attached or attaching
}

// attachPoller has one of the process's loops read s's socket: the n-th
// loop after after when that is set (a Mux's sibling sockets go to
// different loops), else the next in turn. False when that is impossible
// (no descriptor to spare, no epoll set): the caller reads the socket with
// a goroutine instead.
func attachPoller(s *muxSocket, after *pollLoop, n int) bool {
	fd, err := dupFD(s.conn)
	if err != nil {
		return false
	}
	lp := pickLoop(after, n)
	if lp == nil {
		unix.Close(fd)
		return false
	}
	s.pfd, s.loop = fd, lp
	done := make(chan bool, 1)
	lp.post(pollOp{s: s, add: true, done: done})
	if !<-done {
		unix.Close(fd)
		s.loop = nil
		releaseLoop()
		return false
	}
	return true
}

// detachPoller takes s's socket out of its loop and returns once the loop
// cannot read it any more.
func detachPoller(s *muxSocket) {
	done := make(chan bool, 1)
	s.loop.post(pollOp{s: s, done: done})
	<-done
	unix.Close(s.pfd)
	releaseLoop()
}

// dupFD returns a non-blocking duplicate of conn's descriptor.
func dupFD(conn *net.UDPConn) (int, error) {
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

// pickLoop returns the n-th loop after after, or with after nil the next
// loop in turn, for a socket to attach, starting the loops if none runs;
// nil when none could start. A non-nil loop must be given back with
// releaseLoop.
func pickLoop(after *pollLoop, n int) *pollLoop {
	poller.mu.Lock()
	defer poller.mu.Unlock()
	if poller.loops == nil {
		for range runtime.GOMAXPROCS(0) {
			lp, err := newPollLoop()
			if err != nil {
				continue
			}
			go lp.run()
			poller.loops = append(poller.loops, lp)
		}
	}
	if len(poller.loops) == 0 {
		poller.loops = nil
		return nil
	}
	poller.attached++
	if i := slices.Index(poller.loops, after); after != nil && i >= 0 {
		return poller.loops[(i+n)%len(poller.loops)]
	}
	poller.next = (poller.next + 1) % len(poller.loops)
	return poller.loops[poller.next]
}

// releaseLoop counts a Mux detached; the last one ends the loops, and
// returns once they have.
func releaseLoop() {
	poller.mu.Lock()
	defer poller.mu.Unlock()
	if poller.attached--; poller.attached > 0 {
		return
	}
	for _, lp := range poller.loops {
		lp.post(pollOp{quit: true})
		<-lp.done
	}
	poller.loops = nil
}

// pollLoop is one loop: an epoll set, the muxes in it, and the buffers
// recvmmsg fills. Loops run for the life of the process.
type pollLoop struct {
	epfd, wakefd int
	done         chan struct{} // closed when run returns

	mu    sync.Mutex
	ops   []pollOp // for the loop to apply, in order
	woken bool     // wakefd was written and the loop has not run ops since

	// Owned by the loop's goroutine.
	socks  []*muxSocket // by slot, the epoll data of each socket
	free   []int32
	events [pollEvents]unix.EpollEvent
	bufs   [pollBatch][]byte
	names  [pollBatch][sockaddrLen]byte
	iovs   [pollBatch]unix.Iovec
	msgs   [pollBatch]mmsghdr
}

// mmsghdr is struct mmsghdr of recvmmsg(2).
type mmsghdr struct {
	hdr unix.Msghdr
	n   uint32
}

// pollOp adds s to the loop or removes it; done gets whether the socket
// is (add) or is no longer (remove) in the set. quit ends the loop.
type pollOp struct {
	s    *muxSocket
	add  bool
	quit bool
	done chan bool
}

func newPollLoop() (*pollLoop, error) {
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
	lp := &pollLoop{epfd: epfd, wakefd: wakefd, done: make(chan struct{})}
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

// post queues op for the loop and wakes it.
func (lp *pollLoop) post(op pollOp) {
	lp.mu.Lock()
	defer lp.mu.Unlock()
	lp.ops = append(lp.ops, op)
	if !lp.woken {
		lp.woken = true
		one := [8]byte{1}
		// Cannot fail but by overflowing the counter, which woken prevents.
		_, _ = unix.Write(lp.wakefd, one[:])
	}
}

// run waits for ready sockets and reads them until a quit op.
func (lp *pollLoop) run() {
	defer close(lp.done)
	// The runtime's netpoller wakes the loop's goroutine when the set has
	// ready sockets; the loop then takes them all without waiting.
	file := os.NewFile(uintptr(lp.epfd), "wrtc-epoll")
	defer file.Close()
	rc, err := file.SyscallConn()
	if err != nil {
		panic(fmt.Sprintf("wrtc: epoll set: %v", err))
	}
	quit := false
	take := func(fd uintptr) bool {
		r1, _, e := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, fd, uintptr(unsafe.Pointer(&lp.events[0])), pollEvents, 0, 0, 0)
		if e != 0 || r1 == 0 {
			return false // wait for the set to become ready
		}
		quit = lp.handle(int(r1))
		return true
	}
	for !quit {
		if err := rc.Read(take); err != nil {
			panic(fmt.Sprintf("wrtc: epoll set: %v", err))
		}
	}
}

// handle reads the sockets of n ready events, then applies the queued ops
// if the loop was woken (after the batch: no event of it refers to a
// socket gone from the table); true when the loop must end.
func (lp *pollLoop) handle(n int) bool {
	wake := false
	for i := range n {
		slot := lp.events[i].Fd
		if slot == wakeSlot {
			wake = true
			continue
		}
		if s := lp.socks[slot]; s != nil {
			lp.read(s)
		}
	}
	return wake && lp.control()
}

// read takes what waits on s, up to pollBatch datagrams, and dispatches
// it. Level-triggered epoll reports the socket again if more waits.
func (lp *pollLoop) read(s *muxSocket) {
	for i := range lp.msgs {
		lp.msgs[i].hdr.Namelen = sockaddrLen
	}
	r1, _, e := unix.RawSyscall6(unix.SYS_RECVMMSG, uintptr(s.pfd), uintptr(unsafe.Pointer(&lp.msgs[0])), pollBatch,
		unix.MSG_DONTWAIT, 0, 0)
	if e != 0 {
		// EAGAIN (nothing after all) or an error about one datagram: the
		// socket stays usable.
		return
	}
	s.got.Add(uint64(r1))
	for i := range int(r1) {
		msg := &lp.msgs[i]
		from, ok := addrPortOf(lp.names[i][:min(int(msg.hdr.Namelen), sockaddrLen)])
		if !ok {
			continue
		}
		s.m.dispatch(lp.bufs[i][:min(int(msg.n), maxPacket)], from)
	}
}

// control applies the queued ops; true on quit (the last op: no Mux is
// attached any more).
func (lp *pollLoop) control() bool {
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
			unix.Close(lp.wakefd)
			return true
		case op.add:
			op.done <- lp.register(op.s)
		default:
			lp.unregister(op.s)
			op.done <- true
		}
	}
	return false
}

// register adds s to the epoll set under a free slot.
func (lp *pollLoop) register(s *muxSocket) bool {
	var slot int32
	if n := len(lp.free); n > 0 {
		slot = lp.free[n-1]
		lp.free = lp.free[:n-1]
		lp.socks[slot] = s
	} else {
		slot = int32(len(lp.socks))
		lp.socks = append(lp.socks, s)
	}
	s.slot = slot
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: slot}
	if err := unix.EpollCtl(lp.epfd, unix.EPOLL_CTL_ADD, s.pfd, &ev); err != nil {
		lp.unregister(s)
		return false
	}
	return true
}

// unregister takes s out of the epoll set and the table.
func (lp *pollLoop) unregister(s *muxSocket) {
	if s.slot < 0 {
		return
	}
	_ = unix.EpollCtl(lp.epfd, unix.EPOLL_CTL_DEL, s.pfd, nil)
	lp.socks[s.slot] = nil
	lp.free = append(lp.free, s.slot)
	s.slot = -1
}

// addrPortOf reads a sockaddr the kernel wrote (recvmmsg's msg_name).
func addrPortOf(sa []byte) (netip.AddrPort, bool) { return sockaddr.AddrPort(sa) }
