package b2bua

import (
	"context"
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

// regState is the registration part of the server.
type regState struct {
	store *registrar.Store
	auth  *registrar.Auth

	mu    sync.Mutex
	relay map[string]*relayBinding // by binding token
}

// relayBinding is what the SBC keeps of a registration it relays: its own
// dialog toward the PBX (Call-ID, CSeq) and what to de-register with.
type relayBinding struct {
	trunk  *routing.Trunk
	callID string
	cseq   uint32
	last   sip.Request // the last REGISTER sent upstream (for de-registration)
}

// SetRegistrar gives the server its binding store and digest
// authenticator. Without it, REGISTER is answered 501 and calls to
// registered users 480. Call it before Listen.
func (s *Server) SetRegistrar(store *registrar.Store, auth *registrar.Auth) {
	s.reg = &regState{store: store, auth: auth, relay: make(map[string]*relayBinding)}
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
		s.stats.AuthFailures.Add(1)
		s.report(src, policy.EventAuthFailure)
		// The log says why; the answer does not, so a password cracker
		// cannot tell an unknown user from a wrong password.
		s.log.Info("registration refused", "aor", aor, "source", src.Addr, "reason", res.String())
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
		var extra []sip.Header
		if code == 423 {
			extra = append(extra, sipmsg.Generic("Min-Expires", strconv.Itoa(s.reg.store.MinExpires())))
		}
		s.respond(tx, code, reason, extra...)
		return
	}
	res := txn.NewResponse(req, 200, "OK")
	now := time.Now()
	for _, b := range current {
		res.AppendHeader(sipmsg.Generic("Contact", b.ContactValue(now)))
	}
	res.AppendHeader(sipmsg.Generic("Date", now.UTC().Format(http1123)))
	s.finishResponse(res)
	_ = tx.Respond(res)
}

const http1123 = "Mon, 02 Jan 2006 15:04:05 GMT"

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

// relayRegister re-originates a REGISTER toward the PBX with the SBC's own
// Contact. The PBX's challenges go back to the browser and its answers go
// forward (the request-URI is kept, so the digest still matches); the
// binding is kept here for as long as the PBX grants.
func (s *Server) relayRegister(req sip.Request, tx *txn.ServerTx, aor string, src transport.Target, tr *routing.Trunk) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	addr, err := tr.Addr(ctx)
	cancel()
	kind, kerr := transport.ParseKind(tr.Transport)
	if err != nil || kerr != nil {
		s.respond(tx, 503, "Service Unavailable")
		return
	}
	dst := transport.Target{Kind: kind, Addr: netip.AddrPortFrom(addr.Addr().Unmap(), addr.Port())}
	// The binding exists (pending) before the PBX answers, so its token
	// can be the user part of our Contact.
	u, err := registrar.ParseUpdate(req, aor, registrar.Flow{Target: src})
	if err != nil {
		s.respond(tx, 400, "Bad Contact")
		return
	}
	removing := u.Wildcard || allZero(u)
	var token string
	if !removing {
		current, code, reason := s.reg.store.Apply(u)
		if code >= 300 {
			s.respond(tx, code, reason)
			return
		}
		token = tokenFor(current, src)
	} else if bs := s.reg.store.Lookup(aor); len(bs) > 0 {
		for _, b := range bs {
			if sameFlow(b.Flow.Target, src) {
				token = b.Token
			}
		}
	}
	if token == "" {
		// Nothing of ours to de-register: answer for the PBX.
		res := txn.NewResponse(req, 200, "OK")
		s.finishResponse(res)
		_ = tx.Respond(res)
		return
	}
	rb := s.relayFor(token, tr)
	host, port, err := s.hostFor(dst.Kind, netip.AddrPort{})
	if err != nil {
		s.respond(tx, 500, "Server Internal Error")
		return
	}
	s.reg.mu.Lock()
	seq := rb.cseq
	rb.cseq++
	s.reg.mu.Unlock()
	out := s.upstreamRegister(req, rb.callID, seq, token, host, port, dst.Kind, removing, u)
	s.reg.mu.Lock()
	rb.last = out
	s.reg.mu.Unlock()
	ctx2, err := s.tx.Request(out, dst)
	if err != nil {
		s.respond(tx, 503, "Service Unavailable")
		return
	}
	s.pumps.Add(1)
	go func() {
		defer s.pumps.Done()
		final := false
		for res := range ctx2.Responses() {
			if res.StatusCode() < 200 {
				continue
			}
			final = true
			s.onUpstreamRegister(req, tx, res, token, removing, aor, src)
		}
		if !final {
			s.forgetPending(token, removing)
			s.respond(tx, 408, "Request Timeout")
		}
	}()
}

