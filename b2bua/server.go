package b2bua

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ghettovoice/gosip/sip"

	"github.com/sbc-project/sbc/b2bua/outcome"
	"github.com/sbc-project/sbc/b2bua/registrar"
	"github.com/sbc-project/sbc/b2bua/registration"
	"github.com/sbc-project/sbc/b2bua/routing"
	"github.com/sbc-project/sbc/b2bua/sipmsg"
	"github.com/sbc-project/sbc/b2bua/timeline"
	"github.com/sbc-project/sbc/b2bua/transport"
	"github.com/sbc-project/sbc/b2bua/txn"
	"github.com/sbc-project/sbc/media"
	"github.com/sbc-project/sbc/policy"
)

// Config is what the B2BUA needs from the SBC configuration.
type Config struct {
	UserAgent       string
	PublicHosts     []string // advertised hosts for Via/Contact (publicHost picks one per peer); none: the listener's IP
	Limits          sipmsg.Limits
	Transport       transport.Limits
	HeaderWhitelist []string
	SessionExpires  time.Duration
	MinSE           time.Duration
	InviteTimeout   time.Duration // per B-leg attempt, until a provisional answer
	RingTimeout     time.Duration // whole call, until a final answer
	RetryAfter      time.Duration // on 503 when every trunk is down
	// OverloadDelay is the standing queueing delay past which new calls
	// are refused with 503 (overload.go); 0: DefaultOverloadDelay;
	// negative: never (the delay is still measured).
	OverloadDelay time.Duration
	Timers        txn.Timers
	// CallerIDs are the identities asserted for users' calls by user name
	// (users[].caller_id); a user without one is asserted by name.
	CallerIDs map[string]string
	// Rel100 is what leg B's INVITE says of 100rel (prack.go); the zero
	// value: Supported.
	Rel100 Rel100
	// FlowGrace is how long an answered call outlives the closing of the
	// stream connection one of its legs lives on, for the same party to
	// take the dialog over from a new one (flowgrace.go); 0: the call ends
	// at once.
	FlowGrace time.Duration
	// EarlyMedia is the SBC's own audio before an answer: local ringback
	// and announcements (earlymedia.go); nil: none.
	EarlyMedia *EarlyMedia
}

