package hep

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultQueueSize is how many encoded packets a Sender holds for its
// collector when Config.QueueSize is zero; more are dropped and counted.
const DefaultQueueSize = 4096

// Config configures a Sender.
type Config struct {
	// Addr is the collector's host:port; packets go to it over UDP.
	Addr string
	// CaptureID identifies this SBC node to the collector (chunk 0x000c).
	CaptureID uint32
	// AuthKey is the collector's password (chunk 0x000e); "" sends none.
	AuthKey string
	// QueueSize bounds the packets waiting to be sent; 0 means
	// DefaultQueueSize.
	QueueSize int
	// Log receives the collector going unreachable and coming back, once
	// each; nil discards.
	Log *slog.Logger
}

// Stats are a Sender's counters since NewSender.
type Stats struct {
	Sent    uint64 // packets written to the socket
	Dropped uint64 // packets dropped: the queue was full, or too large
	Errors  uint64 // socket writes that failed (collector unreachable)
}

// Sender sends HEP3 packets to one collector over UDP. Send never blocks:
// packets are encoded on the caller's goroutine and written by the
// Sender's own; when the queue is full they are dropped and counted, so a
// slow or absent collector never delays signaling. Safe for concurrent
// use; Close stops it.
type Sender struct {
	cfg   Config
	log   *slog.Logger
	conn  *net.UDPConn
	queue chan job
	done  chan struct{}
	wg    sync.WaitGroup
	once  sync.Once

	sent, dropped, errs atomic.Uint64
}

// NewSender resolves cfg.Addr and opens the UDP socket toward it. It
// fails when the address does not resolve.
func NewSender(cfg Config) (*Sender, error) {
	raddr, err := net.ResolveUDPAddr("udp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("hep collector %q: %w", cfg.Addr, err)
	}
	conn, err := net.DialUDP("udp", nil, raddr)
	if err != nil {
		return nil, fmt.Errorf("hep collector %q: %w", cfg.Addr, err)
	}
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = DefaultQueueSize
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Sender{cfg: cfg, log: log, conn: conn, queue: make(chan job, cfg.QueueSize), done: make(chan struct{})}
	s.wg.Add(1)
	go s.run()
	return s, nil
}

// SIP queues one SIP message as sent from src to dst at time at.
// correlation links the legs of a call; transport is TransportUDP or
// TransportTCP. It reports false when the packet was dropped.
func (s *Sender) SIP(msg []byte, src, dst netip.AddrPort, transport uint8, at time.Time, correlation string) bool {
	return s.Send(Packet{Src: src, Dst: dst, Transport: transport, Time: at, Type: ProtoSIP,
		Correlation: correlation, Payload: msg})
}

// RTCP queues one RTCP compound packet as sent from src to dst, to be
// converted to the JSON report collectors expect (RTCPReport) on the
// Sender's goroutine: the caller, the media relay, pays a look at the
// packet's headers and, for a packet it queues, a copy. A packet that
// holds no sender or receiver report (feedback alone: NACK, PLI,
// transport-cc) is not sent; it reports false then, and when the packet
// was dropped. One that fails to parse there is counted as dropped.
func (s *Sender) RTCP(pkt []byte, src, dst netip.AddrPort, at time.Time, correlation string) bool {
	if !HasReport(pkt) {
		return false
	}
	return s.enqueue(job{rtcp: &Packet{Src: src, Dst: dst, Transport: TransportUDP, Time: at, Type: ProtoRTCP,
		Correlation: correlation, Payload: bytes.Clone(pkt)}})
}

// job is one queued packet: encoded, or an RTCP packet to convert and
// encode first.
type job struct {
	b    []byte
	rtcp *Packet // Payload: the RTCP compound packet
}

// Send queues p with the Sender's capture id and auth key. p.Payload is
// copied; the caller may reuse it. It reports false when the packet was
// dropped (queue full, too large, Sender closed).
func (s *Sender) Send(p Packet) bool {
	p.CaptureID, p.AuthKey = s.cfg.CaptureID, s.cfg.AuthKey
	b, err := p.Append(make([]byte, 0, 128+len(p.Payload)))
	if err != nil {
		s.dropped.Add(1)
		return false
	}
	return s.enqueue(job{b: b})
}

// enqueue queues j unless the queue is full or the Sender closed, which
// count it as dropped.
func (s *Sender) enqueue(j job) bool {
	select {
	case <-s.done:
		s.dropped.Add(1)
		return false
	default:
	}
	select {
	case s.queue <- j:
		return true
	default:
		s.dropped.Add(1)
		return false
	}
}

// run writes queued packets until Close.
func (s *Sender) run() {
	defer s.wg.Done()
	failing := false
	for {
		select {
		case <-s.done:
			return
		case j := <-s.queue:
			b, ok := s.encode(j)
			if !ok {
				s.dropped.Add(1)
				continue
			}
			_, err := s.conn.Write(b)
			switch {
			case err != nil:
				s.errs.Add(1)
				if !failing && !errors.Is(err, net.ErrClosed) {
					failing = true
					s.log.Warn("hep collector unreachable", "addr", s.cfg.Addr, "err", err)
				}
			default:
				s.sent.Add(1)
				if failing {
					failing = false
					s.log.Info("hep collector reachable again", "addr", s.cfg.Addr)
				}
			}
		}
	}
}

// encode returns j's packet as sent: an RTCP one converted to its report
// and encoded with the Sender's capture id and auth key.
func (s *Sender) encode(j job) ([]byte, bool) {
	if j.rtcp == nil {
		return j.b, true
	}
	p := j.rtcp
	report, err := RTCPReport(p.Payload)
	if err != nil {
		return nil, false
	}
	p.Payload, p.CaptureID, p.AuthKey = report, s.cfg.CaptureID, s.cfg.AuthKey
	b, err := p.Append(make([]byte, 0, 128+len(report)))
	return b, err == nil
}

// Stats returns the counters.
func (s *Sender) Stats() Stats {
	return Stats{Sent: s.sent.Load(), Dropped: s.dropped.Load(), Errors: s.errs.Load()}
}

// Close stops the Sender; packets still queued are dropped. Idempotent.
func (s *Sender) Close() error {
	var err error
	s.once.Do(func() {
		close(s.done)
		s.wg.Wait()
		err = s.conn.Close()
	})
	return err
}
