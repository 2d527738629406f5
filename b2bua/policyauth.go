package b2bua

import (
	"context"
	"sync"

	"github.com/ghettovoice/gosip/sip"

	"github.com/sbc-project/sbc/b2bua/registrar"
	"github.com/sbc-project/sbc/b2bua/sipmsg"
	"github.com/sbc-project/sbc/b2bua/transport"
	"github.com/sbc-project/sbc/policy"
)

// Proxy authentication of INVITEs (RFC 3261 section 22.3): the policy
// chain's auth stage asks for credentials on calls toward trunks and
// between web users; they come in Proxy-Authorization and are checked with
// the registrar's digest Auth (same realm, users, HMAC secret and nonces as
// REGISTER), and a missing or wrong one is answered 407 with one
// Proxy-Authenticate per configured algorithm.

// inviteAuth is the policy.Authenticator of one INVITE. Safe for concurrent
// use, though the chain calls Check once.
type inviteAuth struct {
	auth   *registrar.Auth // nil: no registrar, nobody can authenticate
	method string
	uri    string
	values []string // Proxy-Authorization values

	mu   sync.Mutex
	last [][2]string // challenges of the last refusal
}

var (
	_ policy.Authenticator = (*inviteAuth)(nil)
	_ policy.Challenger    = (*inviteAuth)(nil)
)

// inviteAuthenticator returns the Authenticator of req for the policy
// chain, over the server's registrar. Without a registrar (SetRegistrar
// not called) it refuses every request and offers no challenge, so the
// auth stage answers 403: it fails closed.
//
// A call on a WebSocket, TCP or TLS connection that holds a live
// registration made through this SBC is authenticated as that user: the
// registrar (the SBC's own, or the PBX's for relayed registrations)
// checked the password when the binding was made, and nobody else can
// send on that connection. UDP sources can be spoofed and never count.
func (s *Server) inviteAuthenticator(req sip.Request, src transport.Target) policy.Authenticator {
	var a *registrar.Auth
	if s.reg != nil {
		a = s.reg.Auth()
		if user, ok := s.reg.UserOn(src, fromUser(req)); ok {
			return flowAuth{user: user, group: a.Group(user)}
		}
	}
	return newInviteAuth(a, req)
}

// flowAuth is the Authenticator of a call made on a registered connection.
type flowAuth struct{ user, group string }

func (f flowAuth) Check(context.Context) (user, group string, ok bool, challenge [2]string, failed bool) {
	return f.user, f.group, true, [2]string{}, false
}

// fromUser is the user part of req's From URI ("" without one).
func fromUser(req sip.Request) string {
	if f, ok := req.From(); ok && f.Address != nil && f.Address.User() != nil {
		return f.Address.User().String()
	}
	return ""
}

func newInviteAuth(a *registrar.Auth, req sip.Request) *inviteAuth {
	return &inviteAuth{
		auth:   a,
		method: string(req.Method()),
		uri:    req.Recipient().String(),
		values: sipmsg.Values(req, "Proxy-Authorization"),
	}
}

// Check implements policy.Authenticator. Credentials that are wrong
// (unknown user, bad password, malformed ones) are failed; none, expired
// HMAC credentials (a web app must mint new ones) and right ones over a
// nonce that cannot be used (stale, or its nonce-count replayed: the
// request is refused and challenged with stale=true, so a client retries
// by itself and a replayer gets nothing) are not.
func (ia *inviteAuth) Check(context.Context) (user, group string, ok bool, challenge [2]string, failed bool) {
	if ia.auth == nil {
		return "", "", false, challenge, false
	}
	user, group, r := ia.auth.VerifyGroup(ia.method, ia.uri, ia.values)
	switch r {
	case registrar.Ok:
		return user, group, true, challenge, false
	case registrar.BadPassword, registrar.UnknownUser, registrar.Malformed:
		failed = true
	}
	all := ia.challenge(r.StaleNonce())
	if len(all) > 0 {
		challenge = all[0]
	}
	return "", "", false, challenge, failed
}

// challenge mints the challenges to send and keeps them for Challenges.
func (ia *inviteAuth) challenge(stale bool) [][2]string {
	vals := ia.auth.Challenge(stale)
	all := make([][2]string, 0, len(vals))
	for _, v := range vals {
		all = append(all, [2]string{"Proxy-Authenticate", v})
	}
	ia.mu.Lock()
	ia.last = all
	ia.mu.Unlock()
	return all
}

// Challenges implements policy.Challenger: every challenge of the last
// refusal, preferred algorithm first.
func (ia *inviteAuth) Challenges() [][2]string {
	ia.mu.Lock()
	defer ia.mu.Unlock()
	return ia.last
}