// MediaSession is the per-call SDP seam: each offer and answer from one side
// goes through it and comes out as the SDP for the other side.
// media.Session implements it.
type MediaSession interface {
	// Configure says what a side speaks and wants before its SDP does.
	Configure(side media.Side, o media.SideOptions)
	// Notify sets the receiver of media events (media gone, DTMF for INFO).
	Notify(f func(media.Event))
	// Offer, Answer and Absorb return the SDP to send: bytes nobody
	// changes afterwards, which the call keeps without a copy (sentSDP).
	Offer(from media.Side, sdp []byte) ([]byte, error)
	Answer(from media.Side, sdp []byte) ([]byte, error)
	// Absorb answers a re-offer that changes nothing the other side must
	// know; ok false means it must be relayed.
	Absorb(from media.Side, sdp []byte) (answer []byte, ok bool)
	// SendDTMF plays a digit toward a side as RFC 4733.
	SendDTMF(to media.Side, d media.DTMF) error
	// Codecs returns the main codec negotiated with each side.
	Codecs() [2]string
	// Transcoded reports whether the call's audio was transcoded.
	Transcoded() bool
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

// Hooks are the parts the server calls out to, given once to New. Routes
// and Media are required; every other field may be left zero.
type Hooks struct {
	// Routes is the route table; SetRoutes swaps it at run time (reload).
	Routes *routing.Table
	// Media opens each call's media session.
	Media MediaFactory
	// Bindings and Auth make the server a registrar (package
	// registration): nil Bindings answers REGISTER 501, calls to
	// registered users 480, and nobody can authenticate (the auth stage
	// then refuses every call that needs a password).
	Bindings *registrar.Store
	// Peers makes the server a node of a cluster (peers.go); nil: a
	// single node.
	Peers Peers
	Auth  *registrar.Auth
	// Observer receives the call records (CDRs, metrics).
	Observer outcome.Observer
	// Policy is the policy chain; nil lets every request through.
	Policy Policy
	// Tap sees every SIP message (HEP export, metrics).
	Tap Tap
	// Tracer picks the calls logged in full whatever the log level.
	Tracer Tracer
	// Echo is the built-in echo destination (UDP); invalid: calls routed
	// to echo get 404.
	Echo netip.AddrPort
	// Timelines keeps each call's timeline (timeline.go); nil: none.
	Timelines *timeline.Store
	// Replicate receives answered calls' states at each change, for
	// another node to continue them (replica.go); nil: none kept.
	Replicate Replicator
	// RestoreMedia opens a restored call's media session (Restore); nil:
	// the server restores no call.
	RestoreMedia MediaRestorer
}

// Server is the SIP endpoint of the SBC: it receives, runs the early
// policy stages, hands requests to the transaction layer and dispatches
// them by method: INVITE to a new call, in-dialog requests to the call
// that owns the dialog, REGISTER to the registration service, OPTIONS
// answered here. Create it with New, add listeners with Listen, stop it
// with Close.
type Server struct {
	cfg    Config
	hooks  Hooks
	log    *slog.Logger
	tp     *transport.Layer
	tx     *txn.Layer
	txs    transactions // the transaction layer as calls use it (txs.go)
	parser *sipmsg.Parser
	routes atomic.Pointer[routing.Table]
	reg    *registration.Service // nil: no registrar

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // one per call

	mu      sync.Mutex
	calls   map[*Call]struct{}
	byConn  map[*transport.Conn]map[*Call]struct{} // calls with a leg on a connection (calls.go)
	dialogs map[dialogKey]*leg
	closed  bool
	waiting lostIndex   // calls waiting for a registration instance to come back (flowgrace.go)
	mute    atomic.Bool // abandoned: nothing goes out, nothing is read (replica_restore.go)

	stats    Stats
	draining atomic.Bool    // ops.go
	pending  pendingRecords // records.go
	// maxPending is maxPendingRecords; tests lower it.
	maxPending int64
	load       *overload // overload.go
	// pass is the header whitelist every leg passes (legs share it, read
	// only); contacts the SBC's Contacts legs share (leg.go contactFor).
	pass     map[string]bool
	contacts sharedContacts
	// deadlines run the calls' timers (deadlines.go).
	deadlines deadlines
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

// New builds a server with its hooks; Routes and Media must be set.
func New(cfg Config, h Hooks, log *slog.Logger) *Server {
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
		hooks:   h,
		log:     log,
		parser:  sipmsg.NewParser(cfg.Limits),
		ctx:     ctx,
		cancel:  cancel,
		calls:   make(map[*Call]struct{}),
		byConn:  make(map[*transport.Conn]map[*Call]struct{}),
		dialogs: make(map[dialogKey]*leg),
		pass:    lowerSet(cfg.HeaderWhitelist),

		maxPending: maxPendingRecords,
	}
	s.routes.Store(h.Routes)
	s.tp = transport.New(log.With("layer", "transport"), cfg.Transport, s.onPacket)
	s.load = newOverload(cfg.OverloadDelay, s.tp.SocketOverflow, log)
	s.tx = txn.New(s.send, s, cfg.Timers, log.With("layer", "txn"))
	s.tx.OnStray = s.onStray
	s.tx.SetRenderedSender(s.sendRendered)
	s.txs = txnLayer{layer: s.tx, send: s.send, rendered: s.sendRendered}
	s.tp.OnConnClose(s.connLost)
	if h.Bindings != nil {
		s.reg = registration.New(registration.Config{UserAgent: cfg.UserAgent, RetryAfter: cfg.RetryAfter},
			registration.Deps{
				Store: h.Bindings, Auth: h.Auth, Tx: s.tx, Routes: s.routes.Load, Log: log,
				Host: func(k transport.Kind, dst netip.Addr) (string, uint16, error) {
					return s.hostFor(k, netip.AddrPort{}, dst)
				},
				AuthFailed: s.authFailed,
				Bound:      s.flowRegistered,
			})
		s.tp.OnConnClose(s.reg.ConnClosed)
	}
	return s
}

// authFailed counts credentials a registrar refused (the SBC's or, relayed,
// the PBX's), on REGISTER or INVITE, toward the source's ban.
func (s *Server) authFailed(src transport.Target) {
	s.stats.AuthFailures.Add(1)
	s.report(src, policy.EventAuthFailure)
}

// Registration is the registration service; nil without a registrar.
func (s *Server) Registration() *registration.Service { return s.reg }

// Listen binds a SIP listener with its options (TLS configuration,
// symmetric responses: see transport.ListenOptions) and returns its address.
func (s *Server) Listen(name string, kind transport.Kind, addr string, opts transport.ListenOptions) (netip.AddrPort, error) {
	return s.tp.Listen(name, kind, addr, opts)
}

// Transport exposes the transport layer for wiring (HTTP handler, client TLS).
func (s *Server) Transport() *transport.Layer { return s.tp }

// SetRoutes swaps the route table (reload); calls in progress keep the
// trunks they already picked. Safe at any time.
func (s *Server) SetRoutes(t *routing.Table) { s.routes.Store(t) }

// Routes returns the route table in force.
func (s *Server) Routes() *routing.Table { return s.routes.Load() }

// Stats returns the server's counters.
func (s *Server) Stats() *Stats { return &s.stats }

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
	if s.reg != nil {
		s.reg.Wait()
	}
	s.cancel()
	return s.tp.Close()
}

// send is the transaction layer's way out.
func (s *Server) send(msg sip.Message, dst transport.Target) error {
	if s.log.Enabled(context.Background(), slog.LevelDebug) {
		s.log.Debug("sip out", "to", dst.String(), "msg", msg.String())
	}
	// The transport writes before Send returns and the tap copies what
	// it keeps, so the buffer goes back to its pool right after.
	if s.mute.Load() {
		return errClosed
	}
	w := sipmsg.RenderWire(msg)
	defer w.Free()
	s.tapOut(msg, w.Bytes(), dst)
	return s.tp.Send(dst, w.Bytes())
}

