package b2bua

import (
	"context"
	"errors"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/ghettovoice/gosip/sip"

	"github.com/sbc-project/sbc/b2bua/outcome"
	"github.com/sbc-project/sbc/b2bua/routing"
	"github.com/sbc-project/sbc/b2bua/sipmsg"
	"github.com/sbc-project/sbc/b2bua/transport"
	"github.com/sbc-project/sbc/b2bua/txn"
	"github.com/sbc-project/sbc/media"
	"github.com/sbc-project/sbc/media/sdpconv"
	"github.com/sbc-project/sbc/policy"
)

// dest is one place a call may be sent: a trunk or the echo destination.
type dest struct {
	name  string // trunk name, "echo" or "registered"
	trunk *routing.Trunk
	ruri  sip.Uri
	aor   sip.Uri // registered users: the To of the INVITE
	to    transport.Target
}

// attempt is one INVITE toward one dest.
type attempt struct {
	leg         *leg
	dest        dest
	tx          *txn.ClientTx
	req         sip.Request
	provisional bool
	authTried   bool
	offer       bool // our INVITE carried an offer
}

// newCall takes a new INVITE: it answers 100, builds leg A and starts the
// call's goroutine, which does the rest.
func (s *Server) newCall(req sip.Request, tx *txn.ServerTx) {
	if s.refuseWhileDraining(tx) {
		return
	}
	s.respond100(tx)
	src := tx.Source()
	callID := sipmsg.CallID(req)
	c := &Call{
		s:          s,
		log:        s.log.With("call_id", callID),
		events:     make(chan event, 64),
		done:       make(chan struct{}),
		inv:        tx,
		invReq:     req,
		onResp:     make(map[*txn.ClientTx]func(sip.Response)),
		afterFinal: make(map[*txn.ClientTx]func(sip.Response)),
		inflight:   make(map[*txn.ServerTx]inflightReq),
		timers:     make(map[timerKind]*time.Timer),
		started:    time.Now(),
	}
	c.rec = outcome.CallRecord{
		ID:         sipmsg.NewToken(16),
		ACallID:    callID,
		SrcAddr:    src.Addr.String(),
		ATransport: src.Kind.Param(),
		Start:      c.started.UTC(),
	}
	host, port, err := s.hostFor(src.Kind, src.Local)
	if err != nil {
		s.respond(tx, 500, "Server Internal Error")
		return
	}
	from, _ := req.From()
	to, _ := req.To()
	seq, _ := sipmsg.CSeq(req)
	c.rec.FromURI, c.rec.ToURI = from.Address.String(), to.Address.String()
	c.log = s.callLogger(c)
	c.a = &leg{
		call: c, side: media.SideA, name: outcome.SideA,
		callID:           callID,
		localTag:         sipmsg.NewToken(8),
		remoteTag:        sipmsg.FromTag(req),
		local:            &sip.Address{DisplayName: to.DisplayName, Uri: to.Address.Clone()},
		remote:           &sip.Address{DisplayName: from.DisplayName, Uri: from.Address.Clone()},
		remoteSeq:        seq,
		remoteTarget:     sipmsg.ContactURI(req),
		dst:              src,
		contact:          ourContact(host, port, src.Kind),
		viaHost:          host,
		viaPort:          port,
		pass:             lowerSet(s.cfg.HeaderWhitelist),
		peerAllowsUpdate: sipmsg.HasOption(req, "Allow", "UPDATE"),
	}
	if c.a.remoteTarget == nil {
		s.respond(tx, 400, "Missing Contact")
		return
	}
	if se, ok := sipmsg.HeaderInt(req, "Session-Expires"); ok && time.Duration(se)*time.Second < s.cfg.MinSE {
		s.respond(tx, 422, "Session Interval Too Small",
			sipmsg.Generic("Min-SE", strconv.Itoa(int(s.cfg.MinSE/time.Second))))
		return
	}
	// Requests toward the caller follow its Record-Route, in order.
	for _, rr := range req.GetHeaders("Record-Route") {
		if r, ok := rr.(*sip.RecordRouteHeader); ok {
			c.a.routeSet = append(c.a.routeSet, &sip.RouteHeader{Addresses: r.Addresses})
		}
	}
	if err := s.track(c); err != nil {
		s.respond(tx, 503, "Service Unavailable", sipmsg.Generic("Retry-After", "30"))
		return
	}
	s.stats.CallsStarted.Add(1)
	s.watchConn(c, src.Conn)
	s.addDialog(c.a)
	c.watch(tx)
	go c.run()
}

