package wrtc

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/dtls/v3"
	"github.com/pion/ice/v4"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
	"github.com/pion/stun/v4"
	"github.com/pion/transport/v4/packetio"

	"github.com/sbc-project/sbc/media/poll"
)

// Defaults for Config's zero values.
const (
	DefaultHandshakeTimeout = 10 * time.Second // Config.HandshakeTimeout
	DefaultConsentTimeout   = 30 * time.Second // Config.ConsentTimeout
)

// gatherTimeout bounds host candidate gathering, which on a mux only
// registers the username fragment and should take microseconds.
const gatherTimeout = 5 * time.Second

// Sentinel errors.
var (
	// ErrNotConnected is returned by WriteRTP and WriteRTCP before DTLS is up,
	// after a failure or Close, and while an ICE restart has no path yet.
	ErrNotConnected = errors.New("wrtc: not connected")
	// ErrClosed is returned by SetRemote after Close.
	ErrClosed = errors.New("wrtc: transport closed")
	// ErrFailed is returned by SetRemote once the transport has failed.
	ErrFailed = errors.New("wrtc: transport failed")
)

// Config configures New.
type Config struct {
	Mux         *Mux            // shared sockets (required)
	PublicIP    netip.Addr      // written into host candidates (1:1 NAT of the mux's bind IP), of the mux's family; zero: the bind IP
	Certificate tls.Certificate // DTLS certificate (required), see GenerateCertificate
	// HandshakeTimeout bounds SetRemote to DTLS up (ICE and DTLS), and an ICE
	// restart to its new nominated pair. 0 means DefaultHandshakeTimeout.
	HandshakeTimeout time.Duration
	// ConsentTimeout is how long a connected path may go without a STUN
	// request (consent check, RFC 7675) from the peer before
	// Failed("ice_disconnected"). It must exceed the peer's check interval
	// (browsers: about 5 s). 0 means DefaultConsentTimeout.
	ConsentTimeout time.Duration
	Log            *slog.Logger // state changes at Info, pion at Debug; nil discards
}

// Params are our ICE and DTLS attributes for the SDP we send.
type Params struct {
	Ufrag, Pwd  string   // a=ice-ufrag, a=ice-pwd
	Candidates  []string // a=candidate values (without "candidate:")
	Fingerprint string   // a=fingerprint value, "sha-256 AB:CD:.."
	ICELite     bool     // always true: write a=ice-lite
}

// Transport is the WebRTC transport of one side of one call: an ICE-lite
// agent (controlled, host candidates on the Mux), one DTLS association, SRTP
// and SRTCP contexts, and the BUNDLE routes of the decrypted packets.
// All methods are safe for concurrent use.
type Transport struct {
	cfg   Config
	log   *slog.Logger
	agent *ice.Agent
	fp    string // our a=fingerprint value

	ctx    context.Context // canceled by Close
	cancel context.CancelFunc

	gathered  chan struct{}            // agent: gathering complete
	iceStates chan ice.ConnectionState // agent -> supervisor
	restarted chan struct{}            // SetRemote -> supervisor: ICE restarted

	mu       sync.Mutex // control plane: the fields below
	local    Params
	remote   Remote
	role     role
	started  bool // SetRemote started ICE (reader and supervisor run)
	closing  bool
	state    State
	onState  func(State, string)
	conn     *ice.Conn              // set once by the first SetRemote
	dtlsConn *dtls.Conn             // set by the supervisor
	profile  srtp.ProtectionProfile // negotiated SRTP profile, once connected
	keys     srtp.SessionKeys       // the SRTP master keys, once connected (Export)
	restored bool                   // made by Restore: no DTLS

	events     chan stateEvent // -> notify
	notified   chan struct{}   // closed when notify returns
	inCallback atomic.Bool

	supervised chan struct{}  // closed when the supervisor returns
	workers    sync.WaitGroup // reader and DTLS drain
	fpMismatch atomic.Bool    // set by the certificate check
	pathUp     atomic.Bool    // a check's pair was selected (reset by an ICE restart)
	nominated  atomic.Bool    // the peer's first USE-CANDIDATE was seen
	onICE      atomic.Pointer[func(time.Time, bool)]

	startedAt time.Time // first SetRemote; under mu
	timings   Timings   // set once connected; under mu

	c      counters
	dtlsIn *packetio.Buffer // DTLS datagrams for the DTLS conn

	// rmu serializes the demux between its two feeders: the Mux's reader
	// (datagrams from a validated address) and readLoop (the rest, through
	// pion, and ICE-TCP). rclosed, set by Close, stops both.
	rmu     sync.Mutex
	rclosed bool
	// dst is the remote address of the selected pair when it runs over the
	// Mux's UDP socket: SRTP goes there directly. nil: through the ice.Conn.
	dst atomic.Pointer[netip.AddrPort]

	// beforeKeys, when set (by tests, before SetRemote), runs between the
	// DTLS handshake's end and the SRTP keys' install: a busy scheduler's
	// delay there, made deterministic.
	beforeKeys func()
	d          *demux

	wmu      sync.Mutex // send path: one packet encrypted and sent at a time
	tx       *srtpKeys
	path     packetWriter // the ice.Conn, set before tx
	wbuf     []byte
	wRTPHdr  rtp.Header
	wRTCPHdr rtcp.Header

	closeOnce sync.Once
	closeErr  error
}

