package b2bua

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ghettovoice/gosip/sip"

	"github.com/sbc-project/sbc/b2bua/outcome"
	"github.com/sbc-project/sbc/b2bua/routing"
	"github.com/sbc-project/sbc/b2bua/sipmsg"
	"github.com/sbc-project/sbc/b2bua/transport"
	"github.com/sbc-project/sbc/b2bua/txn"
	"github.com/sbc-project/sbc/media"
)

// Config is what the B2BUA needs from the SBC configuration.
type Config struct {
	UserAgent       string
	PublicHost      string // advertised host for Via/Contact; "" = the listener's IP
	Limits          sipmsg.Limits
	Transport       transport.Limits
	HeaderWhitelist []string
	SessionExpires  time.Duration
	MinSE           time.Duration
	InviteTimeout   time.Duration // per B-leg attempt, until a provisional answer
	RingTimeout     time.Duration // whole call, until a final answer
	RetryAfter      time.Duration // on 503 when every trunk is down
	Timers          txn.Timers
	// CallerIDs are the identities asserted for users' calls by user name
	// (users[].caller_id); a user without one is asserted by name.
	CallerIDs map[string]string
}

// MediaSession is the per-call SDP seam: each offer and answer from one side
// goes through it and comes out as the SDP for the other side.
// media.Session implements it.
type MediaSession interface {
	// Configure says what a side speaks and wants before its SDP does.
	Configure(side media.Side, o media.SideOptions)
	// Notify sets the receiver of media events (media gone, DTMF for INFO).
	Notify(f func(media.Event))
	Offer(from media.Side, sdp []byte) ([]byte, error)
	Answer(from media.Side, sdp []byte) ([]byte, error)
	// Absorb answers a re-offer that changes nothing the other side must
	// know; ok false means it must be relayed.
	Absorb(from media.Side, sdp []byte) (answer []byte, ok bool)
	// SendDTMF plays a digit toward a side as RFC 4733.
	SendDTMF(to media.Side, d media.DTMF) error
	// Codecs returns the main codec negotiated with each side.
	Codecs() [2]string
	// Stats returns the media counters so far; final after Stop.
	Stats() media.Stats
	// Stop ends the media (nothing relayed any more, Stats final) but
	// keeps its ports until Close.
	Stop()
	// Close stops the media and gives its ports back.
	Close()
}

// MediaFactory opens a media session for a call.
type MediaFactory func(callID string) (MediaSession, error)

// Server is the SIP endpoint of the SBC: transport, transactions, and the
// calls it holds. Create it with New, add listeners with Listen, stop it
// with Close.
type Server struct {
	cfg    Config
	log    *slog.Logger
	tp     *transport.Layer
	tx     *txn.Layer
	parser *sipmsg.Parser
	routes atomic.Pointer[routing.Table]
	media  MediaFactory
	echo   atomic.Pointer[netip.AddrPort]

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // one per call
	pumps  sync.WaitGroup // goroutines that carry transaction events to calls

	mu      sync.Mutex
	calls   map[*Call]struct{}
	byConn  map[*transport.Conn]map[*Call]struct{} // calls with a leg on a connection (connlost.go)
	dialogs map[dialogKey]*leg
	closed  bool

	stats Stats
	obs   atomic.Pointer[observerBox]
	reg   *regState // nil: no registrar
	pol   atomic.Pointer[policyBox]
	ops   opsState // tap, tracer, drain (ops.go)
}

type observerBox struct{ o outcome.Observer }

// SetObserver sets the receiver of call records (the CDR writer); nil
// removes it. Set it before Listen: calls already running may miss it.
func (s *Server) SetObserver(o outcome.Observer) {
	if o == nil {
		s.obs.Store(nil)
		return
	}
	s.obs.Store(&observerBox{o})
}

func (s *Server) observer() outcome.Observer {
	if b := s.obs.Load(); b != nil {
		return b.o
	}
	return nil
}

// Stats are the server's counters.
type Stats struct {
	BadMessages   atomic.Uint64 // unparsable, answered 400 or dropped
	CallsStarted  atomic.Uint64
	CallsAnswered atomic.Uint64
	CallsFailed   atomic.Uint64
	NoDialog      atomic.Uint64 // in-dialog requests answered 481
	AuthFailures  atomic.Uint64 // wrong passwords, unknown users, replays
}

type dialogKey struct{ callID, localTag string }

