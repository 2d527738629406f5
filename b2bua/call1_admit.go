package b2bua

import (
	"context"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/ghettovoice/gosip/sip"

	"github.com/sbc-project/sbc/b2bua/outcome"
	"github.com/sbc-project/sbc/b2bua/routing"
	"github.com/sbc-project/sbc/b2bua/sipmsg"
	"github.com/sbc-project/sbc/b2bua/transport"
	"github.com/sbc-project/sbc/media"
	"github.com/sbc-project/sbc/policy"
)

// Step 1 of a call, admit: a new INVITE becomes a Call with its leg A;
// the call's goroutine routes it, runs the late policy stages (auth,
// admission, dial rules), resolves its destinations and opens its media
// session. The files call1 to call5 hold a call's life in the order it
// runs (ARCHITECTURE.md).

// newCall takes a new INVITE: it builds leg A and starts the call's
// goroutine, which does the rest. It sends no 100 of its own: the
// transaction layer answers 100 Trying if nothing else was sent within
// 200 ms (RFC 3261 17.2.1), and the callee's 180 mostly comes sooner, so a
// 100 sent at once was a response built, rendered and sent for nothing
// (one of the nine messages the SBC sent per call at 1,000 calls/s).
func (s *Server) newCall(req sip.Request, tx serverTx) {
	if s.refuseWhileDraining(tx) || s.refuseUnrecorded(tx) {
		return
	}
	src := tx.Source()
	callID := strings.Clone(sipmsg.CallID(req)) // not a substring keeping A's INVITE (detach)
	c := &Call{
		s:       s,
		log:     s.log, // newCallLog below adds the call's attributes
		inv:     tx,
		invReq:  req,
		setup:   &callSetup{},
		started: time.Now(),
	}
	c.openEvents()
	c.rec = callRecord{
		ID:         sipmsg.NewToken(16),
		ACallID:    callID,
		SrcAddr:    src.Addr.String(),
		ATransport: src.Kind.Param(),
		Start:      c.started.UTC(),
	}
	host, port, err := s.hostFor(src.Kind, src.Local, src.Addr.Addr())
	if err != nil {
		s.respond(tx, 500, "Server Internal Error")
		return
	}
	from, _ := req.From()
	to, _ := req.To()
	seq, _ := sipmsg.CSeq(req)
	c.rec.FromURI, c.rec.ToURI = from.Address.String(), to.Address.String()
	c.invSeq = seq
	c.log, c.traceOn = newCallLog(c), c.traced()
	c.a = &leg{
		call: c, side: media.SideA,
		callID:           callID,
		localTag:         sipmsg.NewToken(8),
		remoteTag:        sipmsg.FromTag(req),
		local:            ownedAddress(to.DisplayName, to.Address),
		remote:           ownedAddress(from.DisplayName, from.Address),
		remoteSeq:        seq,
		remoteTarget:     callerTarget(req),
		dst:              src,
		contact:          s.contactFor(host, port, src.Kind, sipsDialog(req.Recipient(), req.GetHeaders("Record-Route"), sipmsg.ContactURI(req))),
		viaHost:          host,
		viaPort:          port,
		pass:             s.pass,
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
	// Not a child of the server's context: Close hangs up every call it
	// tracks, which cancels its context, before it cancels its own, and a
	// child would cost an entry in the server context's set for the
	// call's life.
	c.ctx, c.stop = context.WithCancelCause(context.WithoutCancel(s.ctx))
	if err := s.track(c); err != nil {
		c.stop(err)
		s.respond(tx, 503, "Service Unavailable", sipmsg.Generic("Retry-After", "30"))
		return
	}
	s.stats.CallsStarted.Add(1)
	s.watchConn(c, src.Conn)
	s.addDialog(c.a)
	c.watch(tx)
	go c.run()
}

// start runs the first steps of an INVITE: route, admit, destinations,
// media, then the first attempt. A CANCEL or a hang-up that arrives while
// a step waits cancels the call's context: the step returns at once, and
// start leaves the event to the call's loop.
func (c *Call) start() bool {
	if !c.routeCall() {
		return c.refusing != nil // an announcement plays before the refusal
	}
	if c.stopped() {
		return true
	}
	return c.nextAttempt()
}

// stopped reports whether the call's context was cancelled (a CANCEL or a
// hang-up arrived); the event that did it waits in the call's loop.
func (c *Call) stopped() bool {
	if c.ctx.Err() == nil {
		return false
	}
	c.log.Info("call stopped while it was being set up", "cause", context.Cause(c.ctx))
	return true
}

// routeCall picks the call's route, admits it, finds its destinations and
// opens its media session. It reports whether the call goes on: false when
// it answered A with a failure; true, having done nothing more, when the
// call was stopped meanwhile.
func (c *Call) routeCall() bool {
	rr := c.routingRequest()
	route, ok := c.s.routes.Load().Route(rr)
	if !ok {
		c.fail(outcome.CauseNoRoute)
		return false
	}
	c.route = route
	if !c.admitLate() {
		return false
	}
	if c.stopped() {
		return true
	}
	if !c.findDests(rr) {
		return false
	}
	if c.stopped() {
		return true
	}
	return c.openMedia(rr.Src)
}

// routingRequest is what the route table matches of the caller's INVITE.
func (c *Call) routingRequest() routing.Request {
	src := c.inv.Source()
	rr := routing.Request{Listener: src.Listener, Src: src.Addr.Addr().Unmap()}
	if u := c.invReq.Recipient().User(); u != nil {
		rr.RURIUser = u.String()
	}
	if f, ok := c.invReq.From(); ok && f.Address != nil {
		rr.FromDomain = f.Address.Host()
	}
	return rr
}

// findDests finds where the route sends the call: the echo destination,
// the route's trunks that are up (their addresses looked up now, within
// the call's context), or the callee's registered bindings. On failure it
// answers A and returns false, unless the call was stopped meanwhile.
func (c *Call) findDests(rr routing.Request) bool {
	switch c.route.Target {
	case routing.TargetEcho:
		ep := c.s.hooks.Echo
		if !ep.IsValid() {
			c.fail(outcome.CauseNoEcho)
			return false
		}
		uri, _ := sipmsg.ParseURI("sip:echo@" + ep.String())
		c.setup.dests = []dest{{name: "echo", ruri: uri, to: transport.Target{Kind: transport.UDP, Addr: ep}}}
	case routing.TargetTrunks:
		user := rr.RURIUser
		if c.setup.dial != "" {
			user = c.setup.dial // the trunk gets the number the dial rules checked
		}
		for _, tr := range c.route.Candidates() {
			ds, err := c.trunkDests(tr, user)
			if err != nil {
				c.log.Warn("trunk unusable", "trunk", tr.Name, "err", err)
				continue
			}
			c.setup.dests = append(c.setup.dests, ds...)
		}
		if len(c.setup.dests) == 0 {
			if c.ctx.Err() != nil {
				return true // stopped during the lookups: the loop answers
			}
			c.refuse(outcome.Classify(outcome.CauseAllTrunksDown, 0, false), c.vouched, "",
				sipmsg.Generic("Retry-After", strconv.Itoa(int(c.s.cfg.RetryAfter/time.Second))))
			return false
		}
	case routing.TargetRegistered:
		c.setup.dests = newestPerContact(append(c.s.registeredDests(c.invReq.Recipient()), c.peerDests(c.invReq.Recipient())...))
		if len(c.setup.dests) == 0 {
			c.refuse(outcome.Classify(outcome.CauseNoBinding, 0, false), c.vouched, "")
			return false
		}
		c.forking = true
	default:
		c.fail(outcome.CauseBadRoute)
		return false
	}
	return true
}

// trunkLookup bounds the DNS lookup of one trunk's addresses for a call.
const trunkLookup = 2 * time.Second

// trunkDests is one destination per place the trunk may be reached (its
// SRV targets and their addresses, in the order RFC 3263 gives them): a
// target that times out, answers 5xx or cannot be reached is followed by
// the next within the call's attempt (nextAttempt).
func (c *Call) trunkDests(tr *routing.Trunk, user string) ([]dest, error) {
	ctx, done := c.lookupCtx(trunkLookup)
	defer done()
	tos, err := tr.Targets(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]dest, 0, len(tos))
	for _, to := range tos {
		out = append(out, dest{name: tr.Name, trunk: tr, ruri: sipURI(tr.RequestURI(user)), to: to})
	}
	return out, nil
}