func (s *Server) respond100(tx *txn.ServerTx) {
	res := txn.NewResponse(tx.Request(), 100, "Trying")
	_ = tx.Respond(res)
}

// routeCall picks the call's destinations and opens its media session. On
// failure it answers A and returns false.
func (c *Call) routeCall() bool {
	req := c.invReq
	src := c.inv.Source()
	rr := routing.Request{Listener: src.Listener, Src: src.Addr.Addr().Unmap()}
	if u := req.Recipient().User(); u != nil {
		rr.RURIUser = u.String()
	}
	if f, ok := req.From(); ok && f.Address != nil {
		rr.FromDomain = f.Address.Host()
	}
	route, ok := c.s.routes.Load().Route(rr)
	if !ok {
		c.fail(outcome.CauseNoRoute)
		return false
	}
	c.route = route
	c.log = c.log.With("route", route.Name)
	if !c.admitLate() {
		return false
	}
	switch route.Target {
	case routing.TargetEcho:
		ep := c.s.hooks.Echo
		if !ep.IsValid() {
			c.fail(outcome.CauseNoEcho)
			return false
		}
		uri, _ := sipmsg.ParseURI("sip:echo@" + ep.String())
		c.dests = []dest{{name: "echo", ruri: uri, to: transport.Target{Kind: transport.UDP, Addr: ep}}}
	case routing.TargetTrunks:
		user := rr.RURIUser
		if c.dial != "" {
			user = c.dial // the trunk gets the number the dial rules checked
		}
		for _, tr := range route.Candidates() {
			d, err := c.trunkDest(tr, user)
			if err != nil {
				c.log.Warn("trunk unusable", "trunk", tr.Name, "err", err)
				continue
			}
			c.dests = append(c.dests, d)
		}
		if len(c.dests) == 0 {
			c.fail(outcome.CauseAllTrunksDown,
				sipmsg.Generic("Retry-After", strconv.Itoa(int(c.s.cfg.RetryAfter/time.Second))))
			return false
		}
	case routing.TargetRegistered:
		c.dests = c.s.registeredDests(req.Recipient())
		if len(c.dests) == 0 {
			c.fail(outcome.CauseNoBinding)
			return false
		}
		c.forking = true
	default:
		c.fail(outcome.CauseBadRoute)
		return false
	}
	m, err := c.s.hooks.Media(c.a.callID)
	if err != nil {
		c.log.Error("media session", "err", err)
		c.fail(outcome.CauseMediaUnavailable)
		return false
	}
	c.media = m
	// The caller's RTP from the address its INVITE came from latches like
	// RTP from its SDP address (NAT); media/latch.go.
	optsA := media.SideOptions{Kind: media.KindRTP, Signaling: rr.Src}
	if src.Kind == transport.WS || src.Kind == transport.WSS {
		optsA.Kind = media.KindWebRTC // a browser; its offer confirms it
	}
	if tr, ok := c.s.routes.Load().TrunkBySource(rr.Src); ok {
		optsA.DTMFInfo = tr.DTMFInfo
		if tr.SRTP {
			optsA.Kind = media.KindSRTP
		}
	}
	c.a.dtmfInfo = optsA.DTMFInfo
	m.Configure(media.SideA, optsA)
	m.Notify(func(ev media.Event) { c.post(event{kind: evMedia, media: ev}) })
	c.startTimer(timerRing, c.s.cfg.RingTimeout)
	return true
}

