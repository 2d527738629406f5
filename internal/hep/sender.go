package hep

import (
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
	queue chan []byte
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
	s := &Sender{cfg: cfg, log: log, conn: conn, queue: make(chan []byte, cfg.QueueSize), done: make(chan struct{})}
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

// RTCP queues one RTCP compound packet as sent from src to dst, converted
// to the JSON report collectors expect (RTCPReport). A packet that holds
// no sender or receiver report is not sent; it reports false then, and
// when the packet was dropped.
func (s *Sender) RTCP(pkt []byte, src, dst netip.AddrPort, at time.Time, correlation string) bool {
	report, err := RTCPReport(pkt)
	if err != nil {
		return false
	}
	return s.Send(Packet{Src: src, Dst: dst, Transport: TransportUDP, Time: at, Type: ProtoRTCP,
		Correlation: correlation, Payload: report})
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
	select {
	case <-s.done:
		s.dropped.Add(1)
		return false
	default:
	}
	select {
	case s.queue <- b:
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
		case b := <-s.queue:
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
