package registration

import (
	"log/slog"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ghettovoice/gosip/sip"

	"github.com/sbc-project/sbc/b2bua/registrar"
	"github.com/sbc-project/sbc/b2bua/routing"
	"github.com/sbc-project/sbc/b2bua/sipmsg"
	"github.com/sbc-project/sbc/b2bua/transport"
	"github.com/sbc-project/sbc/b2bua/txn"
)

// Config is what the service needs to know of the SBC's configuration.
type Config struct {
	UserAgent  string        // the Server and User-Agent header value
	RetryAfter time.Duration // Retry-After of a 503 when no trunk is up
}

// Requester starts client transactions; *txn.Layer implements it.
type Requester interface {
	Request(req sip.Request, dst transport.Target) (*txn.ClientTx, error)
}

// Deps are the parts the service works with. All are required.
type Deps struct {
	Store *registrar.Store
	Auth  *registrar.Auth
	Tx    Requester
	// Host is the host and port the SBC advertises in Via and Contact on a
	// transport toward dst (its public address, else the address of its
	// listener that reaches dst's IP family; IPv6 in brackets).
	Host func(kind transport.Kind, dst netip.Addr) (string, uint16, error)
	// Routes is the route table in force.
	Routes func() *routing.Table
	// AuthFailed is told of every REGISTER whose credentials a registrar
	// refused (ours, or the PBX's for a relayed one): it counts toward the
	// source's ban.
	AuthFailed func(src transport.Target)
	// Bound, when set, is told of each binding on a stream connection
	// that a REGISTER made or refreshed, once it is stored (and, relayed,
	// accepted by the PBX): the calls side moves a call waiting for that
	// registration instance there (b2bua/flowgrace.go).
	Bound func(b registrar.Binding)
	Log   *slog.Logger
}

// Service handles REGISTER and answers the calls side's questions about
// bindings. Its methods are safe for concurrent use.
type Service struct {
	cfg     Config
	store   *registrar.Store
	auth    *registrar.Auth
	tx      Requester
	host    func(kind transport.Kind, dst netip.Addr) (string, uint16, error)
	routes  func() *routing.Table
	failed  func(src transport.Target)
	bound   func(b registrar.Binding)
	log     *slog.Logger
	relays  *relays
	wg      sync.WaitGroup // goroutines carrying upstream answers (track)
	goMu    sync.Mutex     // orders track with Wait
	waiting bool           // Wait has begun: track starts nothing (under goMu)
}

// New returns the service. Give ConnClosed to the transport layer so that
// a closed connection takes its bindings with it.
func New(cfg Config, d Deps) *Service {
	s := &Service{cfg: cfg, store: d.Store, auth: d.Auth, tx: d.Tx, host: d.Host, routes: d.Routes,
		failed: d.AuthFailed, bound: d.Bound, log: d.Log, relays: newRelays()}
	d.Store.OnExpire(func(b registrar.Binding) { s.forgetRelay(b.Token, false) })
	return s
}

// Auth is the digest authenticator the service checks REGISTER with; the
// calls side checks INVITE credentials with it too.
func (s *Service) Auth() *registrar.Auth { return s.auth }

// Wait waits for the goroutines carrying upstream answers; call it after
// the transaction layer closed. From then on no new one starts (a
// connection closing meanwhile would otherwise start one as Wait began:
// the race detector's "Add concurrent with Wait").
func (s *Service) Wait() {
	s.goMu.Lock()
	s.waiting = true
	s.goMu.Unlock()
	s.wg.Wait()
}

// track runs f on a goroutine Wait waits for, unless Wait has begun: then
// the transaction layer is closed and there is nothing left to carry.
func (s *Service) track(f func()) {
	s.goMu.Lock()
	defer s.goMu.Unlock()
	if s.waiting {
		return
	}
	s.wg.Go(f)
}

// respond answers a REGISTER from the SBC itself.
func (s *Service) respond(tx *txn.ServerTx, code int, reason string, extra ...sip.Header) {
	if err := txn.Answer(tx, code, reason, s.cfg.UserAgent, extra...); err != nil {
		s.log.Debug("respond", "code", code, "err", err)
	}
}

