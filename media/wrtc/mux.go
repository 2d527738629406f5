package wrtc

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/pion/ice/v4"
	"github.com/pion/stun/v4"

	"github.com/sbc-project/sbc/media/poll"
)

// muxReadBuffer is the receive buffer asked of the UDP socket (the kernel
// caps it at net.core.rmem_max). A shared WebRTC port takes every call's
// media: at 500 calls, 25,000 packets a second, which the default buffer
// (about 280 datagrams) holds for 11 ms only, less than a busy
// scheduler's delay; measured, a quarter of the packets were dropped. It
// is a limit, not an allocation: a port per call never fills it.
const muxReadBuffer = 4 << 20

// minGroup is the fewest sockets a widened Mux reads its port with, and
// sharedReadBuffer the receive buffer each asks for. A shared port must
// hold the backlog of a process descheduled for a while as its calls' own
// ports would have (each of those buffers minutes of its call's media):
// 4 sockets of 32 MB hold 4 s of 500 calls' media (1.3 kB of buffer per
// datagram). It is a limit, not an allocation; beyond net.core.rmem_max
// only with CAP_NET_ADMIN. Measured at 500 calls on a loaded 2-CPU
// machine, 2 sockets of 8 MB still dropped 0.85 %.
const (
	minGroup         = 4
	sharedReadBuffer = 32 << 20
)

// tcpReadQueue is the number of framed packets pion queues per ICE-TCP
// connection before the agent reads them.
const tcpReadQueue = 64

// MuxConfig configures NewMux.
type MuxConfig struct {
	// UDP is the socket every transport shares (required). Bind it to one
	// address, IPv4 or IPv6: its transports gather host candidates of that
	// family only. An unspecified bind makes pion advertise every interface
	// of the family (all rewritten to Config.PublicIP when that is set).
	UDP *net.UDPConn
	// TCP is an optional listener for passive ICE-TCP, normally on the same IP
	// and port number as UDP; nil disables ICE-TCP.
	TCP net.Listener
	// Log receives pion's diagnostics at Debug (errors at Warn); nil discards.
	Log *slog.Logger
	// Poll is the poll engine whose loops read the UDP socket (Linux): the
	// one that reads the calls' RTP sockets, so that one wake-up serves
	// both sides of a call. nil: the process's own, running while a Mux
	// uses it. Sockets attached after the engine stopped are read by a
	// goroutine each.
	Poll *poll.Engine
}

// Mux holds the sockets shared by all WebRTC transports: one UDP socket and
// optionally one TCP listener for passive ICE-TCP (ice.TCPMuxDefault). It is
// safe for concurrent use; transports come and go while it keeps serving the
// others.
//
// One reader takes the UDP socket's datagrams: a loop of the poller on
// Linux, else a goroutine of the Mux. Once the Mux serves two transports at
// a time (a shared port, media.webrtc_port) it reads the port with a group
// of sockets, one per CPU (SO_REUSEPORT, Linux), each with its own reader;
// datagrams leave from the first (any of them has the port's address).
// A datagram that is not STUN, from an
// address a valid connectivity check of a transport came from, goes straight
// to that transport's demux on the reader: no copy, no hand-off, no
// allocation. Everything else (STUN, and packets from addresses no check has
// validated yet) is copied to pion's ice.UDPMuxDefault, which demultiplexes
// by username fragment and answers the checks in the ICE agents.
type Mux struct {
	conn     *net.UDPConn       // the first socket; closed early on Linux (leaveNetpoller)
	local    string             // its local address, as bound
	udp      *ice.UDPMuxDefault // pion's mux, fed by feed
	feed     *pionFeed
	tcp      *ice.TCPMuxDefault // nil without ICE-TCP
	addr     netip.AddrPort     // the UDP socket's local address
	loopback bool               // bound to a loopback IP: pion skips those unless told
	v6       bool               // bound to an IPv6 address: candidates are IPv6
	log      *slog.Logger
	poll     *poll.Engine // nil: the process's poller

	routeMu sync.Mutex               // serializes route updates
	routes  atomic.Pointer[routeSet] // copy on write; read per packet

	direct, fed, feedDrops atomic.Uint64 // see MuxCounters

	// socks are the sockets reading the port: conn first, then, once the
	// Mux serves several transports, its siblings (SO_REUSEPORT, see
	// widen). Each is read by a loop of the poller (Linux) or, failing
	// that, by a goroutine.
	sockMu     sync.Mutex
	socks      []*muxSocket
	transports int  // live transports on the Mux
	widened    bool // widen ran (once)
	closed     bool

	tx txSocket // how datagrams leave (poll_linux.go: a raw sendto)

	closeOnce sync.Once
	closeErr  error
}

