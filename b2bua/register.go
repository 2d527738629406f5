package b2bua

import (
	"strconv"
	"strings"
	"time"

	"github.com/ghettovoice/gosip/sip"

	"github.com/sbc-project/sbc/b2bua/registrar"
	"github.com/sbc-project/sbc/b2bua/routing"
	"github.com/sbc-project/sbc/b2bua/sipmsg"
	"github.com/sbc-project/sbc/b2bua/transport"
	"github.com/sbc-project/sbc/b2bua/txn"
	"github.com/sbc-project/sbc/internal/config"
	"github.com/sbc-project/sbc/policy"
)

// Registration: REGISTER requests are routed like calls. A route whose
// target is `registered` makes the SBC the registrar (digest with the
// configured users, bindings kept here); a route whose target is `trunks`
// relays the registration to the route's first trunk that is up (the PBX),
// with a Contact of the SBC's own whose user part is the binding's token,
// so the PBX's calls come back here and reach the browser over the very
// connection it registered on. Either way calls routed to `registered`
// ring every live binding of the called user in parallel.
//
// A binding exists only once the registrar that checked the password (ours,
// or the PBX's for a relayed registration) said 2xx, and only for the
// address-of-record it accepted: a call on the binding's connection is
// authenticated as that user (policyauth.go), and calls to the user ring
// it, so nothing may come of a REGISTER the registrar refused.

// regState is the registration part of the server.
type regState struct {
	store  *registrar.Store
	auth   *registrar.Auth
	relays *relays
}

// SetRegistrar gives the server its binding store and digest
// authenticator. Without it, REGISTER is answered 501 and calls to
// registered users 480. Call it before Listen.
func (s *Server) SetRegistrar(store *registrar.Store, auth *registrar.Auth) {
	s.reg = &regState{store: store, auth: auth, relays: newRelays()}
	store.OnExpire(func(b registrar.Binding) { s.forgetRelay(b.Token, false) })
	s.tp.OnConnClose(s.connClosed)
}

// Registrations returns the live bindings (for the admin API).
func (s *Server) Registrations() []registrar.Binding {
	if s.reg == nil {
		return nil
	}
	return s.reg.store.List()
}

// onRegister handles an out-of-dialog REGISTER.
func (s *Server) onRegister(req sip.Request, tx *txn.ServerTx) {
	if s.reg == nil {
		s.respond(tx, 501, "Registration Not Supported Here")
		return
	}
	to, ok := req.To()
	if !ok || to.Address == nil {
		s.respond(tx, 400, "Missing To")
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
	route, ok := s.routes.Load().Route(rr)
	if !ok {
		s.respond(tx, 403, "Forbidden (no route for this registration)")
		return
	}
	switch route.Target {
	case config.TargetRegistered:
		s.registerLocally(req, tx, aor, src)
	case config.TargetTrunks:
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
func (s *Server) registerLocally(req sip.Request, tx *txn.ServerTx, aor string, src transport.Target) {
	user, res := s.reg.auth.Verify(string(req.Method()), req.Recipient().String(), headerValues(req, "Authorization"))
	switch res {
	case registrar.Ok:
	case registrar.Missing, registrar.Stale:
		s.challenge(tx, 401, res == registrar.Stale)
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
func (s *Server) applyBinding(req sip.Request, tx *txn.ServerTx, aor string, src transport.Target) {
	u, err := registrar.ParseUpdate(req, aor, registrar.Flow{Target: src})
	if err != nil {
		s.respond(tx, 400, "Bad Contact")
		return
	}
	current, code, reason := s.reg.store.Apply(u)
	if code >= 300 {
		s.respondRegisterFailure(tx, code, reason, strconv.Itoa(s.reg.store.MinExpires()))
		return
	}
	s.respondBindings(tx, req, current)
}

const http1123 = "Mon, 02 Jan 2006 15:04:05 GMT"

// registerAuthFailed counts a REGISTER whose credentials a registrar (ours
// or, relayed, the PBX's) refused, toward the source's ban.
func (s *Server) registerAuthFailed(src transport.Target, aor, why string) {
	s.stats.AuthFailures.Add(1)
	s.report(src, policy.EventAuthFailure)
	s.log.Info("registration refused", "aor", aor, "source", src.Addr, "reason", why)
}

// challenge answers with a digest challenge, one header per algorithm.
func (s *Server) challenge(tx *txn.ServerTx, code int, stale bool) {
	name := "WWW-Authenticate"
	reason := "Unauthorized"
	if code == 407 {
		name, reason = "Proxy-Authenticate", "Proxy Authentication Required"
	}
	var hs []sip.Header
	for _, v := range s.reg.auth.Challenge(stale) {
		hs = append(hs, sipmsg.Generic(name, v))
	}
	s.respond(tx, code, reason, hs...)
}

func headerValues(m sip.Message, name string) []string {
	var out []string
	for _, h := range m.GetHeaders(name) {
		out = append(out, h.Value())
	}
	return out
}

func hostPort(host string, port uint16) string {
	if strings.Contains(host, ":") && !strings.HasPrefix(host, "[") {
		host = "[" + host + "]"
	}
	return host + ":" + strconv.Itoa(int(port))
}
