package transport

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"
)

// Defaults for zero Limits fields.
const (
	DefaultMaxMessageSize   = 65535 // bytes; the largest UDP payload
	DefaultMaxLineLength    = 8192  // bytes
	DefaultHandshakeTimeout = 5 * time.Second
	DefaultIdleTimeout      = 15 * time.Minute
	DefaultWriteTimeout     = 5 * time.Second
)

// Sentinel errors.
var (
	// ErrClosed is returned by Listen and Send after Close.
	ErrClosed = errors.New("transport closed")
	// ErrConnClosed is returned when writing on a closed connection.
	ErrConnClosed = errors.New("connection closed")
)

// Limits bound what a peer can make the layer hold or wait for. A zero field
// takes the Default constant of the same name.
type Limits struct {
	// MaxMessageSize is the largest message, header block and body, in
	// bytes. A larger UDP datagram is dropped; a larger message on a stream
	// closes the connection. Both are counted in Stats.Dropped.Oversize.
	MaxMessageSize int
	// MaxLineLength is the longest start or header line on a stream, in
	// bytes (without CRLF). A longer one closes the connection. On UDP the
	// parser above enforces it.
	MaxLineLength int
	// HandshakeTimeout bounds a TLS handshake and a WebSocket upgrade
	// (including the WSS TLS handshake); it is also the dial timeout.
	HandshakeTimeout time.Duration
	// IdleTimeout closes a stream connection that carried nothing in either
	// direction for this long.
	IdleTimeout time.Duration
	// WriteTimeout bounds one write on a stream connection.
	WriteTimeout time.Duration
	// MaxConnsPerIP caps the stream connections accepted from one source IP
	// across all listeners; 0 is unlimited. Excess connections are closed at
	// once. Connections we dial are not counted.
	MaxConnsPerIP int
}