// upstreamRegister builds the REGISTER toward the PBX.
func (s *Server) upstreamRegister(req sip.Request, callID string, seq uint32, token, host string, port uint16, kind transport.Kind, removing bool, u registrar.Update) sip.Request {
	from, _ := req.From()
	to, _ := req.To()
	p := sip.Port(port)
	via := sip.ViaHeader{&sip.ViaHop{ProtocolName: "SIP", ProtocolVersion: "2.0", Transport: kind.String(), Host: host, Port: &p,
		Params: sip.NewParams().Add("branch", sip.String{Str: txn.NewBranch()}).Add("rport", nil)}}
	mf := sip.MaxForwards(70)
	cid := sip.CallID(callID)
	fromH := &sip.FromHeader{DisplayName: from.DisplayName, Address: from.Address.Clone(), Params: sip.NewParams().Add("tag", sip.String{Str: sipmsg.NewToken(8)})}
	toH := &sip.ToHeader{DisplayName: to.DisplayName, Address: to.Address.Clone(), Params: sip.NewParams()}
	hdrs := []sip.Header{via, &mf, fromH, toH, &cid, &sip.CSeq{SeqNo: seq, MethodName: sip.REGISTER}}
	expires := u.Expires
	if len(u.Contacts) > 0 && u.Contacts[0].Expires >= 0 {
		expires = u.Contacts[0].Expires
	}
	if removing {
		expires = 0
	}
	contact := "<sip:" + token + "@" + hostPort(host, port)
	if kind != transport.UDP {
		contact += ";transport=" + lowerKind(kind)
	}
	contact += ">"
	hdrs = append(hdrs, sipmsg.Generic("Contact", contact))
	if expires >= 0 {
		hdrs = append(hdrs, sipmsg.Generic("Expires", strconv.Itoa(expires)))
	}
	for _, name := range []string{"Authorization", "Proxy-Authorization"} {
		for _, v := range headerValues(req, name) {
			hdrs = append(hdrs, sipmsg.Generic(name, v))
		}
	}
	hdrs = append(hdrs, sipmsg.Generic("User-Agent", s.cfg.UserAgent))
	return sipmsg.NewRequest(sip.REGISTER, req.Recipient().Clone(), hdrs, "", "")
}

// onUpstreamRegister carries the PBX's final answer back to the browser.
func (s *Server) onUpstreamRegister(req sip.Request, tx *txn.ServerTx, res sip.Response, token string, removing bool, aor string, src transport.Target) {
	code := int(res.StatusCode())
	switch {
	case code == 401 || code == 407:
		// The pending binding stays, so the browser's answer goes upstream
		// in the same registration dialog (Call-ID) as the challenge.
		var hs []sip.Header
		for _, name := range []string{"WWW-Authenticate", "Proxy-Authenticate"} {
			for _, v := range headerValues(res, name) {
				hs = append(hs, sipmsg.Generic(name, v))
			}
		}
		s.respond(tx, code, res.Reason(), hs...)
	case code >= 200 && code < 300:
		if removing {
			s.reg.store.Remove(token)
			s.forgetRelay(token, false)
			out := txn.NewResponse(req, 200, "OK")
			s.finishResponse(out)
			_ = tx.Respond(out)
			return
		}
		// The binding was stored when the REGISTER went upstream; the
		// browser is told what the PBX granted, so it refreshes in time.
		granted := grantedExpires(res, token)
		if granted == 0 {
			s.reg.store.Remove(token)
			s.forgetRelay(token, false)
		}
		out := txn.NewResponse(req, 200, "OK")
		now := time.Now()
		for _, b := range s.reg.store.Lookup(aor) {
			secs := b.Remaining(now)
			if b.Token == token && granted >= 0 {
				secs = min(secs, granted)
			}
			out.AppendHeader(sipmsg.Generic("Contact", "<"+b.Contact+">;expires="+strconv.Itoa(secs)))
		}
		out.AppendHeader(sipmsg.Generic("Date", now.UTC().Format(http1123)))
		s.finishResponse(out)
		_ = tx.Respond(out)
	default:
		s.forgetPending(token, removing)
		if code == 423 {
			s.respond(tx, 423, res.Reason(), sipmsg.Generic("Min-Expires", sipmsg.Header(res, "Min-Expires")))
			return
		}
		s.respond(tx, code, res.Reason())
	}
}

