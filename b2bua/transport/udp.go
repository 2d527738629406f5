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
// counts the datagrams the kernel dropped from the full socket buffer.
// The buffer is one byte larger than MaxMessageSize so that a datagram that
// fills it is known to be oversize (the kernel truncates silently).
func (l *Layer) readUDP(li *listener, w *udpWorkers) {
	defer w.stop()
	buf := make([]byte, l.lim.MaxMessageSize+1)
	oob := make([]byte, rxInfoSize)
	var dropped uint32 // the socket's drop count, as last reported
	for {
		n, oobn, _, src, err := li.udp.ReadMsgUDPAddrPort(buf, oob)
		if err != nil {
			if errors.Is(err, net.ErrClosed) || l.ctx.Err() != nil {
				return
			}
			// Some systems report ICMP errors on reads; do not spin on them.
			l.log.Debug("sip udp read", "listener", li.name, "err", err)
			select {
			case <-l.ctx.Done():
				return
			case <-time.After(time.Millisecond):
			}
			continue
		}
		arrived, drops, ok := parseRxInfo(oob[:oobn])
		if ok && drops != dropped {
			l.stats.socketOverflow.Add(uint64(drops - dropped)) // wraps as the kernel's counter does
			dropped = drops
		}
		if arrived.IsZero() {
			arrived = time.Now()
		}
		if n > l.lim.MaxMessageSize {
			l.stats.oversize.Add(1)
			continue
		}
		if isKeepalive(buf[:n]) {
			l.stats.keepalives.Add(1)
			continue
		}
		w.hand(l, Packet{
			Data:      bytes.Clone(buf[:n]),
			Src:       netip.AddrPortFrom(src.Addr().Unmap(), src.Port()),
			Local:     li.addr,
			Kind:      UDP,
			Listener:  li.name,
			Symmetric: li.symmetric,
			Received:  arrived,
		})
	}
}

// udpWorkers share the handling of one UDP listener's datagrams, so that a
// single socket's traffic uses every core (a stream connection has a
// goroutine of its own already). A datagram goes to the worker of its
// Call-ID, so the messages of one call and of one transaction keep their
// order while different calls, even from one source (a trunk, a load
// generator), are handled in parallel; one without a readable Call-ID goes
// by its source address.
type udpWorkers struct {
	queues []chan Packet
	wg     sync.WaitGroup // the workers: waited for by stop, within the reader's own slot of Layer.wg
}

// udpQueueLen bounds each worker's queue: past it the datagram is dropped
// and counted (Stats.Dropped.QueueFull), as the kernel would drop it from a
// full socket buffer.
const udpQueueLen = 1024

// startUDPWorkers starts one worker per CPU, each delivering its queue in
// order until stop closes it. They run before Listen returns (a caller
// counting goroutines sees them all) and are waited for by the reader.
func (l *Layer) startUDPWorkers() *udpWorkers {
	w := &udpWorkers{queues: make([]chan Packet, runtime.GOMAXPROCS(0))}
	for i := range w.queues {
		q := make(chan Packet, udpQueueLen)
		w.queues[i] = q
		w.wg.Go(func() {
			for p := range q {
				l.deliver(p)
			}
		})
	}
	return w
}

// hand queues p for the worker of its Call-ID, or drops it when that
// queue is full.
func (w *udpWorkers) hand(l *Layer, p Packet) {
	h := fnv.New32a()
	if id := callID(p.Data); id != nil {
		_, _ = h.Write(id)
	} else {
		a := p.Src.Addr().As16()
		_, _ = h.Write(a[:])
		_, _ = h.Write([]byte{byte(p.Src.Port() >> 8), byte(p.Src.Port())})
	}
	select {
	case w.queues[h.Sum32()%uint32(len(w.queues))] <- p:
	default:
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
	for _, q := range w.queues {
		close(q)
	}
	w.wg.Wait()
}