func (c *Call) trunkDest(tr *routing.Trunk, user string) (dest, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	to, err := tr.Target(ctx)
	if err != nil {
		return dest{}, err
	}
	return dest{name: tr.Name, trunk: tr, ruri: sipURI(tr.RequestURI(user)), to: to}, nil
}

// nextAttempt sends the INVITE to the next destination; with none left it
// answers A from the last failure and returns false.
func (c *Call) nextAttempt() bool {
	if c.forking {
		return c.forkAll()
	}
	for len(c.dests) > 0 {
		d := c.dests[0]
		c.dests = c.dests[1:]
		if err := c.invite(d); err != nil {
			var se *sipError
			if errors.As(err, &se) {
				c.log.Info("call refused", "err", err)
				o := outcome.Classify(se.cause, 0, false)
				warning := se.warning
				if warning == "" {
					warning = `399 sbc "` + o.Reason + `"`
				}
				c.failWith(o, sipmsg.Generic("Warning", warning))
				return false
			}
			c.log.Warn("invite not sent", "dest", d.name, "err", err)
			c.lastFailure, c.tlsFailed = 503, errors.Is(err, transport.ErrTLSHandshake)
			c.rec.Trunk = d.name // the attempt the CDR's cause is about
			continue
		}
		c.tlsFailed = false
		return true
	}
	switch c.lastFailure {
	case 408, 0:
		c.fail(outcome.CauseNoAnswer)
	case 503:
		if c.tlsFailed {
			c.failTLS()
			return false
		}
		c.fail(outcome.CauseUpstreamUnavailable,
			sipmsg.Generic("Retry-After", strconv.Itoa(int(c.s.cfg.RetryAfter/time.Second))))
	default:
		c.fail(outcome.CauseUpstreamFailed)
	}
	return false
}

// invite builds leg B toward d and sends the INVITE.
func (c *Call) invite(d dest) error {
	host, port, err := c.s.hostFor(d.to.Kind, netip.AddrPort{})
	if err != nil {
		return err
	}
	a := c.a
	from, identity := c.identityFor(d, host)
	var toURI sip.Uri = &sip.SipUri{FHost: d.ruri.Host(), FUriParams: sip.NewParams(), FHeaders: sip.NewParams()}
	if u := d.ruri.User(); u != nil {
		toURI.(*sip.SipUri).FUser = sip.String{Str: u.String()}
	}
	if d.aor != nil {
		toURI = d.aor
	}
	pass := lowerSet(c.s.cfg.HeaderWhitelist)
	if d.trunk != nil {
		for _, h := range d.trunk.PassHeaders {
			pass[strings.ToLower(h)] = true
		}
	}
	b := &leg{
		call: c, side: media.SideB, name: outcome.SideB,
		callID:       sipmsg.NewToken(12),
		localTag:     sipmsg.NewToken(8),
		local:        from,
		remote:       &sip.Address{Uri: toURI},
		remoteTarget: d.ruri,
		dst:          d.to,
		contact:      ourContact(host, port, d.to.Kind),
		viaHost:      host,
		viaPort:      port,
		pass:         pass,
	}
	optsB := media.SideOptions{Kind: media.KindRTP, Signaling: d.to.Addr.Addr().Unmap()}
	if d.to.Kind == transport.WS || d.to.Kind == transport.WSS {
		optsB.Kind = media.KindWebRTC // a browser registered over WebSocket
	}
	if d.trunk != nil {
		b.dtmfInfo = d.trunk.DTMFInfo
		optsB.DTMFInfo = d.trunk.DTMFInfo
		if d.trunk.SRTP {
			optsB.Kind = media.KindSRTP
		}
	}
	c.media.Configure(media.SideB, optsB)
	body := ""
	at := &attempt{leg: b, dest: d}
	if sdp := c.invReq.Body(); sdp != "" {
		out, err := c.media.Offer(media.SideA, []byte(sdp))
		if errors.Is(err, media.ErrNoCodec) {
			return &sipError{cause: outcome.CauseNoCommonCodec, err: err, warning: sdpconv.NoCodecWarning}
		}
		if err != nil {
			return &sipError{cause: outcome.CauseBadSDP, err: err}
		}
		a.lastSDPIn = sdp
		body = string(out)
		b.lastSDPOut = body
		at.offer = true
	}
	req := b.newRequest(sip.INVITE, "application/sdp", body)
	if mf, ok := sipmsg.HeaderInt(c.invReq, "Max-Forwards"); ok && mf-1 < 70 {
		v := sip.MaxForwards(mf - 1)
		req.ReplaceHeaders("Max-Forwards", []sip.Header{&v})
	}
	c.offerTimer(req)
	copyHeaders(c.invReq, req, b.pass)
	for _, h := range identity {
		req.AppendHeader(h)
	}
	at.req = req
	c.s.addDialog(b)
	c.s.watchConn(c, d.to.Conn)
	tx, err := c.send(b, req, func(res sip.Response) { c.onInviteResponse(at, res) })
	if err != nil {
		c.s.removeDialog(b)
		return err
	}
	at.tx = tx
	c.rec.BCallID, c.rec.Trunk = b.callID, d.name
	c.log = c.s.callLogger(c)
	c.log.Info("calling", "dest", d.name)
	if c.forking {
		c.forks = append(c.forks, at)
		return nil
	}
	c.try = at
	c.startTimer(timerAttempt, c.s.cfg.InviteTimeout)
	return nil
}

