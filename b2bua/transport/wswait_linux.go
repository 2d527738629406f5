package transport

import (
	"context"
	"fmt"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// An idle WebSocket has no goroutine: readWS, once it has read all there
// is, parks the connection in the layer's watcher, an epoll set of parked
// connections, and returns. The epoll set is itself in the runtime's
// netpoller (as media's poll loops do): one goroutine sleeps until some
// parked connection is readable (data, a close, an error), then starts a
// reader for each one. A blocked reader per connection instead held its
// goroutine's stack (4 kB) and its read buffers for the connection's life.
//
// Each connection is armed one-shot: it reports once, then its reader owns
// it until it parks it again. Re-arming a connection that received data
// meanwhile reports it at once (epoll is level-triggered), so nothing is
// lost between the last read and the parking. A connection leaves the set
// by itself when its socket is closed.
//
// Parked connections are idled out by a sweep (every quarter of
// IdleTimeout, at most every 30 s), since no read deadline runs for them.

// watchEvents is how many ready connections one epoll_wait takes.
const watchEvents = 128

// wsWatcher is the Layer's set of parked WebSockets. The zero value is
// ready: the epoll set and its goroutines start with the first parking.
type wsWatcher struct {
	once sync.Once
	err  error // the set could not be made: readers block instead
	epfd int
	file *os.File // epfd, in the runtime's netpoller

	mu     sync.Mutex
	nextID uint64
	parked map[uint64]*Conn // by Conn.pollID
}

// waitReadable parks c until it is readable, then runs readWS on a new
// goroutine; false (c not parked) when the layer is closed or c could not
// be armed. Called by c's reader only, with c idle.
func (l *Layer) waitReadable(c *Conn) bool {
	w := &l.watch
	w.once.Do(func() { w.err = l.startWatcher() })
	if w.err != nil {
		return l.start(func() { l.readWS(c, true) })
	}
	w.mu.Lock()
	if c.closed.Load() {
		// Close ran or runs unwatch; after this check it finds c parked.
		w.mu.Unlock()
		return false
	}
	op := unix.EPOLL_CTL_MOD
	if c.pollID == 0 {
		op = unix.EPOLL_CTL_ADD
		w.nextID++
		c.pollID = w.nextID
	}
	id := c.pollID
	w.parked[id] = c
	w.mu.Unlock()
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLONESHOT, Fd: int32(id), Pad: int32(id >> 32)}
	err := rawControl(c.raw, func(fd int) error { return unix.EpollCtl(w.epfd, op, fd, &ev) })
	if err != nil {
		l.log.Debug("sip websocket park", "conn", c.String(), "err", err)
		w.take(id)
		return false
	}
	return true
}

// unwatch forgets c if it is parked; Close calls it.
func (l *Layer) unwatch(c *Conn) {
	w := &l.watch
	w.mu.Lock()
	defer w.mu.Unlock()
	if c.pollID != 0 {
		delete(w.parked, c.pollID)
	}
}

// take removes the connection parked under id and returns it, or nil if it
// is not parked (closed, swept or taken already). Whoever takes it owns it.
func (w *wsWatcher) take(id uint64) *Conn {
	w.mu.Lock()
	defer w.mu.Unlock()
	c := w.parked[id]
	delete(w.parked, id)
	return c
}

// startWatcher makes the epoll set and starts its goroutines, which end
// when the layer is closed.
func (l *Layer) startWatcher() error {
	w := &l.watch
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return fmt.Errorf("epoll: %w", err)
	}
	// Non-blocking, so that os.NewFile hands it to the netpoller.
	if err := unix.SetNonblock(epfd, true); err != nil {
		unix.Close(epfd)
		return fmt.Errorf("epoll: %w", err)
	}
	w.epfd = epfd
	w.file = os.NewFile(uintptr(epfd), "websocket-epoll")
	w.parked = make(map[uint64]*Conn)
	if !l.start(l.watchLoop) {
		_ = w.file.Close()
		return ErrClosed
	}
	if !l.start(l.sweepIdle) {
		return ErrClosed
	}
	return nil
}

// watchLoop starts a reader for every parked connection that becomes
// readable, until the layer is closed.
func (l *Layer) watchLoop() {
	w := &l.watch
	defer w.file.Close()
	rc, err := w.file.SyscallConn()
	if err != nil {
		l.log.Error("sip websocket watcher", "err", err)
		return
	}
	// Closing the file ends the Read below.
	stop := context.AfterFunc(l.ctx, func() { _ = w.file.Close() })
	defer stop()
	var events [watchEvents]unix.EpollEvent
	n := 0
	take := func(fd uintptr) bool {
		var err error
		n, err = unix.EpollWait(int(fd), events[:], 0)
		return err == nil && n > 0
	}
	for {
		if err := rc.Read(take); err != nil {
			return
		}
		for _, ev := range events[:n] {
			c := w.take(uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32)
			if c == nil {
				continue
			}
			if !l.start(func() { l.readWS(c, true) }) {
				_ = c.Close()
			}
		}
	}
}

// sweepIdle closes parked connections that carried nothing for
// IdleTimeout, until the layer is closed.
func (l *Layer) sweepIdle() {
	w := &l.watch
	idle := l.lim.IdleTimeout
	tick := time.NewTicker(min(max(idle/4, 10*time.Millisecond), 30*time.Second))
	defer tick.Stop()
	var expired []*Conn
	for {
		select {
		case <-l.ctx.Done():
			return
		case now := <-tick.C:
			cutoff := now.Add(-idle).UnixNano()
			w.mu.Lock()
			for id, c := range w.parked {
				if c.lastActive.Load() <= cutoff {
					delete(w.parked, id)
					expired = append(expired, c)
				}
			}
			w.mu.Unlock()
			for i, c := range expired {
				l.stats.idleClosed.Add(1)
				_ = c.Close()
				expired[i] = nil
			}
			expired = expired[:0]
		}
	}
}

// rawControl runs f on the descriptor of the TCP connection under nc
// (through countedConn), which stays open while f runs.
func rawControl(nc net.Conn, f func(fd int) error) error {
	if cc, ok := nc.(*countedConn); ok {
		nc = cc.Conn
	}
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return fmt.Errorf("%T has no descriptor", nc)
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) { ferr = f(int(fd)) }); err != nil {
		return err
	}
	return ferr
}
