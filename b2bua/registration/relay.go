package registration

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ghettovoice/gosip/sip"

	"github.com/sbc-project/sbc/b2bua/outcome"
	"github.com/sbc-project/sbc/b2bua/registrar"
	"github.com/sbc-project/sbc/b2bua/routing"
	"github.com/sbc-project/sbc/b2bua/sipmsg"
	"github.com/sbc-project/sbc/b2bua/transport"
	"github.com/sbc-project/sbc/b2bua/txn"
)

// relayedRegister is one REGISTER from a UA on its way to the PBX.
type relayedRegister struct {
	req      sip.Request
	tx       *txn.ServerTx
	src      transport.Target
	u        registrar.Update
	dialog   relayDialog
	removing bool
}

// relayRegister re-originates a REGISTER toward the PBX with the SBC's own
// Contact, in a registration dialog of the SBC's per flow and AOR. The
// PBX's challenges go back to the UA and its answers go forward (the
// request-URI is kept, so the digest still matches). The binding is stored
// only when the PBX answers 2xx, for the AOR it accepted and for as long
// as it granted; until then the UA is not registered here at all.
func (s *Service) relayRegister(req sip.Request, tx *txn.ServerTx, aor string, src transport.Target, tr *routing.Trunk) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	dst, err := tr.Target(ctx)
	cancel()
	if err != nil {
		s.respond(tx, 503, "Service Unavailable")
		return
	}
	u, err := registrar.ParseUpdate(req, aor, registrar.Flow{Target: src})
	if err != nil {
		s.respond(tx, 400, "Bad Contact")
		return
	}
	key := relayKeyOf(src, aor)
	r := relayedRegister{req: req, tx: tx, src: src, u: u, removing: u.Wildcard || allZero(u)}
	switch {
	case len(u.Contacts) == 0 && !u.Wildcard:
		s.answerRelayQuery(r)
		return
	case r.removing:
		d, ok := s.relays.find(key)
		if !ok || !d.accepted {
			// Nothing the PBX accepted: nothing to de-register there.
			if ok {
				s.relays.dropPending(d.token)
			}
			s.answerRelayQuery(r)
			return
		}
	default:
		// The SBC presents one Contact per flow and AOR to the PBX.
		r.u.Contacts = r.u.Contacts[:1]
		if code, reason := s.store.Check(r.u); code >= 300 {
			s.respondRegisterFailure(tx, code, reason, strconv.Itoa(s.store.MinExpires()))
			return
		}
	}
	d, ok := s.relays.next(key, tr, time.Now())
	if !ok {
		s.respond(tx, 503, "Service Unavailable", sipmsg.Generic("Retry-After", strconv.Itoa(int(s.cfg.RetryAfter/time.Second))))
		return
	}
	r.dialog = d
	s.sendUpstreamRegister(r, dst)
}

// sendUpstreamRegister sends r toward the PBX and hands its final answer to
// onUpstreamRegister.
func (s *Service) sendUpstreamRegister(r relayedRegister, dst transport.Target) {
	host, port, err := s.host(dst.Kind, dst.Addr.Addr())
	if err != nil {
		s.relays.dropPending(r.dialog.token)
		s.respond(r.tx, 500, "Server Internal Error")
		return
	}
	out := s.upstreamRegister(r, host, port, dst.Kind)
	s.relays.sent(r.dialog.token, out)
	ct, err := s.tx.Request(out, dst)
	if err != nil {
		s.relays.dropPending(r.dialog.token)
		s.respond(r.tx, 503, "Service Unavailable")
		return
	}
	s.track(func() {
		final := false
		for res := range ct.Responses() {
			if res.StatusCode() < 200 {
				continue
			}
			final = true
			s.onUpstreamRegister(r, res)
		}
		if !final {
			if !r.removing {
				s.relays.dropPending(r.dialog.token)
			}
			s.respond(r.tx, 408, "Request Timeout")
		}
	})
}