func (lim Limits) withDefaults() Limits {
	if lim.MaxMessageSize <= 0 {
		lim.MaxMessageSize = DefaultMaxMessageSize
	}
	if lim.MaxLineLength <= 0 {
		lim.MaxLineLength = DefaultMaxLineLength
	}
	if lim.HandshakeTimeout <= 0 {
		lim.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if lim.IdleTimeout <= 0 {
		lim.IdleTimeout = DefaultIdleTimeout
	}
	if lim.WriteTimeout <= 0 {
		lim.WriteTimeout = DefaultWriteTimeout
	}
	// A line cannot be longer than a message; this also bounds the
	// per-connection read buffer.
	lim.MaxLineLength = min(lim.MaxLineLength, lim.MaxMessageSize)
	return lim
}

// Packet is one received SIP message.
type Packet struct {
	// Data is exactly one SIP message (header block and body). The handler
	// owns it: the layer never touches it again.
	Data []byte
	// Src is the remote address, IPv4 unmapped.
	Src netip.AddrPort
	// Local is the local address it arrived on. For a UDP listener bound to
	// a wildcard address this is the bound (wildcard) address.
	Local netip.AddrPort
	Kind  Kind
	// Conn is the stream connection it came on; nil for UDP.
	Conn *Conn
	// Listener is the name of the listener, "" on a connection we dialed.
	Listener string
	// Symmetric is the UDP listener's ListenOptions.Symmetric: its
	// requests are answered at Src. Always false on streams, which answer
	// on Conn.
	Symmetric bool
	// Received is when the kernel received the datagram (UDP; when the
	// system does not say, when the layer read it): the handler's
	// time.Since is how long it waited in the socket buffer and the
	// layer's queue. Zero on streams.
	Received time.Time
}

// Source is where p came from, as the Target its answers start from: the
// connection or the listener's socket it arrived on, and the listener's
// Symmetric setting.
func (p Packet) Source() Target {
	return Target{Kind: p.Kind, Addr: p.Src, Conn: p.Conn, Local: p.Local, Listener: p.Listener, Symmetric: p.Symmetric}
}

// Handler receives packets. It is called on the reading goroutine of a
// connection, one packet at a time per connection, and for UDP on one of a
// listener's workers (one per CPU; the messages of one Call-ID always on
// the same one, in order), so it must not block long; packets of different
// connections and calls arrive concurrently.
type Handler func(p Packet)

// Layer owns the SIP listeners and stream connections. Its methods are safe
// for concurrent use. The zero value is not usable: call New.
type Layer struct {
	// CheckOrigin decides whether a WebSocket upgrade carrying that request's
	// Origin is accepted; nil accepts every origin. Set it before the first
	// Listen of a WS or WSS listener: it is read concurrently afterwards.
	CheckOrigin func(r *http.Request) bool

	log     *slog.Logger
	lim     Limits
	handler Handler
	ctx     context.Context // canceled by Close: aborts dials and handshakes
	cancel  context.CancelFunc
	stats   counters

	mu          sync.Mutex
	closed      bool
	listeners   []*listener
	conns       map[connKey]*Conn // for Send reuse; the newest per key
	all         map[*Conn]struct{}
	perIP       map[netip.Addr]int
	dialing     map[connKey]*pendingDial
	onClose     []func(*Conn)
	clientTLS   *tls.Config
	httpHandler http.Handler

	wg    sync.WaitGroup // every goroutine the layer started
	watch wsWatcher      // idle WebSockets waiting for data

	httpMu    sync.Mutex
	httpConns sync.WaitGroup    // net/http connections not yet closed or hijacked
	httpSeen  map[net.Conn]bool // net/http connection → it sent a request
}

// ListenOptions are the settings of one listener.
type ListenOptions struct {
	// TLS is the server configuration of a TLS or WSS listener, used as is
	// (it may use GetCertificate so certificates can be reloaded). Required
	// for those transports, unused by the others.
	TLS *tls.Config
	// Symmetric makes a UDP listener's requests be answered at their
	// source address and port, as if each carried rport (RFC 3581): a
	// client behind NAT receives only there. False keeps RFC 3261 18.2.2:
	// the port of the top Via's sent-by unless the request asks for rport
	// (a trunk that sends from one port and listens on another). The layer
	// reports it in Packet.Symmetric and the transaction layer acts on it.
	// Stream listeners answer on the connection whatever it says.
	Symmetric bool
}

// listener is one bound socket.
type listener struct {
	name      string
	kind      Kind
	addr      netip.AddrPort
	tlsConf   *tls.Config
	symmetric bool         // UDP: ListenOptions.Symmetric
	udp       *net.UDPConn // UDP
	raw       *rawSender   // UDP: sends outside udp's write lock (nil: through udp)
	ln        net.Listener // TCP, TLS
	srv       *http.Server // WS, WSS (it owns the net.Listener)
}

func (li *listener) close() error {
	var err error
	switch {
	case li.udp != nil:
		li.raw.close()
		err = li.udp.Close()
	case li.srv != nil:
		err = li.srv.Close()
	case li.ln != nil:
		err = li.ln.Close()
	}
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

// New returns a Layer that delivers every received message to h. Zero Limits
// fields take their defaults; log and h may be nil to discard logs and
// messages.
func New(log *slog.Logger, lim Limits, h Handler) *Layer {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if h == nil {
		h = func(Packet) {}
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Layer{
		log:       log,
		lim:       lim.withDefaults(),
		handler:   h,
		ctx:       ctx,
		cancel:    cancel,
		conns:     make(map[connKey]*Conn),
		all:       make(map[*Conn]struct{}),
		perIP:     make(map[netip.Addr]int),
		dialing:   make(map[connKey]*pendingDial),
		clientTLS: &tls.Config{MinVersion: tls.VersionTLS12},
		httpSeen:  make(map[net.Conn]bool),
	}
}

// Listen binds a listener of that kind on addr ("host:port"; port 0 picks
// one) with opts and starts serving it; TLS and WSS need opts.TLS. name is
// reported in Packet.Listener. It returns the bound address, IPv4
// unmapped; a wildcard stays a wildcard (0.0.0.0, or [::] for an empty
// host).
func (l *Layer) Listen(name string, kind Kind, addr string, opts ListenOptions) (netip.AddrPort, error) {
	tlsConf := opts.TLS
	if kind.Secure() && tlsConf == nil {
		return netip.AddrPort{}, fmt.Errorf("listen %s on %s: no TLS config", kind, addr)
	}
	var (
		bound netip.AddrPort
		err   error
	)
	switch kind {
	case UDP:
		bound, err = l.listenUDP(name, addr, opts.Symmetric)
	case TCP, TLS:
		bound, err = l.listenStream(name, kind, addr, tlsConf)
	case WS, WSS:
		bound, err = l.listenWS(name, kind, addr, tlsConf)
	default:
		return netip.AddrPort{}, fmt.Errorf("listen on %s: unknown transport %s", addr, kind)
	}
	if err != nil {
		return netip.AddrPort{}, err
	}
	l.log.Info("sip listener up", "name", name, "transport", kind.String(), "addr", bound.String(),
		"symmetric", opts.Symmetric && kind == UDP)
	return bound, nil
}

// addListener records li and starts serve on a tracked goroutine. It
// returns false, starting nothing, once the layer is closed.
func (l *Layer) addListener(li *listener, serve func()) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return false
	}
	l.listeners = append(l.listeners, li)
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		serve()
	}()
	return true
}

// start runs f on a tracked goroutine; false once the layer is closed.
func (l *Layer) start(f func()) bool {
	if !l.enter() {
		return false
	}
	go func() {
		defer l.wg.Done()
		f()
	}()
	return true
}

