package b2bua

import (
	"context"
	"net/netip"
	"strconv"
	"time"

	"github.com/ghettovoice/gosip/sip"

	"github.com/sbc-project/sbc/b2bua/sipmsg"
	"github.com/sbc-project/sbc/b2bua/transport"
	"github.com/sbc-project/sbc/b2bua/txn"
	"github.com/sbc-project/sbc/policy"
)

// Policy is what the server asks of the policy chain; *policy.Chain
// implements it.
type Policy interface {
	// Early judges every request before any transaction exists.
	Early(ctx context.Context, r *policy.Request) policy.Decision
	// Late judges a new INVITE once it is routed.
	Late(ctx context.Context, r *policy.Request) policy.Decision
	// Banned reports a source whose packets over transport (udp, tcp,
	// tls, ws, wss) are ignored unparsed.
	Banned(src netip.Addr, transport string) bool
	// Report tells the chain what a source did over transport (for
	// dynamic bans: evidence from UDP bans UDP only).
	Report(src netip.Addr, transport string, ev policy.Event)
	// MaxDuration bounds answered calls; 0 is no bound.
	MaxDuration() time.Duration
}

// policy returns the policy chain; nil lets every request through.
func (s *Server) policy() Policy { return s.hooks.Policy }

// report feeds the chain's ban counters with what src did.
func (s *Server) report(src transport.Target, ev policy.Event) {
	if p := s.policy(); p != nil && src.Addr.IsValid() {
		p.Report(src.Addr.Addr().Unmap(), src.Kind.Param(), ev)
	}
}

// policyRequest is what the chain sees of req.
func policyRequest(req sip.Request, src transport.Target) *policy.Request {
	r := &policy.Request{
		Src:       src.Addr,
		Transport: src.Kind.Param(),
		Method:    string(req.Method()),
		CallID:    sipmsg.CallID(req),
		ToTag:     sipmsg.ToTag(req),
		FromTag:   sipmsg.FromTag(req),
		RFC2543:   !sipmsg.RFC3261Branch(req),
	}
	if u := req.Recipient(); u != nil {
		r.RURI = sipmsg.URIString(u)
		r.RURIUser = userinfo(u)
	}
	if f, ok := req.From(); ok && f.Address != nil {
		r.From = sipmsg.URIString(f.Address)
		if usr := f.Address.User(); usr != nil {
			r.FromUser = usr.String()
		}
	}
	if t, ok := req.To(); ok && t.Address != nil {
		r.To = sipmsg.URIString(t.Address)
	}
	if hs := req.GetHeaders("User-Agent"); len(hs) > 0 {
		r.UserAgent = hs[0].Value()
	}
	for _, h := range req.GetHeaders("Via") {
		via, ok := h.(sip.ViaHeader)
		if !ok {
			continue
		}
		for _, hop := range via {
			sentBy := hop.Host
			if hop.Port != nil {
				sentBy += ":" + strconv.Itoa(int(*hop.Port))
			}
			r.Vias = append(r.Vias, sentBy)
		}
	}
	return r
}

// userinfo is a URI's user part whole: "sip:tel:+4420...@host" parses as
// user "tel" and password "+4420...", and the dial rules must read all of
// it.
func userinfo(u sip.Uri) string {
	var s string
	if usr := u.User(); usr != nil {
		s = usr.String()
	}
	if pw := u.Password(); pw != nil {
		s += ":" + pw.String()
	}
	return s
}

// admitEarly runs the early stages on a request that has no transaction
// yet. It returns false when the request was answered (statelessly) or
// dropped and must go no further.
func (s *Server) admitEarly(req sip.Request, src transport.Target) bool {
	p := s.policy()
	if p == nil {
		return true
	}
	d := p.Early(s.ctx, policyRequest(req, src))
	switch d.Action {
	case policy.Continue:
		return true
	case policy.Answer:
		s.answerStateless(req, src, d.Code, d.Reason, decisionHeaders(d))
	}
	return false
}

// answerStateless answers req without a transaction (nothing answers an
// ACK). The response is stamped before it copies the Via, and sent where
// the transaction layer sends its answers (a NAT-facing listener's to the
// source port).
func (s *Server) answerStateless(req sip.Request, src transport.Target, code int, reason string, hs []sip.Header) {
	if req.Method() == sip.ACK {
		return
	}
	dst, ok := txn.ReplyTarget(req, src)
	if !ok {
		dst = src
	}
	res := txn.NewResponse(req, code, reason)
	s.finishResponse(res)
	for _, h := range hs {
		res.AppendHeader(h)
	}
	data := sipmsg.Render(res)
	s.tapOut(res, data, dst)
	_ = s.tp.Send(dst, data)
}

// decisionHeaders are the header fields a policy answer carries.
func decisionHeaders(d policy.Decision) []sip.Header {
	var hs []sip.Header
	if d.RetryAfter > 0 {
		secs := int((d.RetryAfter + time.Second - 1) / time.Second)
		hs = append(hs, sipmsg.Generic("Retry-After", strconv.Itoa(secs)))
	}
	for _, h := range d.Headers {
		hs = append(hs, sipmsg.Generic(h[0], h[1]))
	}
	return hs
}