// sendRendered sends a message the call rendered itself; msg is it parsed,
// or nil: then it is parsed again only for a tap or a tracer.
func (s *Server) sendRendered(data []byte, msg sip.Message, dst transport.Target) error {
	if s.mute.Load() {
		return errClosed
	}
	if msg == nil && (s.hooks.Tap != nil || s.hooks.Tracer != nil || s.hooks.Timelines != nil || s.log.Enabled(context.Background(), slog.LevelDebug)) {
		msg, _ = s.parser.Parse(data)
	}
	if msg != nil {
		if s.log.Enabled(context.Background(), slog.LevelDebug) {
			s.log.Debug("sip out", "to", dst.String(), "msg", string(data))
		}
		s.tapOut(msg, data, dst)
	}
	return s.tp.Send(dst, data)
}

// onPacket parses what the transport delivers and hands it to the
// transaction layer; a request that cannot be parsed gets 400 with the
// reason when it carries enough to be answered, and is dropped otherwise.
func (s *Server) onPacket(p transport.Packet) {
	if s.mute.Load() {
		return
	}
	if !p.Received.IsZero() {
		s.load.observe(p.Received, time.Now())
	}
	src := p.Source()
	if pol := s.policy(); pol != nil && pol.Banned(p.Src.Addr(), p.Kind.Param()) {
		return // a banned source: not even parsed
	}
	if s.refuseEarly(p, src) {
		return // a new call refused in overload
	}
	msg, err := s.parser.ParseOwned(p.Data) // the packet is ours: no copy
	if err != nil {
		s.stats.BadMessages.Add(1)
		s.log.Debug("bad sip message", "src", p.Src.String(), "err", err)
		s.answerUnparsable(p.Data, src, err)
		return
	}
	if req, ok := msg.(sip.Request); ok {
		if s.fromPeer(src) {
			if !s.admitPeer(req, src) {
				return
			}
		} else if !s.admitEarly(req, src) {
			return
		}
	}
	if s.log.Enabled(context.Background(), slog.LevelDebug) {
		s.log.Debug("sip in", "from", src.String(), "msg", msg.String())
	}
	s.tapIn(msg, p)
	s.tx.Receive(msg, src)
}

// OnRequest implements txn.Handler: it is called for every new request.
// It checks the hop limit, the one place the SBC does (RFC 3261 16.3: a
// request with Max-Forwards 0 is not carried on, 483; an OPTIONS is
// answered here as its final recipient), then dispatches by dialog and
// method. A call's leg B carries the count on, one less (call2_offer.go).
func (s *Server) OnRequest(req sip.Request, tx *txn.ServerTx) {
	if tx != nil && req.Method() != sip.OPTIONS {
		if mf, ok := sipmsg.HeaderInt(req, "Max-Forwards"); ok && mf <= 0 {
			s.respond(tx, 483, "Too Many Hops")
			return
		}
	}
	if tx != nil && !s.understood(req, tx) {
		return
	}
	if sipmsg.ToTag(req) != "" {
		var stx serverTx // nil for an ACK: no typed nil in the interface
		if tx != nil {
			stx = tx
		}
		s.inDialog(req, stx)
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
		if s.reg == nil {
			s.respond(tx, 501, "Registration Not Supported Here")
			return
		}
		s.reg.Handle(req, tx)
	default:
		s.respond(tx, 405, "Method Not Allowed", sipmsg.Generic("Allow", allowed))
	}
}

// allowed is the Allow value on everything the SBC sends.
const allowed = "INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE, INFO, PRACK, REFER, NOTIFY"

// inDialog routes a request with a To tag to the leg that owns the dialog.
func (s *Server) inDialog(req sip.Request, tx serverTx) {
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
	if !l.call.postHere(event{kind: evRequest, leg: l, req: req, stx: tx}) && tx != nil {
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
		l.call.postHere(event{kind: evStray, leg: l, res: res})
	}
}

// respond answers a server transaction from the SBC itself.
func (s *Server) respond(tx serverTx, code int, reason string, extra ...sip.Header) {
	req := tx.Request()
	if req == nil { // answered for good already (the TU's deadline passed)
		s.log.Debug("respond", "code", code, "err", txn.ErrFinalSent)
		return
	}
	res := txn.NewResponse(req, code, reason)
	s.finishResponse(res)
	for _, h := range extra {
		res.AppendHeader(h)
	}
	if err := tx.Respond(res); err != nil {
		s.log.Debug("respond", "code", code, "err", err)
	}
}

// finishResponse makes a response the SBC builds itself its own (txn.Own):
// a To tag on a final one, and the Server header.
func (s *Server) finishResponse(res sip.Response) { txn.Own(res, s.cfg.UserAgent) }

var errClosed = errors.New("server closed")