// New builds a server. routes and mf must not be nil.
func New(cfg Config, routes *routing.Table, mf MediaFactory, log *slog.Logger) *Server {
	if cfg.UserAgent == "" {
		cfg.UserAgent = "sbc"
	}
	if cfg.Timers.TUInvite == 0 && cfg.RingTimeout > 0 {
		// A call answers its caller by the ring timeout at the latest; the
		// layer's own 500 is a transaction's lifetime after that.
		t1 := cfg.Timers.T1
		if t1 <= 0 {
			t1 = txn.DefaultT1
		}
		cfg.Timers.TUInvite = cfg.RingTimeout + 64*t1
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		cfg:     cfg,
		log:     log,
		parser:  sipmsg.NewParser(cfg.Limits),
		media:   mf,
		ctx:     ctx,
		cancel:  cancel,
		calls:   make(map[*Call]struct{}),
		byConn:  make(map[*transport.Conn]map[*Call]struct{}),
		dialogs: make(map[dialogKey]*leg),
	}
	s.routes.Store(routes)
	s.tp = transport.New(log.With("layer", "transport"), cfg.Transport, s.onPacket)
	s.tx = txn.New(s.send, s, cfg.Timers, log.With("layer", "txn"))
	s.tx.OnStray = s.onStray
	s.tp.OnConnClose(s.connLost)
	return s
}

// Listen binds a SIP listener and returns its address.
func (s *Server) Listen(name string, kind transport.Kind, addr string, tlsConf *tls.Config) (netip.AddrPort, error) {
	return s.tp.Listen(name, kind, addr, tlsConf)
}

// Transport exposes the transport layer for wiring (HTTP handler, client TLS).
func (s *Server) Transport() *transport.Layer { return s.tp }

// SetEcho sets the address of the built-in echo destination (UDP).
func (s *Server) SetEcho(addr netip.AddrPort) { s.echo.Store(&addr) }

// SetRoutes swaps the route table; calls in progress keep the trunks they
// already picked.
func (s *Server) SetRoutes(t *routing.Table) { s.routes.Store(t) }

// Stats returns the server's counters.
func (s *Server) Stats() *Stats { return &s.stats }

// ActiveCalls is the number of calls held.
func (s *Server) ActiveCalls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.calls)
}

// Transactions is the number of live SIP transactions.
func (s *Server) Transactions() int { return s.tx.Count() }

// TxStats returns the transaction layer's counters.
func (s *Server) TxStats() txn.Stats { return s.tx.Stats() }

// Close ends every call (BYE or CANCEL on both legs, bounded by ctx), then
// stops transactions and listeners. Safe to call more than once.
func (s *Server) Close(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	calls := make([]*Call, 0, len(s.calls))
	for c := range s.calls {
		calls = append(calls, c)
	}
	s.mu.Unlock()
	for _, c := range calls {
		c.Hangup(outcome.CauseSBCShutdown)
	}
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		s.log.Warn("calls still ending at shutdown", "calls", s.ActiveCalls())
	}
	// Closing the transactions ends what is left: each pending client
	// transaction reports a timeout to its call, which then finishes.
	s.tx.Close()
	<-done
	s.pumps.Wait()
	s.cancel()
	return s.tp.Close()
}

// send is the transaction layer's way out.
func (s *Server) send(msg sip.Message, dst transport.Target) error {
	if s.log.Enabled(context.Background(), slog.LevelDebug) {
		s.log.Debug("sip out", "to", dst.String(), "msg", msg.String())
	}
	data := []byte(msg.String())
	s.tapOut(msg, data, dst)
	return s.tp.Send(dst, data)
}

// onPacket parses what the transport delivers and hands it to the
// transaction layer; a request that cannot be parsed gets 400 with the
// reason when it carries enough to be answered, and is dropped otherwise.
func (s *Server) onPacket(p transport.Packet) {
	src := transport.Target{Kind: p.Kind, Addr: p.Src, Conn: p.Conn, Local: p.Local, Listener: p.Listener}
	if pol := s.policy(); pol != nil && pol.Banned(p.Src.Addr(), lowerKind(p.Kind)) {
		return // a banned source: not even parsed
	}
	msg, err := s.parser.Parse(p.Data)
	if err != nil {
		s.stats.BadMessages.Add(1)
		s.log.Debug("bad sip message", "src", p.Src.String(), "err", err)
		if res := sipmsg.BadRequest(p.Data, sipmsg.CodeOf(err), sipmsg.ReasonOf(err), s.cfg.UserAgent); res != nil {
			_ = s.tp.Send(src, res)
		}
		return
	}
	if req, ok := msg.(sip.Request); ok && !s.admitEarly(req, src) {
		return
	}
	if s.log.Enabled(context.Background(), slog.LevelDebug) {
		s.log.Debug("sip in", "from", src.String(), "msg", msg.String())
	}
	s.tapIn(msg, p)
	s.tx.Receive(msg, src)
}

// OnRequest implements txn.Handler: it is called for every new request.
func (s *Server) OnRequest(req sip.Request, tx *txn.ServerTx) {
	if tx != nil && req.Method() != sip.ACK {
		if mf, ok := sipmsg.HeaderInt(req, "Max-Forwards"); ok && mf <= 0 && req.Method() != sip.OPTIONS {
			s.respond(tx, 483, "Too Many Hops")
			return
		}
	}
	if sipmsg.ToTag(req) != "" {
		s.inDialog(req, tx)
		return
	}
	if tx == nil { // ACK outside any dialog: nothing to do
		return
	}
	switch req.Method() {
	case sip.INVITE:
		s.newCall(req, tx)
	case sip.OPTIONS:
		s.respond(tx, 200, "OK", sipmsg.Generic("Allow", allowed), sipmsg.Generic("Accept", "application/sdp"))
	case sip.BYE, sip.UPDATE, sip.INFO, sip.PRACK:
		s.stats.NoDialog.Add(1)
		s.respond(tx, 481, "Call/Transaction Does Not Exist")
	case sip.REGISTER:
		s.onRegister(req, tx)
	default:
		s.respond(tx, 405, "Method Not Allowed", sipmsg.Generic("Allow", allowed))
	}
}

