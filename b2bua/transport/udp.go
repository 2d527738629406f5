package transport

import (
	"bytes"
	"errors"
	"fmt"
	"hash/fnv"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sbc-project/sbc/media/poll"
)

// listenUDP binds one UDP socket and starts its reader; symmetric is
// reported on every packet (ListenOptions.Symmetric).
// udpReadBuffer is the receive buffer a SIP UDP listener asks for. The
// default (208 kB here) overflowed at 1,000 calls/s offered: a burst of
// INVITEs, 180s and 200s arriving while the reader waited for the CPU
// (a GC cycle, the call goroutines) was dropped by the kernel, and every
// drop is a retransmission 500 ms later (BENCHMARKS.md, third step).
// 8 MB holds about 10,000 SIP messages: seconds of work, past which the
// overload control refuses new calls anyway.
const udpReadBuffer = 8 << 20

func (l *Layer) listenUDP(name, addr string, symmetric bool) (netip.AddrPort, error) {
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("listen UDP on %s: %w", addr, err)
	}
	sock, err := net.ListenUDP("udp", ua)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("listen UDP on %s: %w", addr, err)
	}
	if err := enableRxInfo(sock); err != nil {
		// Still usable: waits are then measured from our read on.
		l.log.Warn("sip udp: no kernel receive timestamps", "addr", addr, "err", err)
	}
	poll.SetReadBuffer(sock, udpReadBuffer)
	li := &listener{name: name, kind: UDP, addr: boundAddr(addr, sock.LocalAddr()), udp: sock, symmetric: symmetric}
	li.raw = newRawSender(sock)
	w := l.startUDPWorkers()
	li.workers = w
	if !l.addListener(li, func() { l.readUDP(li, w) }) {
		w.stop()
		li.raw.close()
		_ = sock.Close()
		return netip.AddrPort{}, fmt.Errorf("listen UDP on %s: %w", addr, ErrClosed)
	}
	return li.addr, nil
}

// readUDP delivers every datagram that holds something other than CRLFs,
// stamped with the time the kernel received it (Packet.Received), and
// counts the datagrams the kernel dropped from the full socket buffer
// (udpReader).
func (l *Layer) readUDP(li *listener, w *udpWorkers) {
	defer w.stop()
	r := &udpReader{l: l, li: li, w: w, finished: make(chan struct{})}
	r.stall = time.AfterFunc(time.Hour, r.takeOver)
	r.stall.Stop()
	t := &readTurn{}
	r.turn.Store(t)
	r.read(t)
	<-r.finished // a reader that took over from this goroutine may read on
}

// readOne reads the next datagram; ok false: nothing to deliver (a
// keepalive, an oversize datagram, a read error), closed: the socket is
// closed. The buffer is one byte larger than MaxMessageSize so that a
// datagram that fills it is known to be oversize (the kernel truncates
// silently).
func (r *udpReader) readOne(buf, oob []byte) (p Packet, ok, closed bool) {
	l, li := r.l, r.li
	n, oobn, _, src, err := li.udp.ReadMsgUDPAddrPort(buf, oob)
	if err != nil {
		if errors.Is(err, net.ErrClosed) || l.ctx.Err() != nil {
			return p, false, true
		}
		// Some systems report ICMP errors on reads; do not spin on them.
		l.log.Debug("sip udp read", "listener", li.name, "err", err)
		select {
		case <-l.ctx.Done():
			return p, false, true
		case <-time.After(time.Millisecond):
		}
		return p, false, false
	}
	arrived, drops, ok := parseRxInfo(oob[:oobn])
	if was := r.dropped.Load(); ok && drops != was {
		l.stats.socketOverflow.Add(uint64(drops - was)) // wraps as the kernel's counter does
		r.dropped.Store(drops)
	}
	if arrived.IsZero() {
		arrived = time.Now()
	}
	if n > l.lim.MaxMessageSize {
		l.stats.oversize.Add(1)
		return p, false, false
	}
	if isKeepalive(buf[:n]) {
		l.stats.keepalives.Add(1)
		return p, false, false
	}
	return Packet{
		Data:      bytes.Clone(buf[:n]),
		Src:       netip.AddrPortFrom(src.Addr().Unmap(), src.Port()),
		Local:     li.addr,
		Kind:      UDP,
		Listener:  li.name,
		Symmetric: li.symmetric,
		Received:  arrived,
	}, true, false
}