// onInviteResponse handles every response to a B-leg INVITE.
func (c *Call) onInviteResponse(at *attempt, res sip.Response) {
	code := int(res.StatusCode())
	b := at.leg
	if code < 200 {
		if at == c.try {
			at.provisional = true
			c.stopTimer(timerAttempt)
		}
		if code == 100 || c.state != stateCalling || !c.live(at) || c.cancelled {
			return
		}
		c.relayProvisional(at, res)
		return
	}
	if code < 300 {
		c.onInvite2xx(at, res)
		return
	}
	// A final failure; the transaction layer has ACKed it.
	if c.isFork(at) {
		c.onForkFailed(at, code)
		return
	}
	if at != c.try {
		return
	}
	c.stopTimer(timerAttempt)
	c.s.removeDialog(b)
	c.try = nil
	if c.state != stateCalling || c.cancelled {
		return
	}
	if (code == 401 || code == 407) && !at.authTried && at.dest.trunk != nil && at.dest.trunk.Username != "" {
		if c.reinviteWithAuth(at, res) {
			return
		}
	}
	c.log.Info("attempt failed", "dest", at.dest.name, "code", code)
	if code == 408 || code >= 500 && code < 600 {
		c.lastFailure = code
		if code != 408 && code != 503 {
			c.lastFailure = 502
		}
		c.nextAttempt()
		return
	}
	switch {
	case code >= 300 && code < 400:
		c.fail(outcome.CauseRedirect)
	case code == 401 || code == 407:
		c.fail(outcome.CauseTrunkAuthFailed)
	default:
		c.failWith(outcome.Classify(outcome.CauseRejected, code, false))
	}
}