// upstreamRegister builds the REGISTER toward the PBX.
func (s *Service) upstreamRegister(r relayedRegister, host string, port uint16, kind transport.Kind) sip.Request {
	from, _ := r.req.From()
	to, _ := r.req.To()
	p := sip.Port(port)
	via := sip.ViaHeader{&sip.ViaHop{ProtocolName: "SIP", ProtocolVersion: "2.0", Transport: kind.String(), Host: host, Port: &p,
		Params: sipmsg.NewParams().Add("branch", sip.String{Str: txn.NewBranch()}).Add("rport", nil)}}
	mf := sip.MaxForwards(70)
	cid := sip.CallID(r.dialog.callID)
	fromH := &sip.FromHeader{DisplayName: from.DisplayName, Address: from.Address.Clone(), Params: sipmsg.NewParams().Add("tag", sip.String{Str: sipmsg.NewToken(8)})}
	toH := &sip.ToHeader{DisplayName: to.DisplayName, Address: to.Address.Clone(), Params: sipmsg.NewParams()}
	hdrs := []sip.Header{via, &mf, fromH, toH, &cid, &sip.CSeq{SeqNo: r.dialog.cseq, MethodName: sip.REGISTER}}
	expires := r.u.Expires
	if len(r.u.Contacts) > 0 && r.u.Contacts[0].Expires >= 0 {
		expires = r.u.Contacts[0].Expires
	}
	if r.removing {
		expires = 0
	}
	contact := "<sip:" + r.dialog.token + "@" + hostPort(host, port)
	if kind != transport.UDP {
		contact += ";transport=" + kind.Param()
	}
	contact += ">"
	hdrs = append(hdrs, sipmsg.Generic("Contact", contact))
	if expires >= 0 {
		hdrs = append(hdrs, sipmsg.Generic("Expires", strconv.Itoa(expires)))
	}
	for _, name := range []string{"Authorization", "Proxy-Authorization"} {
		for _, v := range sipmsg.Values(r.req, name) {
			hdrs = append(hdrs, sipmsg.Generic(name, v))
		}
	}
	hdrs = append(hdrs, sipmsg.Generic("User-Agent", s.cfg.UserAgent))
	return sipmsg.NewRequest(sip.REGISTER, r.req.Recipient().Clone(), hdrs, "", "")
}

// onUpstreamRegister carries the PBX's final answer back to the UA. Only a
// 2xx makes (or keeps) a binding; a challenge keeps the pending relay, so
// the UA's answer goes upstream in the same registration dialog.
func (s *Service) onUpstreamRegister(r relayedRegister, res sip.Response) {
	code := int(res.StatusCode())
	token := r.dialog.token
	switch {
	case code == 401 || code == 407:
		if sentCredentials(r.req) && !staleChallenge(res) {
			s.registerAuthFailed(r.src, r.u.AOR, "upstream "+strconv.Itoa(code))
		}
		var hs []sip.Header
		for _, name := range []string{"WWW-Authenticate", "Proxy-Authenticate"} {
			for _, v := range sipmsg.Values(res, name) {
				hs = append(hs, sipmsg.Generic(name, v))
			}
		}
		s.respond(r.tx, code, outcome.Phrase(code), hs...)
	case code >= 200 && code < 300:
		s.acceptRelayed(r, res)
	default:
		if code == 403 {
			s.registerAuthFailed(r.src, r.u.AOR, "upstream 403")
		}
		if !r.removing {
			s.relays.dropPending(token)
		}
		s.respondRegisterFailure(r.tx, code, outcome.Phrase(code), sipmsg.Header(res, "Min-Expires"))
	}
}

// acceptRelayed takes the PBX's 2xx: the binding is stored (or removed)
// under the relay's token, for the time the PBX granted.
func (s *Service) acceptRelayed(r relayedRegister, res sip.Response) {
	token := r.dialog.token
	granted := grantedExpires(res, token)
	if r.removing || granted == 0 {
		s.store.Remove(token)
		s.forgetRelay(token, false)
		s.answerRelayQuery(r)
		return
	}
	u := r.u
	u.Token, u.Upstream = token, true
	if granted > 0 {
		for i := range u.Contacts {
			u.Contacts[i].Expires = granted
		}
	}
	before := s.store.Lookup(u.AOR)
	current, code, reason := s.store.Apply(u)
	if code >= 300 {
		// The PBX has a binding we cannot keep: take it back there.
		s.forgetRelay(token, true)
		s.respondRegisterFailure(r.tx, code, reason, strconv.Itoa(s.store.MinExpires()))
		return
	}
	s.relays.accept(token)
	for _, b := range before {
		// A binding of ours this one replaced (the same Contact from a new
		// flow): its Contact at the PBX goes too.
		if b.Token != token && !slices.ContainsFunc(current, func(c registrar.Binding) bool { return c.Token == b.Token }) {
			s.forgetRelay(b.Token, true)
		}
	}
	s.tellBound(current, u.Flow.Target)
	s.respondBindings(r.tx, r.req, current)
}