// udpWorkers share the handling of one UDP listener's datagrams, so that a
// single socket's traffic uses every core (a stream connection has a
// goroutine of its own already). A datagram goes to the slot of its
// Call-ID, so the messages of one call and of one transaction keep their
// order while different calls, even from one source (a trunk, a load
// generator), are handled in parallel; one without a readable Call-ID goes
// by its source address. Each slot has a worker; the reader delivers a
// datagram itself when its slot has nothing to do (udpReader.handle).
type udpWorkers struct {
	slots []udpSlot
	wg    sync.WaitGroup // the workers: waited for by stop, within the reader's own slot of Layer.wg
	// inline counts the datagrams the reader delivered itself.
	inline atomic.Uint64
}

// udpSlot is one worker's queue. run is held by whoever delivers one of
// the slot's datagrams (its worker, or the reader), so that one is
// delivered at a time; pending counts those queued and not yet
// delivered, so that the reader delivers one itself only after every
// earlier one of the slot.
type udpSlot struct {
	q       chan Packet
	pending atomic.Int32
	run     sync.Mutex
}

// udpQueueLen bounds each worker's queue: past it the datagram is dropped
// and counted (Stats.Dropped.QueueFull), as the kernel would drop it from a
// full socket buffer.
const udpQueueLen = 1024

// startUDPWorkers starts one worker per CPU, each delivering its queue in
// order until stop closes it. They run before Listen returns (a caller
// counting goroutines sees them all) and are waited for by the reader.
func (l *Layer) startUDPWorkers() *udpWorkers {
	w := &udpWorkers{slots: make([]udpSlot, runtime.GOMAXPROCS(0))}
	for i := range w.slots {
		s := &w.slots[i]
		s.q = make(chan Packet, udpQueueLen)
		w.wg.Go(func() {
			for p := range s.q {
				s.run.Lock()
				l.deliver(p)
				s.run.Unlock()
				s.pending.Add(-1)
			}
		})
	}
	return w
}

// slot is the slot of p's Call-ID, or of its source.
func (w *udpWorkers) slot(p *Packet) *udpSlot {
	h := fnv.New32a()
	if id := callID(p.Data); id != nil {
		_, _ = h.Write(id)
	} else {
		a := p.Src.Addr().As16()
		_, _ = h.Write(a[:])
		_, _ = h.Write([]byte{byte(p.Src.Port() >> 8), byte(p.Src.Port())})
	}
	return &w.slots[h.Sum32()%uint32(len(w.slots))]
}

// hand queues p for its slot's worker, or drops it when that queue is
// full.
func (w *udpWorkers) hand(l *Layer, s *udpSlot, p Packet) {
	s.pending.Add(1)
	select {
	case s.q <- p:
	default:
		s.pending.Add(-1)
		l.stats.queueFull.Add(1)
	}
}

// callID finds the value of the Call-ID header (or its compact form i) in
// a message's raw header lines, trimmed; nil when there is none. It reads
// only as far as the header: the parser judges the message later.
func callID(msg []byte) []byte {
	for rest := msg; ; {
		i := bytes.Index(rest, []byte("\r\n"))
		if i <= 0 {
			return nil // end of the headers (or of the datagram)
		}
		line := rest[:i]
		rest = rest[i+2:]
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		name = bytes.TrimRight(name, " \t")
		if bytes.EqualFold(name, []byte("Call-ID")) || bytes.EqualFold(name, []byte("i")) {
			return bytes.TrimSpace(value)
		}
	}
}

// stop lets the workers finish what is queued and waits for them.
func (w *udpWorkers) stop() {
	for i := range w.slots {
		close(w.slots[i].q)
	}
	w.wg.Wait()
}