// New creates a transport with fresh ICE credentials and its host
// candidates (udp4, plus passive tcp4 when the Mux has ICE-TCP). Nothing is
// sent until SetRemote.
func New(cfg Config) (*Transport, error) { return newTransport(cfg) }

// newTransport is New with extra options for the ICE agent (Restore's
// local credentials).
func newTransport(cfg Config, extra ...ice.AgentOption) (*Transport, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	fp, err := Fingerprint(cfg.Certificate)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	t := &Transport{
		cfg:        cfg,
		log:        cfg.Log,
		fp:         fp,
		ctx:        ctx,
		cancel:     cancel,
		gathered:   make(chan struct{}, 1),
		iceStates:  make(chan ice.ConnectionState, 16),
		restarted:  make(chan struct{}, 1),
		events:     make(chan stateEvent, maxStateEvents),
		notified:   make(chan struct{}),
		supervised: make(chan struct{}),
		dtlsIn:     newDTLSQueue(),
		wbuf:       make([]byte, maxPacket+srtpOverhead),
	}
	t.d = newDemux(&t.c, t.queueDTLS)
	if err := t.startAgent(extra...); err != nil {
		cancel()
		return nil, err
	}
	go t.notify()
	cfg.Mux.addTransport()
	registerTransport(t)
	return t, nil
}

