package b2bua

import (
	"bytes"
	"time"

	"github.com/ghettovoice/gosip/sip"

	"github.com/sbc-project/sbc/b2bua/outcome"
	"github.com/sbc-project/sbc/b2bua/sipmsg"
	"github.com/sbc-project/sbc/media"
)

// Step 3, answer: the callee's provisional and final answers carried back
// to the caller (early media, the 2xx, ACKs, a digest challenge from a
// trunk answered with the trunk's credentials).

// onInviteResponse handles every response to a B-leg INVITE.
func (c *Call) onInviteResponse(at *attempt, res sip.Response) {
	code := int(res.StatusCode())
	if code >= 200 {
		defer at.settle()
	}
	b := at.leg
	if code < 200 {
		if at == c.try {
			at.provisional = true
			c.stopTimer(timerAttempt)
		}
		if code > 100 && !c.prackB(at, res) {
			return // a reliable provisional already seen, or out of order
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
	if c.ringbackOn(at, res) && c.startRingback(at, res) {
		c.markRing()
		return
	}
	sdp := res.Body()
	early := sdp != "" && at.offer && isSDP(res)
	if c.ringback != nil && !early {
		return // the caller hears the local ringback already
	}
	out := c.a.response(c.invReq, int(res.StatusCode()), outcome.Phrase(int(res.StatusCode())))
	copyHeaders(res, out, at.leg.pass)
	if early {
		c.stopRingback() // the callee's early media takes over
		ans, err := c.media.Answer(media.SideB, []byte(sdp))
		if err != nil {
			c.log.Warn("early media sdp rejected", "err", err)
		} else {
			c.a.lastSDPOut = sentSDP(ans)
			sipmsg.SetBody(out, "application/sdp", c.a.lastSDPOut)
		}
	}
	c.provisionalToA(out)
	c.markRing()
}

// markRing notes in the record when the callee first rang.
func (c *Call) markRing() {
	if c.rec.Ring.IsZero() {
		c.rec.Ring = time.Now().UTC()
	}
}

// onInvite2xx handles a 2xx to a B-leg INVITE: the first one answers the
// call; any other (a second fork, a 2xx that crossed our CANCEL, a 2xx after
// the call ended) is ACKed and then BYEd, since B believes a call is up.
func (c *Call) onInvite2xx(at *attempt, res sip.Response) {
	b := at.leg
	tag := sipmsg.ToTag(res)
	if c.b == b && b.remoteTag == tag {
		if b.lastACK != nil { // a retransmission: ACK again
			_ = c.s.txs.SendRendered(b.lastACK, nil, b.dst)
		} // else a delayed-offer ACK still waits for A's answer (acked unset)
		return
	}
	if !c.live(at) || c.state != stateCalling || c.cancelled {
		c.log.Info("stray answer from b: ack and bye", "tag", tag)
		c.ackAndBye(at, res)
		return
	}
	c.stopTimer(timerAttempt)
	c.stopTimer(timerRing)
	c.try, c.setup = nil, nil // answered: no other destination is tried
	if c.isFork(at) {
		// The first answer wins; the other registrations stop ringing.
		c.cancelForks(at)
		for _, f := range c.forks {
			if f != at {
				c.s.removeDialog(f.leg)
			}
		}
		c.forks = nil
	}
	c.b = b
	b.remoteTag = tag
	b.confirmUAC(res)
	c.answered = true
	c.stopRingback()

	sdp := res.Body()
	switch {
	case at.offer && sdp != "":
		ans, err := c.media.Answer(media.SideB, []byte(sdp))
		if err != nil {
			c.log.Warn("answer sdp rejected", "err", err)
			c.ack(b, "", "")
			c.setCause(outcome.CauseBadSDPAnswer, outcome.SideSBC)
			c.finalFor(outcome.CauseBadSDPAnswer)
			c.state = stateConfirmed
			c.a.confirmed = false
			c.hangupAfterFail()
			return
		}
		b.lastSDPIn = sdp
		c.ack(b, "", "")
		c.answerA(res, sentSDP(ans))
	case !at.offer && sdp != "":
		// Delayed offer: B offers in its 2xx and we owe it the answer in
		// the ACK, which waits for A's ACK.
		off, err := c.media.Offer(media.SideB, []byte(sdp))
		if err != nil {
			c.ack(b, "", "")
			c.setCause(outcome.CauseBadSDPOffer, outcome.SideSBC)
			c.finalFor(outcome.CauseBadSDPOffer)
			c.state = stateConfirmed
			c.hangupAfterFail()
			return
		}
		b.lastSDPIn = sdp
		c.answerA(res, sentSDP(off))
	default:
		c.ack(b, "", "")
		c.answerA(res, "")
	}
}

// answerA sends the 2xx to A and confirms both legs.
func (c *Call) answerA(res sip.Response, sdp string) {
	out := c.a.response(c.invReq, int(res.StatusCode()), outcome.Phrase(int(res.StatusCode())))
	copyHeaders(res, out, c.b.pass)
	c.a.timer = c.negotiateTimerUAS(c.invReq, out)
	if sdp != "" {
		sipmsg.SetBody(out, "application/sdp", sdp)
		c.a.lastSDPOut = sdp
	}
	c.answerToA(out) // confirms leg A once sent (prack.go)
	c.b.confirmed = true
	c.state = stateConfirmed
	c.rec.Answer = time.Now().UTC()
	c.rec.SIPCode = int(res.StatusCode())
	if o := c.s.hooks.Observer; o != nil {
		o.CallAnswered(c.rec.full())
	}
	c.b.timer = c.timerFromUACResponse(res)
	c.armSessionTimers()
	c.startTimer(timerMaxDuration, c.maxDuration)
	c.traceOn = c.traced()
	c.log.Info("call answered")
}

// confirmUAC takes the dialog state from B's 2xx (RFC 3261 12.1.2): remote
// target from Contact, route set from Record-Route in reverse.
func (l *leg) confirmUAC(res sip.Response) {
	if u := sipmsg.ContactURI(res); u != nil {
		l.remoteTarget = u
	}
	rrs := res.GetHeaders("Record-Route")
	l.routeSet = nil
	for i := len(rrs) - 1; i >= 0; i-- {
		if r, ok := rrs[i].(*sip.RecordRouteHeader); ok {
			l.routeSet = append(l.routeSet, &sip.RouteHeader{Addresses: r.Addresses})
		}
	}
	l.peerAllowsUpdate = sipmsg.HasOption(res, "Allow", "UPDATE")
}

// ack sends the ACK for the 2xx to the leg's latest INVITE (its CSeq,
// whatever a PRACK or INFO took since), remembering it for retransmitted
// 2xx.
func (c *Call) ack(l *leg, contentType, body string) {
	ack := l.request(sip.ACK, l.inviteSeq, contentType, body)
	l.lastACK = bytes.Clone(sipmsg.Render(ack)) // its own size: Render leaves room to grow
	l.acked = true
	if err := c.s.txs.SendRendered(l.lastACK, ack, l.dst); err != nil {
		c.log.Debug("ack", "leg", l.name(), "err", err)
	}
}

// afterFinalEnded drops the handler of an INVITE client transaction
// that ended after its final response (RFC 6026 Timer M, 64*T1 after a
// 2xx; Timer D after a failure). With the last such gone, no 2xx
// retransmission of any INVITE the call sent can still come (the callee
// retransmits for at most 64*T1, RFC 3261 13.3.1.4), so the ACKs the legs
// keep to answer them go: a 2xx coming later gets no ACK. The
// transaction's request is let go by then, so which INVITE ended is not
// known; an ACK sent after its INVITE's transaction ended (a delayed
// offer answered that late) stays.
func (c *Call) afterFinalEnded(tx clientTx) {
	i := c.handlers.index(tx)
	if i < 0 || !c.handlers[i].final {
		return
	}
	c.handlers.drop(i)
	if c.handlers.any(true) {
		return
	}
	for _, l := range [...]*leg{c.a, c.b} {
		if l != nil {
			l.lastACK = nil
		}
	}
}

// ackAndBye closes a dialog B set up that the call does not want.
func (c *Call) ackAndBye(at *attempt, res sip.Response) {
	l := *at.leg // a private copy: the stray dialog has its own tag and target
	l.remoteTag = sipmsg.ToTag(res)
	l.confirmUAC(res)
	seq, _ := sipmsg.CSeq(res)
	ack := l.request(sip.ACK, seq, "", "")
	_ = c.s.txs.Send(ack, l.dst)
	l.localSeq = seq
	bye := l.newRequest(sip.BYE, "", "")
	if _, err := c.send(&l, bye, func(sip.Response) {}); err != nil {
		c.log.Debug("bye stray", "err", err)
	}
}

// hangupAfterFail ends a call whose B leg is up but whose A leg never was.
func (c *Call) hangupAfterFail() {
	c.state = stateEnding
	c.bye(c.b)
}

// reinviteWithAuth answers a trunk's digest challenge once.
func (c *Call) reinviteWithAuth(at *attempt, res sip.Response) bool {
	tr := at.dest.trunk
	req := at.leg.newRequest(sip.INVITE, "", "")
	// Keep the original headers and body; only Via, CSeq and credentials change.
	req = cloneForRetry(at.req, req)
	if err := authorizeForTrunk(req, res, tr); err != nil {
		c.log.Warn("trunk challenge not answerable", "trunk", tr.Name, "err", err)
		return false
	}
	next := &attempt{leg: at.leg, dest: at.dest, req: req, authTried: true, offer: at.offer}
	c.s.addDialog(at.leg)
	c.try = next
	tx, err := c.send(at.leg, req, func(r sip.Response) { c.onInviteResponse(next, r) })
	if err != nil {
		c.s.removeDialog(at.leg)
		c.try = nil
		return false
	}
	next.tx = tx
	c.startTimer(timerAttempt, c.s.cfg.InviteTimeout)
	return true
}

// cloneForRetry copies orig into a request with fresh's Via and CSeq.
func cloneForRetry(orig, fresh sip.Request) sip.Request {
	out := sipmsg.CopyRequest(orig)
	via, _ := fresh.Via()
	out.ReplaceHeaders("Via", []sip.Header{via})
	cseq, _ := fresh.CSeq()
	out.ReplaceHeaders("CSeq", []sip.Header{cseq})
	return out
}
