// Package media is the SBC's media plane: one Session per call, with two
// sides, A (the caller's leg) and B (the callee's leg).
//
// A Session is the SDP seam of the B2BUA. Every offer and answer the B2BUA
// handles passes through Session.Offer and Session.Answer, which rewrite it
// so that each side sees only the SBC's address and ports: the SBC opens its
// own sockets facing each side and relays RTP and RTCP between them, so
// topology hiding holds for media as it does for signaling.
//
// Each side of each m-line is an endpoint: the SBC's termination of that
// stream toward one side. A plain RTP/AVP(F) or SDES-SRTP endpoint has an
// RTP/RTCP port pair, picked at random, with symmetric-RTP latching: which
// source a port takes, and what it refuses, is decided in latch.go. A
// WebRTC endpoint (ICE-lite, DTLS-SRTP, rtcp-mux, BUNDLE) is a view of its
// side's transport, whose sources ICE validates.
//
// The relay's hot path allocates nothing per packet, takes no shared lock
// and does no logging. On Linux a few poll loops per Manager, one per CPU,
// read every plain RTP and RTCP socket (poll_linux.go) and write to the
// far side's socket toward an address held in an atomic pointer;
// elsewhere one goroutine per socket does the same.
package media

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/sbc-project/sbc/media/poll"
	"github.com/sbc-project/sbc/media/wrtc"
)

// Sentinel errors. Callers test them with errors.Is.
var (
	// ErrBadSDP marks an SDP body the session cannot use: unparsable, or
	// without a single usable m-line. The B2BUA answers 488 (or 400) to it.
	ErrBadSDP = errors.New("media: unusable SDP")
	// ErrNoPorts means the RTP port range has no free pair left; the call
	// cannot get media (the B2BUA answers 503).
	ErrNoPorts = errors.New("media: no free RTP ports")
	// ErrNoOffer means Answer was called on a side that has no offer from
	// the other side to answer.
	ErrNoOffer = errors.New("media: answer without an offer")
	// ErrClosed means the session (or its manager) is closed.
	ErrClosed = errors.New("media: session closed")
	// ErrNoCodec means an offer has no codec the other side can use; the
	// B2BUA answers 488 with a Warning.
	ErrNoCodec = errors.New("media: no common codec")
	// ErrNoEvents means a side negotiated no telephone-event, so DTMF
	// cannot be sent to it as RFC 4733.
	ErrNoEvents = errors.New("media: no telephone-event negotiated")
)

// DefaultHandshakeTimeout bounds ICE + DTLS toward a browser when
// Config.HandshakeTimeout is zero.
const DefaultHandshakeTimeout = 10 * time.Second

// DefaultStateEvery is Config.StateEvery's default.
const DefaultStateEvery = time.Minute

// DefaultQuarantine is how long a released port pair waits before reuse
// when Config.Quarantine is zero: late packets of the old call must not
// reach the next one.
const DefaultQuarantine = 2 * time.Second