// enter counts the calling goroutine in l.wg (the caller must call
// l.wg.Done); false once the layer is closed. Adding only under l.mu while
// not closed keeps every Add before Close's Wait.
func (l *Layer) enter() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return false
	}
	l.wg.Add(1)
	return true
}

// SetClientTLS sets the configuration for TLS connections we dial to
// targets without a TLS configuration of their own (Target.TLS). It is
// cloned per dial; an empty ServerName is filled from Target.Host or the
// target IP. The default verifies against the system roots.
func (l *Layer) SetClientTLS(c *tls.Config) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.clientTLS = c
}

// SetHTTPHandler sets the handler for HTTP requests on WS and WSS listeners
// that are not WebSocket upgrades. nil (the default) answers 404.
func (l *Layer) SetHTTPHandler(h http.Handler) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.httpHandler = h
}

// LocalAddr returns the bound address of the first listener of that kind,
// for building Via and Contact; ok is false if there is none.
func (l *Layer) LocalAddr(kind Kind) (netip.AddrPort, bool) {
	return l.LocalAddrFor(kind, netip.Addr{})
}

// LocalAddrFor returns the bound address of the first listener of that
// kind that reaches dst: one of dst's IP family, else one on the IPv6
// wildcard (dual stack), else the first of the kind. A message toward an
// IPv6 peer then names the SBC's IPv6 address in Via and Contact, and one
// toward an IPv4 peer its IPv4 address. An invalid dst takes the first
// listener of the kind; ok is false if there is none.
func (l *Layer) LocalAddrFor(kind Kind, dst netip.Addr) (netip.AddrPort, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var first, dual netip.AddrPort
	for _, li := range l.listeners {
		if li.kind != kind {
			continue
		}
		bound := li.addr.Addr()
		switch {
		case !dst.IsValid():
			return li.addr, true
		case bound.Is4() == dst.Unmap().Is4():
			return li.addr, true
		case bound.Is6() && bound.IsUnspecified() && !dual.IsValid():
			dual = li.addr
		}
		if !first.IsValid() {
			first = li.addr
		}
	}
	if dual.IsValid() {
		return dual, true
	}
	return first, first.IsValid()
}

// OnConnClose registers f to run whenever a stream connection closes, after
// it has been removed from the connection table (so Send no longer picks
// it). f runs on the goroutine that closed the connection and must not
// block long.
func (l *Layer) OnConnClose(f func(*Conn)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.onClose = append(l.onClose, f)
}

// Close closes every listener and connection and waits until every goroutine
// the layer started has returned. Later calls return nil at once. It returns
// the errors from closing the listeners. It must not be called from a Handler
// or an OnConnClose observer, which run on goroutines it waits for.
func (l *Layer) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	listeners := l.listeners
	conns := make([]*Conn, 0, len(l.all))
	for c := range l.all {
		conns = append(conns, c)
	}
	l.mu.Unlock()

	l.cancel()
	var errs []error
	for _, li := range listeners {
		if err := li.close(); err != nil {
			errs = append(errs, fmt.Errorf("close %s listener %s: %w", li.kind, li.name, err))
		}
	}
	for _, c := range conns {
		_ = c.Close()
	}
	l.wg.Wait()
	// Every http.Server.Serve has returned, so no connection is added now.
	l.httpConns.Wait()
	return errors.Join(errs...)
}

func (l *Layer) isClosed() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.closed
}

// deliver hands one message to the Handler.
func (l *Layer) deliver(p Packet) {
	l.stats.received.Add(1)
	l.handler(p)
}

// boundAddr is the address a listener reports: its socket's, except that an
// IPv4 wildcard that was asked for stays 0.0.0.0 (Go binds it as a
// dual-stack [::]).
func boundAddr(requested string, a net.Addr) netip.AddrPort {
	ap := addrPortOf(a)
	host, _, err := net.SplitHostPort(requested)
	if err != nil || !ap.Addr().IsUnspecified() {
		return ap
	}
	if ip, err := netip.ParseAddr(host); err == nil && ip.Unmap().Is4() {
		return netip.AddrPortFrom(netip.IPv4Unspecified(), ap.Port())
	}
	return ap
}

// addrPortOf converts a net.Addr of a socket into an unmapped AddrPort; the
// zero AddrPort if it has none.
func addrPortOf(a net.Addr) netip.AddrPort {
	var ap netip.AddrPort
	switch a := a.(type) {
	case *net.TCPAddr:
		ap = a.AddrPort()
	case *net.UDPAddr:
		ap = a.AddrPort()
	case nil:
		return ap
	default:
		ap, _ = netip.ParseAddrPort(a.String())
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}