// grantedExpires is the expiry the PBX granted our Contact: its expires
// parameter in the 200, else the Expires header, else -1 (keep ours).
func grantedExpires(res sip.Response, token string) int {
	for _, h := range res.GetHeaders("Contact") {
		v := h.Value()
		if !strings.Contains(v, token) {
			continue
		}
		if i := strings.Index(strings.ToLower(v), "expires="); i >= 0 {
			n := 0
			for _, ch := range v[i+len("expires="):] {
				if ch < '0' || ch > '9' {
					break
				}
				n = n*10 + int(ch-'0')
			}
			return n
		}
	}
	if n, ok := sipmsg.HeaderInt(res, "Expires"); ok {
		return n
	}
	return -1
}

func (s *Server) relayFor(token string, tr *routing.Trunk) *relayBinding {
	s.reg.mu.Lock()
	defer s.reg.mu.Unlock()
	rb := s.reg.relay[token]
	if rb == nil {
		rb = &relayBinding{trunk: tr, callID: sipmsg.NewToken(12), cseq: 1}
		s.reg.relay[token] = rb
	}
	return rb
}

// forgetPending drops a binding the PBX did not (yet) accept, unless it
// was accepted before (a refresh that failed keeps the old binding until
// it expires).
func (s *Server) forgetPending(token string, removing bool) {
	if removing {
		return
	}
	s.reg.mu.Lock()
	rb := s.reg.relay[token]
	s.reg.mu.Unlock()
	if rb != nil && rb.cseq <= 2 {
		s.reg.store.Remove(token)
		s.forgetRelay(token, false)
	}
}

// forgetRelay drops the relay state of a binding; with unregister it first
// tells the PBX (best effort: the last credentials are reused, a new
// challenge cannot be answered without the browser).
func (s *Server) forgetRelay(token string, unregister bool) {
	s.reg.mu.Lock()
	rb := s.reg.relay[token]
	delete(s.reg.relay, token)
	s.reg.mu.Unlock()
	if rb == nil || !unregister || rb.last == nil {
		return
	}
	out := sip.CopyRequest(rb.last)
	out.ReplaceHeaders("Expires", []sip.Header{sipmsg.Generic("Expires", "0")})
	cseq := &sip.CSeq{SeqNo: rb.cseq + 1, MethodName: sip.REGISTER}
	out.ReplaceHeaders("CSeq", []sip.Header{cseq})
	if via, ok := out.Via(); ok && len(via) > 0 {
		via[0].Params.Add("branch", sip.String{Str: txn.NewBranch()})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	addr, err := rb.trunk.Addr(ctx)
	cancel()
	kind, kerr := transport.ParseKind(rb.trunk.Transport)
	if err != nil || kerr != nil {
		return
	}
	dst := transport.Target{Kind: kind, Addr: netip.AddrPortFrom(addr.Addr().Unmap(), addr.Port())}
	if ct, err := s.tx.Request(out, dst); err == nil {
		s.pumps.Add(1)
		go func() {
			defer s.pumps.Done()
			for range ct.Responses() {
			}
		}()
	}
}

// connClosed removes the bindings that lived on a closed connection and,
// for relayed ones, de-registers them at the PBX.
func (s *Server) connClosed(c *transport.Conn) {
	removed := s.reg.store.RemoveFlow(func(f registrar.Flow) bool { return f.Target.Conn == c })
	for _, b := range removed {
		s.log.Info("binding removed: connection closed", "aor", b.AOR, "conn", c.String())
		s.forgetRelay(b.Token, true)
	}
}

// registeredDests are the places a call to a registered user rings: the
// binding named by the request-URI user (a token, for calls the PBX sends
// to a relayed registration), else every live binding of that user.
func (s *Server) registeredDests(req sip.Request) []dest {
	if s.reg == nil {
		return nil
	}
	ruri := req.Recipient()
	user := ""
	if u := ruri.User(); u != nil {
		user = u.String()
	}
	var bs []registrar.Binding
	if b, ok := s.reg.store.ByToken(user); ok {
		bs = []registrar.Binding{b}
	} else if aor := registrar.AOR(ruri); aor != "" {
		bs = s.reg.store.Lookup(aor)
		if len(bs) == 0 {
			// The caller may name the SBC's address instead of the
			// users' domain: match the user part.
			for _, b := range s.reg.store.List() {
				if u, _, _ := strings.Cut(b.AOR, "@"); strings.EqualFold(u, user) {
					bs = append(bs, b)
				}
			}
		}
	}
	var out []dest
	for _, b := range bs {
		uri, err := sipmsg.ParseURI(b.Contact)
		if err != nil {
			continue
		}
		aor, _ := sipmsg.ParseURI("sip:" + b.AOR)
		out = append(out, dest{name: "registered", ruri: uri, aor: aor, to: b.Flow.Target})
	}
	return out
}

// keepalives pings every registered UA now and then: WebSocket pings or
// CRLF on stream connections, OPTIONS to UDP contacts (behind NAT the
// pinhole must stay open for the calls to come in).
func (s *Server) keepalives(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for _, b := range s.reg.store.List() {
			tg := b.Flow.Target
			if tg.Conn != nil {
				_ = tg.Conn.Ping()
				continue
			}
			s.optionsPing(b)
		}
	}
}