// Config configures a Manager. Addrs and PortMin/PortMax are required.
type Config struct {
	// Addrs are the SBC's media addresses, at most one per IP family (a
	// dual-stack SBC has an IPv4 and an IPv6 one). Each side of a call
	// gets the address of the family its SDP, or else its signaling, uses
	// (IPv4 ⇄ IPv6 interworking); a side whose family has none gets the
	// first.
	Addrs []Addr
	// PortMin and PortMax bound the UDP port range, inclusive. RTP uses an
	// even port and RTCP the next odd one, so the range must hold at least
	// one such pair.
	PortMin, PortMax int
	// Timeout is how long a session may receive no RTP from either side,
	// while not on hold, before its OnTimeout callback runs. 0 disables.
	Timeout time.Duration
	// Quarantine is how long a released port pair stays unused. 0 means
	// DefaultQuarantine.
	Quarantine time.Duration
	// WebRTCPort is one UDP port (and, for ICE-TCP, the TCP port of the
	// same number) shared by the WebRTC media of every session. 0: each
	// WebRTC side takes a port from the range.
	WebRTCPort int
	// HandshakeTimeout bounds ICE + DTLS toward a browser. 0 means
	// DefaultHandshakeTimeout.
	HandshakeTimeout time.Duration
	// RTCP, when set, hears of every RTCP compound packet the sessions
	// receive from a side and send toward one (see RTCPPacket), on the
	// relay's path: it must not block, and must copy what it keeps. Nil
	// costs the relay nothing.
	RTCP func(RTCPPacket)
	// StateEvery is how often an answered session reports EventState
	// even when nothing changed, so that a replicated state is never
	// older than this (Restore estimates from its age what the dead node
	// sent since). 0 means DefaultStateEvery.
	StateEvery time.Duration
	// NoTranscoding turns transcoding off: offers carry only the codecs
	// both sides allow (SideOptions.Codecs), as a relay. The zero value
	// transcodes when the sides share no codec (transcode.go).
	NoTranscoding bool
	// NoState says nobody takes the sessions' State (calls are not
	// replicated): a session then keeps no copy of the SDP bodies for it
	// and reports no periodic EventState (StateEvery), a timer and two
	// SDP texts less a call; State lacks the bodies. The zero value keeps
	// both.
	NoState bool
	// MaxTranscoded caps the sessions that transcode at once; an offer
	// that could only be carried by transcoding past it fails with
	// ErrTranscodeCapacity. 0: no cap.
	MaxTranscoded int
}

// Manager owns the RTP port range and the sessions using it. It is safe for
// concurrent use.
type Manager struct {
	cfg  Config
	log  *slog.Logger
	pool *portPool
	cert tls.Certificate // the DTLS certificate of every WebRTC side
	mux  []*wrtc.Mux     // the shared WebRTC socket of each of cfg.Addrs; nil without WebRTCPort
	eng  engine          // reads the plain RTP and RTCP sockets

	relay relayCounter
	plans planCache      // flow plans sessions share (plans.go)
	tc    transcodeSlots // transcoding sessions (transcode_flow.go)

	muxOnce sync.Once

	mu       sync.Mutex
	sessions map[*Session]struct{}
	closed   bool
	// restoredMuxes are the shared WebRTC sockets opened for restored
	// sessions on another node's address (restore.go).
	restoredMuxes map[netip.AddrPort]*wrtc.Mux
	// watch polls the sessions' watchdogs (watchdog.go) while watching:
	// from the first session on, with Config.Timeout set, until a poll
	// finds none. watchBuf is the polls' copy of sessions, touched only
	// by the poll.
	watch    *time.Timer
	watching bool
	watchBuf []*Session
}