// Handle takes an out-of-dialog REGISTER.
func (s *Service) Handle(req sip.Request, tx *txn.ServerTx) {
	to, ok := req.To()
	if !ok || to.Address == nil {
		s.respond(tx, 400, "Missing To")
		return
	}
	if _, sipURI := to.Address.(*sip.SipUri); !sipURI {
		// The To of a REGISTER is the address of record: a SIP or SIPS
		// URI (RFC 3261 10.2; RFC 4475 3.3.4).
		s.respond(tx, 400, "To Is Not a SIP URI")
		return
	}
	aor := registrar.AOR(to.Address)
	if aor == "" {
		s.respond(tx, 404, "Not Found (no user in To)")
		return
	}
	src := tx.Source()
	rr := routing.Request{Listener: src.Listener, Src: src.Addr.Addr().Unmap(), RURIUser: to.Address.User().String()}
	if f, ok := req.From(); ok && f.Address != nil {
		rr.FromDomain = f.Address.Host()
	}
	route, ok := s.routes().Route(rr)
	if !ok {
		s.respond(tx, 403, "Forbidden (no route for this registration)")
		return
	}
	switch route.Target {
	case routing.TargetRegistered:
		s.registerLocally(req, tx, aor, src)
	case routing.TargetTrunks:
		for _, tr := range route.Candidates() {
			s.relayRegister(req, tx, aor, src, tr)
			return
		}
		s.respond(tx, 503, "Service Unavailable", sipmsg.Generic("Retry-After", strconv.Itoa(int(s.cfg.RetryAfter/time.Second))))
	default:
		s.respond(tx, 403, "Forbidden (route does not take registrations)")
	}
}

// registerLocally is the SBC as registrar: digest, then the bindings.
func (s *Service) registerLocally(req sip.Request, tx *txn.ServerTx, aor string, src transport.Target) {
	user, res := s.auth.Verify(string(req.Method()), req.Recipient().String(), sipmsg.Values(req, "Authorization"))
	switch res {
	case registrar.Ok:
	case registrar.Missing, registrar.Stale, registrar.Replay:
		if res == registrar.Replay {
			s.log.Debug("registration nonce reused: challenged stale", "aor", aor, "source", src.Addr)
		}
		s.challenge(tx, 401, res.StaleNonce())
		return
	default:
		// The log says why; the answer does not, so a password cracker
		// cannot tell an unknown user from a wrong password.
		s.registerAuthFailed(src, aor, res.String())
		s.respond(tx, 403, "Forbidden")
		return
	}
	if u, _, _ := strings.Cut(aor, "@"); !strings.EqualFold(u, user) {
		s.respond(tx, 403, "Forbidden (credentials are for another user)")
		return
	}
	s.applyBinding(req, tx, aor, src)
}

// applyBinding stores the REGISTER's bindings and answers it.
func (s *Service) applyBinding(req sip.Request, tx *txn.ServerTx, aor string, src transport.Target) {
	u, err := registrar.ParseUpdate(req, aor, registrar.Flow{Target: src})
	if err != nil {
		s.respond(tx, 400, "Bad Contact")
		return
	}
	current, code, reason := s.store.Apply(u)
	if code >= 300 {
		s.respondRegisterFailure(tx, code, reason, strconv.Itoa(s.store.MinExpires()))
		return
	}
	s.tellBound(current, src) // first: what it moves is moved when the UA has its answer
	s.respondBindings(tx, req, current)
}

// tellBound tells Deps.Bound of the bindings of current on src's
// connection.
func (s *Service) tellBound(current []registrar.Binding, src transport.Target) {
	if s.bound == nil || src.Conn == nil {
		return
	}
	for _, b := range current {
		if b.Flow.Target.Conn == src.Conn {
			s.bound(b)
		}
	}
}

const http1123 = "Mon, 02 Jan 2006 15:04:05 GMT"

// registerAuthFailed counts a REGISTER whose credentials a registrar (ours
// or, relayed, the PBX's) refused, toward the source's ban.
func (s *Service) registerAuthFailed(src transport.Target, aor, why string) {
	s.failed(src)
	s.log.Info("registration refused", "aor", aor, "source", src.Addr, "reason", why)
}

// challenge answers with a digest challenge, one header per algorithm.
func (s *Service) challenge(tx *txn.ServerTx, code int, stale bool) {
	name := "WWW-Authenticate"
	reason := "Unauthorized"
	if code == 407 {
		name, reason = "Proxy-Authenticate", "Proxy Authentication Required"
	}
	var hs []sip.Header
	for _, v := range s.auth.Challenge(stale) {
		hs = append(hs, sipmsg.Generic(name, v))
	}
	s.respond(tx, code, reason, hs...)
}

func hostPort(host string, port uint16) string {
	if strings.Contains(host, ":") && !strings.HasPrefix(host, "[") {
		host = "[" + host + "]"
	}
	return host + ":" + strconv.Itoa(int(port))
}