// openMedia opens the call's media session and tells it what the caller's
// side speaks; src is where the caller's signaling comes from.
func (c *Call) openMedia(src netip.Addr) bool {
	m, err := c.s.hooks.Media(c.a.callID)
	if err != nil {
		c.log.Error("media session", "err", err)
		c.fail(outcome.CauseMediaUnavailable)
		return false
	}
	c.media = m
	c.timelineMedia(m)
	// The caller's RTP from the address its INVITE came from latches like
	// RTP from its SDP address (NAT); media/latch.go.
	optsA := media.SideOptions{Kind: media.KindRTP, Signaling: src}
	if k := c.inv.Source().Kind; k == transport.WS || k == transport.WSS {
		optsA.Kind = media.KindWebRTC // a browser; its offer confirms it
	}
	if tr, ok := c.s.routes.Load().TrunkBySource(src); ok {
		optsA.DTMFInfo = tr.DTMFInfo
		optsA.Codecs = tr.Codecs
		if tr.SRTP {
			optsA.Kind = media.KindSRTP
		}
	}
	c.a.dtmfInfo = optsA.DTMFInfo
	c.setup.optsA = optsA
	m.Configure(media.SideA, optsA)
	m.Notify(func(ev media.Event) { c.post(event{kind: evMedia, media: &ev}) })
	c.startTimer(timerRing, c.s.cfg.RingTimeout)
	return true
}