// answerRelayQuery answers a REGISTER that changes nothing upstream with
// the bindings this flow holds for the AOR: another flow's are not shown
// to a UA no registrar has checked.
func (s *Service) answerRelayQuery(r relayedRegister) {
	var own []registrar.Binding
	for _, b := range s.store.Lookup(r.u.AOR) {
		if sameFlow(b.Flow.Target, r.src) {
			own = append(own, b)
		}
	}
	s.respondBindings(r.tx, r.req, own)
}

// respondBindings answers a REGISTER 200 with the given bindings.
func (s *Service) respondBindings(tx *txn.ServerTx, req sip.Request, bs []registrar.Binding) {
	res := txn.NewResponse(req, 200, "OK")
	now := time.Now()
	for _, b := range bs {
		res.AppendHeader(sipmsg.Generic("Contact", b.ContactValue(now)))
	}
	res.AppendHeader(sipmsg.Generic("Date", now.UTC().Format(http1123)))
	txn.Own(res, s.cfg.UserAgent)
	_ = tx.Respond(res)
}

// respondRegisterFailure answers a REGISTER with a failure; a 423 carries
// Min-Expires.
func (s *Service) respondRegisterFailure(tx *txn.ServerTx, code int, reason, minExpires string) {
	if code == 423 && minExpires != "" {
		s.respond(tx, 423, reason, sipmsg.Generic("Min-Expires", minExpires))
		return
	}
	s.respond(tx, code, reason)
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
				if ch < '0' || ch > '9' || n > 1<<24 {
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

// forgetRelay drops the relay of a binding; with unregister, a relay the
// PBX accepted is first de-registered there (best effort: the last
// credentials are reused, a new challenge cannot be answered without the
// UA).
func (s *Service) forgetRelay(token string, unregister bool) {
	rb := s.relays.drop(token)
	if !unregister {
		return
	}
	out, seq, ok := rb.deregistration()
	if !ok {
		return
	}
	out.ReplaceHeaders("Expires", []sip.Header{sipmsg.Generic("Expires", "0")})
	out.ReplaceHeaders("CSeq", []sip.Header{&sip.CSeq{SeqNo: seq, MethodName: sip.REGISTER}})
	if via, ok := out.Via(); ok && len(via) > 0 {
		via[0].Params.Add("branch", sip.String{Str: txn.NewBranch()})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	dst, err := rb.trunk.Target(ctx)
	cancel()
	if err != nil {
		return
	}
	if ct, err := s.tx.Request(out, dst); err == nil {
		s.track(func() {
			for range ct.Responses() {
			}
		})
	}
}

// sentCredentials reports whether a REGISTER carried digest credentials.
func sentCredentials(req sip.Request) bool {
	return len(req.GetHeaders("Authorization")) > 0 || len(req.GetHeaders("Proxy-Authorization")) > 0
}

// staleChallenge reports whether a 401/407 only says the nonce was stale
// (RFC 7616): the credentials were right, the UA just retries.
func staleChallenge(res sip.Response) bool {
	for _, name := range []string{"WWW-Authenticate", "Proxy-Authenticate"} {
		for _, v := range sipmsg.Values(res, name) {
			l := strings.ToLower(v)
			if strings.Contains(l, "stale=true") || strings.Contains(l, `stale="true"`) {
				return true
			}
		}
	}
	return false
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

func sameFlow(a, b transport.Target) bool {
	if a.Conn != nil || b.Conn != nil {
		return a.Conn == b.Conn
	}
	return a.Kind == b.Kind && a.Addr == b.Addr
}