// optionsPing sends one OPTIONS to a UDP binding; the answer is not waited
// for beyond the transaction.
func (s *Server) optionsPing(b registrar.Binding) {
	uri, err := sipmsg.ParseURI(b.Contact)
	if err != nil {
		return
	}
	host, port, err := s.hostFor(transport.UDP, netip.AddrPort{})
	if err != nil {
		return
	}
	p := sip.Port(port)
	via := sip.ViaHeader{&sip.ViaHop{ProtocolName: "SIP", ProtocolVersion: "2.0", Transport: "UDP", Host: host, Port: &p,
		Params: sip.NewParams().Add("branch", sip.String{Str: txn.NewBranch()}).Add("rport", nil)}}
	self, _ := sipmsg.ParseURI("sip:sbc@" + hostPort(host, port))
	aor, _ := sipmsg.ParseURI("sip:" + b.AOR)
	mf := sip.MaxForwards(70)
	cid := sip.CallID(sipmsg.NewToken(12))
	hdrs := []sip.Header{via, &mf,
		&sip.FromHeader{Address: self, Params: sip.NewParams().Add("tag", sip.String{Str: sipmsg.NewToken(8)})},
		&sip.ToHeader{Address: aor, Params: sip.NewParams()}, &cid, &sip.CSeq{SeqNo: 1, MethodName: sip.OPTIONS},
		sipmsg.Generic("User-Agent", s.cfg.UserAgent)}
	req := sipmsg.NewRequest(sip.OPTIONS, uri, hdrs, "", "")
	if ct, err := s.tx.Request(req, b.Flow.Target); err == nil {
		s.pumps.Add(1)
		go func() {
			defer s.pumps.Done()
			for range ct.Responses() {
			}
		}()
	}
}

// StartKeepalives runs the binding keepalives until ctx is done.
func (s *Server) StartKeepalives(ctx context.Context, every time.Duration) {
	if s.reg == nil || every <= 0 {
		return
	}
	s.pumps.Add(1)
	go func() {
		defer s.pumps.Done()
		s.keepalives(ctx, every)
	}()
}

func headerValues(m sip.Message, name string) []string {
	var out []string
	for _, h := range m.GetHeaders(name) {
		out = append(out, h.Value())
	}
	return out
}

func allZero(u registrar.Update) bool {
	if len(u.Contacts) == 0 {
		return false
	}
	for _, c := range u.Contacts {
		e := c.Expires
		if e < 0 {
			e = u.Expires
		}
		if e != 0 {
			return false
		}
	}
	return true
}

func tokenFor(bs []registrar.Binding, src transport.Target) string {
	for _, b := range bs {
		if sameFlow(b.Flow.Target, src) {
			return b.Token
		}
	}
	if len(bs) > 0 {
		return bs[0].Token
	}
	return ""
}

func sameFlow(a, b transport.Target) bool {
	if a.Conn != nil || b.Conn != nil {
		return a.Conn == b.Conn
	}
	return a.Kind == b.Kind && a.Addr == b.Addr
}

func hostPort(host string, port uint16) string {
	if strings.Contains(host, ":") && !strings.HasPrefix(host, "[") {
		host = "[" + host + "]"
	}
	return host + ":" + strconv.Itoa(int(port))
}