// relayProvisional re-originates a 18x on leg A, with SDP when B sent some
// (early media).
func (c *Call) relayProvisional(at *attempt, res sip.Response) {
	if t := sipmsg.ToTag(res); t != "" && at.leg.remoteTag == "" {
		at.leg.remoteTag = t // the first early dialog; a 2xx decides the real one
	}
	out := c.a.response(c.invReq, int(res.StatusCode()), outcome.Phrase(int(res.StatusCode())))
	copyHeaders(res, out, at.leg.pass)
	if sdp := res.Body(); sdp != "" && at.offer && isSDP(res) {
		ans, err := c.media.Answer(media.SideB, []byte(sdp))
		if err != nil {
			c.log.Warn("early media sdp rejected", "err", err)
		} else {
			sipmsg.SetBody(out, "application/sdp", string(ans))
			c.a.lastSDPOut = string(ans)
		}
	}
	if err := c.inv.Respond(out); err != nil {
		c.log.Debug("relay provisional", "err", err)
	}
	if c.rec.Ring.IsZero() {
		c.rec.Ring = time.Now().UTC()
	}
}

// fail answers A with the final failure the classifier gives cause,
// records cause and its side, and ends the call.
func (c *Call) fail(cause outcome.Cause, extra ...sip.Header) {
	c.failWith(outcome.Classify(cause, 0, false), extra...)
}

// failWith is fail for an outcome classified with its code: a failure
// relayed from the callee, a policy stage's answer.
func (c *Call) failWith(o outcome.Outcome, extra ...sip.Header) {
	c.setCause(o.Cause, o.Side)
	c.finalToA(o.Code, o.Reason, extra...)
	c.state = stateEnding
}

// finalFor sends A's INVITE the final response the classifier gives a
// call that cause ends before the answer (see finalToA).
func (c *Call) finalFor(cause outcome.Cause) {
	o := outcome.Classify(cause, 0, false)
	c.finalToA(o.Code, o.Reason)
}

// finalToA sends A's INVITE its final response once.
func (c *Call) finalToA(code int, reason string, extra ...sip.Header) {
	if c.inv == nil {
		return
	}
	res := c.a.response(c.invReq, code, reason)
	for _, h := range extra {
		res.AppendHeader(h)
	}
	if err := c.inv.Respond(res); err != nil {
		c.log.Debug("final to a", "err", err)
	}
	if code == 404 {
		// Extension scans show up as strings of 404s (fail2ban).
		c.s.report(c.inv.Source(), policy.EventNotFound)
	}
	c.rec.SIPCode = code
	c.inv = nil
}

// abandonAttempt cancels the B-leg INVITEs in flight, if any; a 2xx that
// still arrives is ACKed and BYEd by onInvite2xx.
func (c *Call) abandonAttempt() {
	c.stopTimer(timerAttempt)
	c.cancelForks(nil)
	if c.try == nil || c.try.tx == nil {
		return
	}
	if err := c.try.tx.Cancel(); err != nil {
		c.log.Debug("cancel b", "err", err)
	}
}

// onCancel: the caller gave up. 487 to A, CANCEL to B.
func (c *Call) onCancel() {
	if c.state != stateCalling {
		return
	}
	c.log.Info("caller cancelled")
	c.setCause(outcome.CauseCallerCancel, outcome.SideA)
	c.cancelled = true
	c.finalFor(outcome.CauseCallerCancel)
	c.abandonAttempt()
	c.state = stateEnding
}

func isSDP(m sip.Message) bool {
	ct := strings.ToLower(sipmsg.Header(m, "Content-Type"))
	return ct == "" || strings.HasPrefix(ct, "application/sdp")
}

// sipError is a failure that ends the call with cause; the classifier
// gives its SIP answer.
type sipError struct {
	cause   outcome.Cause
	warning string // Warning header value; "" for a generic 399
	err     error
}

func (e *sipError) Error() string { return string(e.cause) + ": " + e.err.Error() }
func (e *sipError) Unwrap() error { return e.err }

// copyHeaders copies the headers named in pass from src to dst, never the
// identity headers (identity.go writes those).
func copyHeaders(src, dst sip.Message, pass map[string]bool) {
	if len(pass) == 0 {
		return
	}
	for _, h := range src.Headers() {
		if name := strings.ToLower(h.Name()); pass[name] && !isIdentityHeader(name) {
			dst.AppendHeader(h.Clone())
		}
	}
}