// muxSocket is one socket bound to the Mux's port and its reader.
type muxSocket struct {
	m        *Mux
	conn     *net.UDPConn
	ps       *pollSocket   // the poller's socket (a duplicate descriptor); nil: read by the goroutine read
	loopIx   int           // the poller's loop reading it
	detached chan struct{} // closed once the poller let go of it
	readDone chan struct{}
	got      atomic.Uint64 // datagrams read
}

// NewMux starts the shared ICE muxes on cfg's sockets. The Mux owns them from
// now on: Close closes the socket and the listener.
func NewMux(cfg MuxConfig) (*Mux, error) {
	if cfg.UDP == nil {
		return nil, errors.New("wrtc: mux needs a UDP socket")
	}
	addr, ok := cfg.UDP.LocalAddr().(*net.UDPAddr)
	if !ok {
		return nil, fmt.Errorf("wrtc: mux socket has address %T, want *net.UDPAddr", cfg.UDP.LocalAddr())
	}
	ap := addr.AddrPort()
	_ = cfg.UDP.SetReadBuffer(muxReadBuffer) // best effort: the default still works
	log := cfg.Log
	if log == nil {
		log = discardLog
	}
	pl := pionLogs{log: log.With("component", "wrtc-mux")}
	m := &Mux{
		conn:     cfg.UDP,
		local:    cfg.UDP.LocalAddr().String(),
		addr:     netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()),
		loopback: ap.Addr().IsLoopback(),
		v6:       !ap.Addr().Unmap().Is4(),
		log:      log,
		poll:     cfg.Poll,
	}
	m.routes.Store(newRouteSet(nil))
	m.tx.init(cfg.UDP)
	m.feed = newPionFeed(cfg.UDP, &m.tx)
	m.udp = ice.NewUDPMuxDefault(ice.UDPMuxParams{
		Logger:  pl.NewLogger("ice-udp-mux"),
		UDPConn: m.feed,
	})
	registerMux(m)
	m.socks = []*muxSocket{m.startSocket(cfg.UDP, 0)}
	m.leaveNetpoller(m.socks[0], true)
	if cfg.TCP != nil {
		m.tcp = ice.NewTCPMuxDefault(ice.TCPMuxParams{
			Listener:       cfg.TCP,
			Logger:         pl.NewLogger("ice-tcp-mux"),
			ReadBufferSize: tcpReadQueue,
		})
	}
	return m, nil
}

// Addr returns the local address of the shared UDP socket.
func (m *Mux) Addr() netip.AddrPort { return m.addr }

// Close stops both muxes and closes the UDP socket and the TCP listener.
// Transports still using the Mux lose their path. Close is idempotent.
func (m *Mux) Close() error {
	m.closeOnce.Do(func() {
		var errs []error
		_ = m.feed.Close() // first: nothing is queued for a closed pion mux
		if err := m.udp.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close udp mux: %w", err))
		}
		m.sockMu.Lock()
		m.closed = true // no widening from now on
		socks := m.socks
		m.sockMu.Unlock()
		m.tx.close()
		for _, s := range socks {
			if s.ps != nil {
				detachPoller(s) // before the socket closes: no stale descriptor read
			}
			if err := s.conn.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
				errs = append(errs, fmt.Errorf("close udp socket: %w", err))
			}
			if s.ps == nil {
				<-s.readDone
			}
		}
		unregisterMux(m)
		if m.tcp != nil {
			if err := m.tcp.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
				errs = append(errs, fmt.Errorf("close tcp mux: %w", err))
			}
		}
		m.closeErr = errors.Join(errs...)
	})
	return m.closeErr
}

// MuxCounters is a snapshot of a Mux's UDP datagram counters; they start at
// zero with the Mux and only grow.
type MuxCounters struct {
	Direct  uint64 // from a validated address, handed straight to its transport
	ToPion  uint64 // handed to pion's mux: STUN, and datagrams from addresses no check validated (yet)
	Dropped uint64 // for pion's mux, dropped on its full queue
}

// Counters returns a snapshot of the datagram counters.
func (m *Mux) Counters() MuxCounters {
	return MuxCounters{Direct: m.direct.Load(), ToPion: m.fed.Load(), Dropped: m.feedDrops.Load()}
}

// startSocket has conn read, by a poller loop (the i-th after the first
// socket's, so that a group's sockets are read in parallel) or else by a
// goroutine.
func (m *Mux) startSocket(conn *net.UDPConn, i int) *muxSocket {
	s := &muxSocket{m: m, conn: conn, readDone: make(chan struct{})}
	base := -1
	if i > 0 && m.socks[0].ps != nil {
		base = m.socks[0].loopIx
	}
	if !attachPoller(s, base, i) {
		go s.read()
	}
	return s
}

// read is the socket's only reader when no poller loop reads it; it
// returns when the socket closes.
func (s *muxSocket) read() {
	defer close(s.readDone)
	defer s.m.feed.Close() // pion's mux sees the end too
	buf := make([]byte, maxPacket)
	for {
		n, from, err := s.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if isTemporary(err) {
				continue
			}
			return
		}
		s.got.Add(1)
		s.m.dispatch(buf[:n], from, nil)
	}
}