// NewManager checks cfg and returns a Manager with no sessions. It binds no
// socket until a session needs one.
func NewManager(cfg Config, log *slog.Logger) (*Manager, error) {
	if err := cfg.normalize(); err != nil {
		return nil, fmt.Errorf("media config: %w", err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cert, err := wrtc.GenerateCertificate()
	if err != nil {
		return nil, fmt.Errorf("media dtls certificate: %w", err)
	}
	m := &Manager{
		cfg:      cfg,
		log:      log,
		pool:     newPortPool(cfg.PortMin, cfg.PortMax, cfg.Quarantine),
		cert:     cert,
		sessions: make(map[*Session]struct{}),
		relay:    relayCounter{live: make(map[*stream]struct{})},
	}
	m.tc.max = cfg.MaxTranscoded
	if cfg.WebRTCPort != 0 {
		for _, a := range cfg.Addrs {
			mux, err := openSharedMux(a.Bind, cfg.WebRTCPort, log, m.eng.poller())
			if err != nil {
				m.closeMuxes()
				return nil, err
			}
			m.mux = append(m.mux, mux)
		}
	}
	return m, nil
}

// openSharedMux binds the shared WebRTC port on ip: UDP, and TCP for
// passive ICE-TCP candidates.
func openSharedMux(ip netip.Addr, port int, log *slog.Logger, eng *poll.Engine) (*wrtc.Mux, error) {
	addr := netip.AddrPortFrom(ip, uint16(port))
	udp, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(addr))
	if err != nil {
		return nil, fmt.Errorf("media webrtc port %s/udp: %w", addr, err)
	}
	tcp, err := net.ListenTCP("tcp", net.TCPAddrFromAddrPort(addr))
	if err != nil {
		udp.Close()
		return nil, fmt.Errorf("media webrtc port %s/tcp: %w", addr, err)
	}
	mux, err := wrtc.NewMux(wrtc.MuxConfig{UDP: udp, TCP: tcp, Log: log.With("part", "webrtc-mux"), Poll: eng})
	if err != nil {
		udp.Close()
		tcp.Close()
		return nil, fmt.Errorf("media webrtc port %s: %w", addr, err)
	}
	return mux, nil
}

// normalize fills defaults and reports the first invalid field.
func (c *Config) normalize() error {
	addrs, err := normalizeAddrs(c.Addrs)
	if err != nil {
		return err
	}
	c.Addrs = addrs
	if c.PortMin < 1 || c.PortMax > 65535 || c.PortMin > c.PortMax {
		return fmt.Errorf("rtp port range %d-%d is not within 1-65535", c.PortMin, c.PortMax)
	}
	if firstPair(c.PortMin)+1 > c.PortMax {
		return fmt.Errorf("rtp port range %d-%d holds no even/odd port pair", c.PortMin, c.PortMax)
	}
	if c.Timeout < 0 {
		return fmt.Errorf("timeout %s is negative", c.Timeout)
	}
	if c.Quarantine < 0 {
		return fmt.Errorf("quarantine %s is negative", c.Quarantine)
	}
	if c.Quarantine == 0 {
		c.Quarantine = DefaultQuarantine
	}
	if c.WebRTCPort < 0 || c.WebRTCPort > 65535 {
		return fmt.Errorf("webrtc port %d is not within 0-65535", c.WebRTCPort)
	}
	if c.WebRTCPort != 0 && c.WebRTCPort >= c.PortMin && c.WebRTCPort <= c.PortMax {
		return fmt.Errorf("webrtc port %d lies inside the rtp port range %d-%d", c.WebRTCPort, c.PortMin, c.PortMax)
	}
	if c.HandshakeTimeout < 0 {
		return fmt.Errorf("handshake timeout %s is negative", c.HandshakeTimeout)
	}
	if c.HandshakeTimeout == 0 {
		c.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if c.StateEvery < 0 {
		return fmt.Errorf("state interval %s is negative", c.StateEvery)
	}
	if c.StateEvery == 0 {
		c.StateEvery = DefaultStateEvery
	}
	return nil
}

// NewSession returns an open session for one call; id (the call's ID) is
// only used in logs. It binds no socket until the first Offer. After Close,
// the session it returns is already closed and its Offer returns ErrClosed.
func (m *Manager) NewSession(id string) *Session {
	s := newSession(m, id)
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		s.closed = true
		return s
	}
	m.sessions[s] = struct{}{}
	m.watchLocked()
	return s
}

// Close closes every session and the shared WebRTC socket, and refuses
// new sessions. It is idempotent.
func (m *Manager) Close() error {
	m.mu.Lock()
	m.closed = true
	if m.watch != nil {
		m.watch.Stop()
	}
	open := make([]*Session, 0, len(m.sessions))
	for s := range m.sessions {
		open = append(open, s)
	}
	m.mu.Unlock()
	// Sessions are closed without m.mu held: Session.Close calls forget.
	for _, s := range open {
		s.Close()
	}
	m.mu.Lock()
	restored := m.restoredMuxes
	m.restoredMuxes = nil
	m.mu.Unlock()
	m.eng.stop()
	m.pool.closeKept()
	var errs []error
	for _, mux := range restored {
		errs = append(errs, mux.Close())
	}
	return errors.Join(append(errs, m.closeMuxes())...)
}

// closeMuxes closes the shared WebRTC sockets, once.
func (m *Manager) closeMuxes() error {
	var errs []error
	m.muxOnce.Do(func() {
		for _, mux := range m.mux {
			errs = append(errs, mux.Close())
		}
	})
	return errors.Join(errs...)
}

// Active returns the number of sessions created and not yet closed.
func (m *Manager) Active() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.sessions)
}

// forget drops a closed session from the active set.
func (m *Manager) forget(s *Session) {
	m.mu.Lock()
	delete(m.sessions, s)
	m.mu.Unlock()
}