// allowed is the Allow value on everything the SBC sends.
const allowed = "INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE, INFO"

// inDialog routes a request with a To tag to the leg that owns the dialog.
func (s *Server) inDialog(req sip.Request, tx *txn.ServerTx) {
	key := dialogKey{callID: sipmsg.CallID(req), localTag: sipmsg.ToTag(req)}
	s.mu.Lock()
	l := s.dialogs[key]
	s.mu.Unlock()
	if l == nil {
		if tx != nil {
			s.stats.NoDialog.Add(1)
			if req.Method() == sip.OPTIONS {
				s.respond(tx, 200, "OK", sipmsg.Generic("Allow", allowed))
				return
			}
			s.respond(tx, 481, "Call/Transaction Does Not Exist")
		}
		return
	}
	if !l.call.post(event{kind: evRequest, leg: l, req: req, stx: tx}) && tx != nil {
		// The call ended between the lookup and now.
		s.respond(tx, 481, "Call/Transaction Does Not Exist")
	}
}

// onStray gets responses that match no client transaction: a 2xx to an
// INVITE retransmitted after its transaction ended must be ACKed again.
func (s *Server) onStray(res sip.Response, _ transport.Target) {
	if res.StatusCode() < 200 || res.StatusCode() >= 300 {
		return
	}
	if _, m := sipmsg.CSeq(res); m != sip.INVITE {
		return
	}
	key := dialogKey{callID: sipmsg.CallID(res), localTag: sipmsg.FromTag(res)}
	s.mu.Lock()
	l := s.dialogs[key]
	s.mu.Unlock()
	if l != nil {
		l.call.post(event{kind: evStray, leg: l, res: res})
	}
}

// respond answers a server transaction from the SBC itself.
func (s *Server) respond(tx *txn.ServerTx, code int, reason string, extra ...sip.Header) {
	res := txn.NewResponse(tx.Request(), code, reason)
	s.finishResponse(res)
	for _, h := range extra {
		res.AppendHeader(h)
	}
	if err := tx.Respond(res); err != nil {
		s.log.Debug("respond", "code", code, "err", err)
	}
}

// finishResponse gives a final response the SBC answers itself a To tag
// and the Server header.
func (s *Server) finishResponse(res sip.Response) {
	if res.StatusCode() >= 200 && sipmsg.ToTag(res) == "" {
		if to, ok := res.To(); ok {
			sipmsg.SetTag(to, sipmsg.NewToken(6))
		}
	}
	res.AppendHeader(sipmsg.Generic("Server", s.cfg.UserAgent))
}

// addDialog indexes a leg's dialog so in-dialog requests find it.
func (s *Server) addDialog(l *leg) {
	s.mu.Lock()
	s.dialogs[dialogKey{l.callID, l.localTag}] = l
	s.mu.Unlock()
}

func (s *Server) removeDialog(l *leg) {
	s.mu.Lock()
	if s.dialogs[dialogKey{l.callID, l.localTag}] == l {
		delete(s.dialogs, dialogKey{l.callID, l.localTag})
	}
	s.mu.Unlock()
}

// hostFor returns the host:port the SBC advertises on a transport, seen
// from a message that arrived on local (or, for outbound, the first
// listener of that kind).
func (s *Server) hostFor(kind transport.Kind, local netip.AddrPort) (string, uint16, error) {
	if !local.IsValid() || local.Addr().IsUnspecified() {
		lp, ok := s.tp.LocalAddr(kind)
		if !ok {
			return "", 0, fmt.Errorf("no %s listener", kind)
		}
		if local.IsValid() {
			lp = netip.AddrPortFrom(lp.Addr(), local.Port())
		}
		local = lp
	}
	host := s.cfg.PublicHost
	if host == "" {
		host = local.Addr().String()
		if local.Addr().Is6() {
			host = "[" + host + "]"
		}
	}
	return host, local.Port(), nil
}

var errClosed = errors.New("server closed")

// track registers a call; it fails once Close has begun.
func (s *Server) track(c *Call) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errClosed
	}
	s.calls[c] = struct{}{}
	s.wg.Add(1)
	return nil
}

func (s *Server) untrack(c *Call) {
	s.mu.Lock()
	delete(s.calls, c)
	s.mu.Unlock()
	s.wg.Done()
}

// lowerSet turns header names into a lookup set.
func lowerSet(names ...[]string) map[string]bool {
	m := make(map[string]bool)
	for _, list := range names {
		for _, n := range list {
			m[strings.ToLower(strings.TrimSpace(n))] = true
		}
	}
	return m
}
