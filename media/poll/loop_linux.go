package poll

import (
	"fmt"
	"net/netip"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Why loops, and why this shape (measured on the relay, media's
// BENCHMARKS.md): a goroutine per socket, blocked in a read, costs a
// wake-up through the runtime's netpoller and scheduler for nearly every
// packet (a call's socket gets one every 20 ms). A loop blocked in
// epoll_wait instead holds a thread in a system call, which the runtime's
// sysmon keeps retaking (15 % of the relay's CPU). Sleeping after each
// batch, so that one wake-up serves more packets, measured worse: the
// timer's wake-ups cost more than the netpoller's. So: an epoll set in the
// netpoller, served as soon as it is ready, no batching window.

// Handler takes the datagrams a loop reads from one socket.
type Handler interface {
	// Datagram is called on the loop's goroutine for each datagram read
	// from the socket: from its source, read at now (the Engine's clock,
	// read once per wake-up). b is the loop's send batch, nil without
	// io_uring. pkt is valid until b is flushed (with b nil: until
	// Datagram returns); the handler may change it in place.
	Datagram(pkt []byte, from netip.AddrPort, now int64, b *Batch)
}

// Socket is a descriptor a loop reads, and where its datagrams go.
type Socket struct {
	// FD is the descriptor. While the socket is in a loop, the loop holds
	// the owner's reference: Close hands it the removal.
	FD FD
	// Handler takes the datagrams. Set before Add.
	Handler Handler
	// Done, if set, is called on the loop's goroutine once the loop let
	// go of the socket (after Close, or when the engine stops), exactly
	// once for every Add that returned true.
	Done func()

	lp    *Loop // the loop reading the socket; nil before Add. Owner's.
	depth int   // receives per io_uring round (adaptive). The loop's.
	// slot and full share 8 bytes: a Socket is 72 bytes, and the media's
	// UDP socket that embeds it 96, in that size class (four a call).
	slot int32 // index in the loop's table; -1 when not in it. The loop's.
	full bool  // its last round gave a datagram for each receive. The loop's.
}

// Close stops reading and sending: the descriptor is closed once the loop
// has let go of it and no send is in flight. Idempotent.
func (s *Socket) Close() {
	if !s.FD.Shut() {
		return
	}
	// The loop drops the owner's reference once it no longer reads the
	// socket; without a loop, nothing reads it.
	if s.lp != nil && s.lp.post(op{s: s}) {
		return
	}
	s.FD.Unref()
}

// Config configures an Engine.
type Config struct {
	Loops     int          // loops to start; 0: GOMAXPROCS
	NoRing    bool         // read with recvmmsg and let handlers send at once (tests)
	BufSize   int          // read buffer per datagram; 0: 2048
	ReadBatch int          // datagrams one recvmmsg takes (without io_uring), ≤ Slots; 0: 8
	Clock     func() int64 // what a wake-up's datagrams are stamped with; nil: 0
}

// Engine is a set of poll loops, started on first use.
type Engine struct {
	cfg     Config
	mu      sync.Mutex
	loops   []*Loop
	stopped bool
}

// NewEngine returns an engine; its loops start with the first Loop call.
func NewEngine(cfg Config) *Engine {
	if cfg.BufSize <= 0 {
		cfg.BufSize = 2048
	}
	if cfg.ReadBatch <= 0 || cfg.ReadBatch > Slots {
		cfg.ReadBatch = min(max(cfg.ReadBatch, 8), Slots)
	}
	return &Engine{cfg: cfg}
}

// Loop returns loop i (modulo their number), starting the loops on first
// use. After Stop it returns a stopped loop, which refuses sockets.
func (e *Engine) Loop(i int) *Loop {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.loops == nil {
		n := e.cfg.Loops
		if n <= 0 {
			n = runtime.GOMAXPROCS(0)
		}
		for range n {
			lp, err := newLoop(e.cfg)
			switch {
			case e.stopped && err == nil:
				lp.shutdown()
				fallthrough
			case err != nil:
				// A stopped loop, which refuses sockets: without an epoll
				// set (the descriptor limit reached) a socket is not read,
				// as if nothing came.
				lp = &Loop{stopped: true}
			default:
				go lp.run()
			}
			e.loops = append(e.loops, lp)
		}
	}
	return e.loops[i%len(e.loops)]
}

// Stop ends the loops and waits for them. Sockets still in them are let
// go (their Done is called), not closed: their owners close them.
func (e *Engine) Stop() {
	e.mu.Lock()
	e.stopped = true
	loops := e.loops
	e.mu.Unlock()
	for _, lp := range loops {
		if lp.post(op{quit: true}) {
			<-lp.done
		}
	}
}

// wakeSlot is the epoll data of a loop's eventfd.
const wakeSlot = -1

// maxEvents is how many ready sockets one epoll_wait returns at most.
const maxEvents = 256

// Loop is one poll loop: an epoll set, the sockets in it, and the
// buffers their datagrams are read into.
type Loop struct {
	epfd, wakefd int
	file         *os.File // epfd in the runtime's netpoller, once run
	done         chan struct{}
	cfg          Config

	mu      sync.Mutex
	ops     []op // for the loop to apply, in order
	woken   bool // wakefd was written and the loop has not run ops since
	stopped bool // no op is taken any more

	// busy is odd while the loop handles a wake-up's datagrams (Quiesce).
	busy atomic.Uint64

	// Owned by the loop's goroutine.
	socks  []*Socket // by slot, the epoll data of each socket
	free   []int32
	events [maxEvents]unix.EpollEvent
	// The read buffers: with io_uring, readRing fills them from the ready
	// sockets, and the packets stay there until the batch is flushed;
	// without, read (recvmmsg, the handlers send at once) fills the
	// first ReadBatch.
	bufs  [Slots][]byte
	names [Slots][SockaddrLen]byte
	iovs  [Slots]unix.Iovec
	msgs  [Slots]mmsghdr
	ready []*Socket
	from  [Slots]*Socket // the socket each readRing buffer is read from
	out   *Batch         // nil: no io_uring
	recvs uint64         // io_uring receives submitted (tests)
	// the sources of readRing's datagrams, and what Touchers read (touchAll)
	srcs    [Slots]netip.AddrPort
	touched uintptr
}

// mmsghdr is struct mmsghdr of recvmmsg(2).
type mmsghdr struct {
	hdr unix.Msghdr
	n   uint32
}

// op adds s to the loop or removes it; quit ends the loop; sync only
// wakes the loop (done is closed once it ran).
type op struct {
	s    *Socket
	add  bool
	quit bool
	sync chan struct{}
}

func newLoop(cfg Config) (*Loop, error) {
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
	lp := &Loop{epfd: epfd, wakefd: wakefd, done: make(chan struct{}), cfg: cfg, ready: make([]*Socket, 0, maxEvents)}
	if !cfg.NoRing {
		// Without io_uring the handlers send as they go.
		lp.out, _ = NewBatch()
	}
	slab := make([]byte, Slots*cfg.BufSize)
	for i := range lp.msgs {
		lp.bufs[i] = slab[i*cfg.BufSize : (i+1)*cfg.BufSize : (i+1)*cfg.BufSize]
		lp.iovs[i].Base = &lp.bufs[i][0]
		lp.iovs[i].SetLen(cfg.BufSize)
		h := &lp.msgs[i].hdr
		h.Name = &lp.names[i][0]
		h.Iov = &lp.iovs[i]
		h.SetIovlen(1)
	}
	return lp, nil
}

// Batched reports whether the loop reads and sends through io_uring.
func (lp *Loop) Batched() bool { return lp.out != nil }

// Batch is the loop's send batch, nil without io_uring. Only handlers
// running on the loop may queue in it.
func (lp *Loop) Batch() *Batch { return lp.out }

// Add has the loop read s; false if the loop is stopped (then s is not
// read, and Done is not called). s's FD must be open.
func (lp *Loop) Add(s *Socket) bool {
	s.slot = -1
	if !lp.post(op{s: s, add: true}) {
		return false
	}
	s.lp = lp
	return true
}

// Sockets returns how many sockets the loop reads, after a round trip
// through the loop (tests).
func (lp *Loop) Sockets() int {
	done := make(chan struct{})
	if lp.post(op{sync: done}) {
		<-done
	}
	n := 0
	for _, s := range lp.socks {
		if s != nil {
			n++
		}
	}
	return n
}

// Quiesce returns once the loop is done with any datagram it was
// handling when Quiesce was called: a handler that stops taking
// datagrams (one that switches where they go) and then calls Quiesce
// knows no datagram goes the old way any more, its sends flushed. It
// costs an atomic load when the loop is waiting, a round trip through
// the loop when it is busy.
func (lp *Loop) Quiesce() {
	if lp.busy.Load()&1 == 0 {
		return
	}
	done := make(chan struct{})
	if lp.post(op{sync: done}) {
		<-done
	} else if lp.done != nil {
		<-lp.done // stopping: its last wake-up ends with the loop
	}
}

func (lp *Loop) post(o op) bool {
	lp.mu.Lock()
	defer lp.mu.Unlock()
	if lp.stopped {
		return false
	}
	lp.ops = append(lp.ops, o)
	if o.quit {
		lp.stopped = true
	}
	if !lp.woken {
		lp.woken = true
		one := [8]byte{1}
		// Cannot fail but by overflowing the counter, which woken prevents.
		_, _ = unix.Write(lp.wakefd, one[:])
	}
	return true
}

// run waits for ready sockets and reads them until quit.
func (lp *Loop) run() {
	defer close(lp.done)
	lp.file = os.NewFile(uintptr(lp.epfd), "epoll")
	rc, err := lp.file.SyscallConn()
	if err != nil {
		panic(fmt.Sprintf("poll: epoll set: %v", err))
	}
	// take returns false to wait for the netpoller, true once the loop
	// must end. It does not return after each batch: a new Read would
	// reset the set's readiness and need an epoll_wait that finds
	// nothing to learn that nothing came meanwhile (one system call per
	// wake-up). Within one Read, any packet arriving on a socket of the
	// set after epoll_wait returned makes the set ready again, so the
	// netpoller wakes the loop (or does not let it sleep) for it. What
	// does not: sockets epoll_wait had no room to report, and datagrams
	// a read left behind (level-triggered epoll keeps reporting them,
	// but the set signals no new readiness for them); take serves those
	// before waiting.
	take := func(fd uintptr) bool {
		recheck := false
		for {
			r1, _, e := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, fd, uintptr(unsafe.Pointer(&lp.events[0])), maxEvents, 0, 0, 0)
			if e != 0 || r1 == 0 {
				return false // wait for the set to become ready
			}
			lp.busy.Add(1)
			quit, more := lp.handle(int(r1), recheck)
			lp.busy.Add(1)
			if quit {
				return true
			}
			if !more && int(r1) < maxEvents {
				return false
			}
			recheck = more
		}
	}
	if err := rc.Read(take); err != nil {
		panic(fmt.Sprintf("poll: epoll set: %v", err))
	}
	lp.file.Close()
}

// handle reads the sockets of n ready events and applies the queued ops
// if the loop was woken. quit: the loop must end; more: a socket may
// hold datagrams its read left behind. recheck: the events are the second
// look that more asked for, so a socket whose last round was full and is
// ready again does hold a backlog: it gets twice the receives.
func (lp *Loop) handle(n int, recheck bool) (quit, more bool) {
	wake := false
	var now int64
	if lp.cfg.Clock != nil {
		// One clock read for the batch: its packets were all read within
		// microseconds.
		now = lp.cfg.Clock()
	}
	ready := lp.ready[:0]
	for i := range n {
		slot := lp.events[i].Fd
		if slot == wakeSlot {
			wake = true
			continue
		}
		s := lp.socks[slot]
		if lp.out != nil {
			if recheck && s.full {
				s.depth = min(2*s.depth, maxDepth)
			}
			ready = append(ready, s)
		} else if lp.read(s, now) {
			more = true
		}
	}
	if len(ready) > 0 && lp.readRing(ready, now) {
		more = true
	}
	if lp.out != nil {
		lp.out.Flush()
	}
	// Removals only after the batch: no event of it refers to a socket
	// gone from the table.
	return wake && lp.control(), more
}

// read takes what waits on s, up to ReadBatch datagrams, and hands it to
// s's handler. It reports whether it took a full batch: more may wait,
// and level-triggered epoll reports s again if so.
func (lp *Loop) read(s *Socket, now int64) (full bool) {
	batch := lp.cfg.ReadBatch
	for i := range batch {
		lp.msgs[i].hdr.Namelen = SockaddrLen
	}
	r1, _, e := unix.RawSyscall6(unix.SYS_RECVMMSG, uintptr(s.FD.fd), uintptr(unsafe.Pointer(&lp.msgs[0])), uintptr(batch),
		unix.MSG_DONTWAIT, 0, 0)
	if e != 0 {
		// EAGAIN (nothing after all) or an error about one datagram: the
		// socket stays usable.
		return false
	}
	for i := range int(r1) {
		m := &lp.msgs[i]
		src, ok := AddrPortOf(lp.names[i][:min(int(m.hdr.Namelen), SockaddrLen)])
		if !ok {
			continue
		}
		s.Handler.Datagram(lp.bufs[i][:min(int(m.n), lp.cfg.BufSize)], src, now, nil)
	}
	return int(r1) == batch
}

// control applies the queued ops; true when the loop must end.
func (lp *Loop) control() bool {
	var buf [8]byte
	_, _ = unix.Read(lp.wakefd, buf[:])
	lp.mu.Lock()
	ops := lp.ops
	lp.ops = nil
	lp.woken = false
	lp.mu.Unlock()
	for _, o := range ops {
		switch {
		case o.quit:
			lp.shutdown()
			return true
		case o.sync != nil:
			close(o.sync)
		case o.add:
			lp.register(o.s)
		default:
			// The reference first: once Done ran, the owner may check
			// the descriptor is closed.
			lp.unregister(o.s)
			o.s.FD.Unref()
			if o.s.Done != nil {
				o.s.Done()
			}
		}
	}
	return false
}

// register adds s to the epoll set under a free slot.
func (lp *Loop) register(s *Socket) {
	var slot int32
	if n := len(lp.free); n > 0 {
		slot = lp.free[n-1]
		lp.free = lp.free[:n-1]
		lp.socks[slot] = s
	} else {
		slot = int32(len(lp.socks))
		lp.socks = append(lp.socks, s)
	}
	s.slot, s.depth = slot, 1
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: slot}
	// Out of memory for the epoll set: the socket is not read, as if
	// nothing ever came, but stays in the table, to be let go of as any.
	_ = unix.EpollCtl(lp.epfd, unix.EPOLL_CTL_ADD, s.FD.fd, &ev)
}

// unregister takes s out of the epoll set and the table. The owner's
// reference keeps the descriptor open until then.
func (lp *Loop) unregister(s *Socket) {
	if s.slot < 0 {
		return
	}
	_ = unix.EpollCtl(lp.epfd, unix.EPOLL_CTL_DEL, s.FD.fd, nil)
	lp.socks[s.slot] = nil
	lp.free = append(lp.free, s.slot)
	s.slot = -1
}

// shutdown lets go of every socket still in the table and closes the
// loop's descriptors.
func (lp *Loop) shutdown() {
	for _, s := range lp.socks {
		if s != nil {
			lp.unregister(s)
			if s.Done != nil {
				s.Done()
			}
		}
	}
	if lp.file == nil { // else run closes it, outside its Read
		unix.Close(lp.epfd)
	}
	unix.Close(lp.wakefd)
	if lp.out != nil {
		lp.out.Close()
	}
}