func (cfg Config) withDefaults() (Config, error) {
	if cfg.Mux == nil {
		return cfg, errors.New("wrtc: config needs a Mux")
	}
	if len(cfg.Certificate.Certificate) == 0 || cfg.Certificate.PrivateKey == nil {
		return cfg, errors.New("wrtc: config needs a certificate with its private key")
	}
	if ip := cfg.PublicIP; ip.IsValid() && ip.Unmap().Is4() == cfg.Mux.v6 {
		return cfg, fmt.Errorf("wrtc: public IP %s is not of the family of the mux socket %s", ip, cfg.Mux.addr)
	}
	if cfg.HandshakeTimeout <= 0 {
		cfg.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if cfg.ConsentTimeout <= 0 {
		cfg.ConsentTimeout = DefaultConsentTimeout
	}
	if cfg.Log == nil {
		cfg.Log = discardLog
	}
	return cfg, nil
}

// startAgent creates the ICE-lite agent, hooks its events and gathers.
func (t *Transport) startAgent(extra ...ice.AgentOption) error {
	agent, err := ice.NewAgentWithOptions(append(t.agentOptions(), extra...)...)
	if err != nil {
		return fmt.Errorf("wrtc: create ice agent: %w", err)
	}
	t.agent = agent
	// Handlers only signal: they run on pion's goroutines and must not block.
	err = errors.Join(
		agent.OnConnectionStateChange(func(s ice.ConnectionState) {
			select {
			case t.iceStates <- s:
			default:
			}
		}),
		agent.OnSelectedCandidatePairChange(t.onSelectedPair),
		agent.OnCandidate(func(c ice.Candidate) {
			if c == nil { // gathering complete
				select {
				case t.gathered <- struct{}{}:
				default:
				}
			}
		}),
	)
	if err == nil {
		err = t.gather()
	}
	if err != nil {
		_ = agent.Close()
		return fmt.Errorf("wrtc: start ice agent: %w", err)
	}
	return nil
}

// agentOptions configures a controlled ICE-lite agent with host candidates
// only, on the Mux, with our consent timers.
func (t *Transport) agentOptions() []ice.AgentOption {
	m := t.cfg.Mux
	udp, tcp := ice.NetworkTypeUDP4, ice.NetworkTypeTCP4
	if m.v6 {
		udp, tcp = ice.NetworkTypeUDP6, ice.NetworkTypeTCP6
	}
	networks := []ice.NetworkType{udp}
	// Disconnected after half the consent timeout, failed after the rest.
	disconnected := t.cfg.ConsentTimeout / 2
	opts := []ice.AgentOption{
		ice.WithICELite(true),
		ice.WithCandidateTypes([]ice.CandidateType{ice.CandidateTypeHost}),
		ice.WithUDPMux(m.udp),
		ice.WithMulticastDNSMode(ice.MulticastDNSModeDisabled),
		ice.WithDisableActiveTCP(), // passive only: we never dial the peer
		ice.WithDisconnectedTimeout(disconnected),
		ice.WithFailedTimeout(t.cfg.ConsentTimeout - disconnected),
		ice.WithLoggerFactory(pionLogs{log: t.log}),
		ice.WithBindingRequestHandler(t.onBindingRequest),
	}
	if m.tcp != nil {
		networks = append(networks, tcp)
		opts = append(opts, ice.WithTCPMux(m.tcp))
	}
	opts = append(opts, ice.WithNetworkTypes(networks))
	if m.loopback {
		opts = append(opts, ice.WithIncludeLoopback())
	}
	if ip := t.cfg.PublicIP; ip.IsValid() {
		rule := ice.AddressRewriteRule{
			External:        []string{ip.Unmap().String()},
			AsCandidateType: ice.CandidateTypeHost,
			Mode:            ice.AddressRewriteReplace,
		}
		if !m.addr.Addr().IsUnspecified() {
			rule.Local = m.addr.Addr().String()
		}
		opts = append(opts, ice.WithAddressRewriteRules(rule))
	}
	return opts
}

// onBindingRequest runs on the ICE agent after it answered a connectivity
// check that carried our credentials; it reports whether the agent should
// select the check's pair. The first check selects its pair, so DTLS starts
// right away instead of at the peer's nomination: a browser sends its
// ClientHello as soon as one check succeeds, and Chromium may nominate a
// second later. The peer's USE-CANDIDATE later selects the pair it chose
// (an ICE-lite agent follows every nomination).
//
// Over UDP, the check's source address is routed to us on the Mux from now
// on: its media skips pion's mux and agent.
func (t *Transport) onBindingRequest(m *stun.Message, local, remote ice.Candidate, _ *ice.CandidatePair) bool {
	f := t.onICE.Load()
	if m != nil && m.Contains(stun.AttrUseCandidate) && !t.nominated.Swap(true) && f != nil {
		(*f)(time.Now(), true)
	}
	if local.NetworkType().IsUDP() {
		if from, ok := candidateAddr(remote); ok {
			t.cfg.Mux.route(from, t)
		}
	}
	first := !t.pathUp.Swap(true)
	if first && f != nil {
		(*f)(time.Now(), false)
	}
	return first
}

// onSelectedPair runs on pion's notifier after the selected pair changed:
// SRTP follows it, straight from the Mux's socket when the pair is UDP. A
// notification that comes after an ICE restart cleared the path (pathUp
// false) is stale and ignored.
func (t *Transport) onSelectedPair(local, remote ice.Candidate) {
	if !t.pathUp.Load() {
		return
	}
	if local != nil && local.NetworkType().IsUDP() {
		if to, ok := candidateAddr(remote); ok {
			t.dst.Store(&to)
			return
		}
	}
	t.dst.Store(nil)
}

// candidateAddr is c's transport address, IPv4 unmapped.
func candidateAddr(c ice.Candidate) (netip.AddrPort, bool) {
	if c == nil {
		return netip.AddrPort{}, false
	}
	ip, err := netip.ParseAddr(c.Address())
	if err != nil || c.Port() <= 0 || c.Port() > 65535 {
		return netip.AddrPort{}, false
	}
	return netip.AddrPortFrom(ip.Unmap(), uint16(c.Port())), true
}

// Local returns our current ICE/DTLS attributes. Ufrag, Pwd and Candidates
// change after an ICE restart; Fingerprint never changes.
func (t *Transport) Local() Params {
	t.mu.Lock()
	defer t.mu.Unlock()
	p := t.local
	p.Candidates = slices.Clone(p.Candidates)
	return p
}

// Counters returns a snapshot of the packet counters.
func (t *Transport) Counters() Counters { return t.c.snapshot() }

// State returns the current state.
func (t *Transport) State() State {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.state
}

// SetRoutes replaces the BUNDLE routes, one per m-line, atomically: the
// reader sees either the old or the new set, never a mix, and is not
// blocked. routes is not retained.
func (t *Transport) SetRoutes(routes []Route) {
	t.d.routes.Store(newRouteTable(routes))
}

// queueDTLS hands a DTLS datagram to the DTLS conn; when its queue is full
// or closed the datagram is dropped, as the network could have.
func (t *Transport) queueDTLS(pkt []byte) {
	_, _ = t.dtlsIn.Write(pkt)
}

// readLoop reads the ICE path until the agent closes.
func (t *Transport) readLoop(conn *ice.Conn) {
	defer t.workers.Done()
	buf := make([]byte, maxPacket)
	for {
		n, err := conn.Read(buf)
		if errors.Is(err, io.ErrShortBuffer) { // larger than any MTU: not ours
			t.c.malformed.Add(1)
			continue
		}
		if err != nil {
			return
		}
		t.receive(buf[:n])
	}
}

// receive hands one datagram of the ICE path to the demux, unless Close
// has begun; after Close returns no Sink sees a packet.
func (t *Transport) receive(pkt []byte) { t.receiveVia(pkt, nil) }

// receiveVia is receive for a datagram a poll loop read, with the loop's
// send batch (nil: none).
func (t *Transport) receiveVia(pkt []byte, b *poll.Batch) {
	t.rmu.Lock()
	if !t.rclosed {
		t.d.handleVia(pkt, b)
	}
	t.rmu.Unlock()
}

// Close stops the transport: the handshake is abandoned, a DTLS close_notify
// goes to the peer when DTLS is up, the ICE agent releases its mux
// registrations, and every goroutine the transport started has returned
// (except an OnState callback that is running, see OnState). The Mux keeps
// serving other transports. Close is idempotent and returns the first
// error of the first call.
func (t *Transport) Close() error {
	t.closeOnce.Do(func() { t.closeErr = t.close() })
	return t.closeErr
}

func (t *Transport) close() error {
	t.mu.Lock()
	t.closing = true
	started := t.started
	t.mu.Unlock()

	t.cancel()
	t.cfg.Mux.unroute(t)
	t.dst.Store(nil)
	if started {
		<-t.supervised // the handshake returns on the canceled context
	}
	var errs []error
	t.mu.Lock()
	dc := t.dtlsConn
	t.mu.Unlock()
	if dc != nil { // before the agent, so close_notify still has a path
		if err := dc.Close(); err != nil && !errors.Is(err, dtls.ErrConnClosed) && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, fmt.Errorf("close dtls: %w", err))
		}
	}
	if err := t.agent.GracefulClose(); err != nil {
		errs = append(errs, fmt.Errorf("close ice agent: %w", err))
	}
	// Again: a check answered between the first unroute and the agent's
	// end routed its address anew; now no check can come.
	t.cfg.Mux.unroute(t)
	_ = t.dtlsIn.Close()
	t.workers.Wait()
	t.rmu.Lock() // the Mux's reader may be inside receive still
	t.rclosed = true
	t.rmu.Unlock()
	t.d.dropEarly()

	t.wmu.Lock()
	t.tx = nil
	t.wmu.Unlock()

	t.cfg.Mux.removeTransport()
	unregisterTransport(t) // after the last packet it counts
	t.setState(StateClosed, "")
	if !t.inCallback.Load() {
		<-t.notified
	}
	t.log.Debug("webrtc transport closed", "counters", t.c.snapshot())
	return errors.Join(errs...)
}