// dispatch hands one datagram read from a socket of the Mux to the
// transport its source address is routed to, or to pion's mux. Called by
// the sockets' readers; the kernel hands one source's datagrams to one
// socket, and Transport.receive serializes a transport's sources anyway.
// b is the reading poll loop's send batch, or nil.
func (m *Mux) dispatch(pkt []byte, from netip.AddrPort, b *poll.Batch) {
	from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
	if !stun.IsMessage(pkt) {
		if t := m.routes.Load().lookup(from); t != nil {
			m.direct.Add(1)
			t.receiveVia(pkt, b)
			return
		}
	}
	if m.feed.push(pkt, from) {
		m.fed.Add(1)
	} else {
		m.feedDrops.Add(1)
	}
}

// addTransport counts a transport on the Mux; the second one at a time
// widens it.
func (m *Mux) addTransport() {
	m.sockMu.Lock()
	defer m.sockMu.Unlock()
	if m.transports++; m.transports > 1 && !m.widened && !m.closed {
		m.widened = true
		m.widen()
	}
}

// removeTransport counts a transport gone; a widened Mux stays so.
func (m *Mux) removeTransport() {
	m.sockMu.Lock()
	m.transports--
	m.sockMu.Unlock()
}

// widen adds sibling sockets on the Mux's port (SO_REUSEPORT, Linux), one
// per CPU in all (at least minGroup), each with its own receive buffer
// and reader (the poller's loops in turn): a Mux shared by many calls
// (media.webrtc_port) carries every call's media, which one socket's
// reader and buffer could not take (at 500 calls, 25,000 datagrams a
// second, 3.5-7.5 % were dropped in the kernel with an 8 MB buffer). A Mux
// of its own per call serves one transport and keeps its one socket. The
// caller holds sockMu. Best effort: without siblings the first socket
// still serves.
func (m *Mux) widen() {
	n := max(runtime.GOMAXPROCS(0), minGroup) - 1
	conns, err := listenSiblings(m.control, m.local, n)
	if err != nil {
		m.log.Warn("webrtc port stays on one socket", "addr", m.addr, "err", err)
		return
	}
	_ = m.control(func(fd uintptr) { setReadBufferFD(fd, sharedReadBuffer) })
	for _, c := range conns {
		setSharedReadBuffer(c, sharedReadBuffer)
		s := m.startSocket(c, len(m.socks))
		m.leaveNetpoller(s, false)
		m.socks = append(m.socks, s)
	}
}

// isTemporary reports a read error after which the socket still works: an
// ICMP error reported on the socket, or a deadline.
func isTemporary(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout() || errors.Is(err, syscall.ECONNREFUSED)
}

// route sends from's non-STUN datagrams straight to t from now on: a valid
// connectivity check of t's peer came from it.
func (m *Mux) route(from netip.AddrPort, t *Transport) {
	from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
	m.routeMu.Lock()
	defer m.routeMu.Unlock()
	old := m.routes.Load().all
	if old[from] == t {
		return
	}
	next := make(map[netip.AddrPort]*Transport, len(old)+1)
	for a, o := range old {
		next[a] = o
	}
	next[from] = t
	m.routes.Store(newRouteSet(next))
}

// unroute removes every address routed to t.
func (m *Mux) unroute(t *Transport) {
	m.routeMu.Lock()
	defer m.routeMu.Unlock()
	old := m.routes.Load().all
	next := make(map[netip.AddrPort]*Transport, len(old))
	for a, o := range old {
		if o != t {
			next[a] = o
		}
	}
	if len(next) != len(old) {
		m.routes.Store(newRouteSet(next))
	}
}

// routeSet maps validated source addresses to their transports; it is
// immutable once stored. A Mux of its own per call routes one address
// (or a few, briefly): that one is compared in place, not hashed.
type routeSet struct {
	one   netip.AddrPort
	oneTo *Transport // nil unless all has exactly one entry
	all   map[netip.AddrPort]*Transport
}

func newRouteSet(all map[netip.AddrPort]*Transport) *routeSet {
	r := &routeSet{all: all}
	if len(all) == 1 {
		for a, t := range all {
			r.one, r.oneTo = a, t
		}
	}
	return r
}

// lookup returns the transport from is routed to, or nil.
func (r *routeSet) lookup(from netip.AddrPort) *Transport {
	if r.oneTo != nil {
		if from == r.one {
			return r.oneTo
		}
		return nil
	}
	return r.all[from]
}

// sockets is how many sockets read the Mux's port.
func (m *Mux) sockets() int {
	m.sockMu.Lock()
	defer m.sockMu.Unlock()
	return len(m.socks)
}