// admitLate runs the late stages on the call's INVITE once it is routed,
// within the call's context. On refusal it answers A and returns false; a
// call stopped while a stage waited goes on to its loop.
func (c *Call) admitLate() bool {
	p := c.s.policy()
	if p == nil || c.s.fromPeer(c.inv.Source()) {
		return true // a node's call was judged where it came in
	}
	src := c.inv.Source()
	r := policyRequest(c.invReq, src)
	r.Route, r.Target = c.route.Name, policyTarget(c.route.Target)
	if r.Target == policy.TargetTrunks {
		if cands := c.route.Candidates(); len(cands) > 0 {
			r.Trunk = cands[0].Name
		}
	}
	ip := src.Addr.Addr().Unmap()
	r.Trusted = c.route.Trusts(ip)
	if tr, ok := c.s.routes.Load().TrunkBySource(ip); ok && tr.Trusted {
		r.Trusted = true
	}
	r.Auth = c.s.inviteAuthenticator(c.invReq, src)
	d := p.Late(c.ctx, r)
	if d.Action == policy.Continue {
		c.timelinePolicy(true, "", "", 0)
		// Copies: the dial rules' number and the authenticated user may be
		// substrings of A's INVITE (a name is dialed as written), which
		// would keep the whole datagram for the call's life.
		c.admitted, c.setup.dial = r.Admitted, strings.Clone(r.Dial)
		c.user = strings.Clone(r.User)
		c.vouched = r.User != "" || r.Trusted
		c.maxDuration = p.MaxDuration()
		return true
	}
	if c.ctx.Err() != nil {
		return true // stopped while a stage waited: the loop answers the caller
	}
	if d.Cause == "auth_failed" {
		c.s.stats.AuthFailures.Add(1) // wrong credentials, as for REGISTER
	}
	code := d.Code
	if d.Action == policy.Drop {
		code = 0 // a drop this late still owes the caller an answer: the cause's own
	}
	o := outcome.Classify(outcome.PolicyCause(d.Cause), code, false)
	if code != 0 {
		o.Reason = d.Reason // the stage's own phrase, e.g. "Forbidden (dial rules)"
	}
	c.log.Info("call refused by policy", "stage", d.Stage, "cause", d.Cause, "code", o.Code)
	c.timelinePolicy(false, d.Stage, d.Cause, o.Code)
	vouched := (r.User != "" || r.Trusted) && d.Action == policy.Answer
	c.refuse(o, vouched, d.Cause, decisionHeaders(d)...)
	return false
}

// policyTarget is what the chain knows of a route's target; a target it
// does not know stays policy.TargetUnknown, which its stages treat with
// the most care (credentials required).
func policyTarget(target string) policy.Target {
	switch target {
	case routing.TargetTrunks:
		return policy.TargetTrunks
	case routing.TargetRegistered:
		return policy.TargetRegistered
	case routing.TargetEcho:
		return policy.TargetEcho
	}
	return policy.TargetUnknown
}

// callerTarget is where requests toward the caller go: its Contact, or,
// for an RFC 2543 caller that sent none (RFC 4475 3.4.1), its From; nil
// when an RFC 3261 caller left Contact out.
func callerTarget(req sip.Request) sip.Uri {
	if u := sipmsg.ContactURI(req); u != nil {
		return u
	}
	if from, ok := req.From(); ok && !sipmsg.RFC3261Branch(req) {
		return from.Address.Clone()
	}
	return nil
}
