package b2bua

import (
	"time"

	"github.com/ghettovoice/gosip/sip"

	"github.com/sbc-project/sbc/b2bua/outcome"
	"github.com/sbc-project/sbc/b2bua/sipmsg"
	"github.com/sbc-project/sbc/media"
)

// onInvite2xx handles a 2xx to a B-leg INVITE: the first one answers the
// call; any other (a second fork, a 2xx that crossed our CANCEL, a 2xx after
// the call ended) is ACKed and then BYEd, since B believes a call is up.
func (c *Call) onInvite2xx(at *attempt, res sip.Response) {
	b := at.leg
	tag := sipmsg.ToTag(res)
	if c.b == b && b.remoteTag == tag {
		if b.lastACK != nil { // a retransmission: ACK again
			_ = c.s.send(b.lastACK, b.dst)
		} // else a delayed-offer ACK still waits for A's answer
		return
	}
	if !c.live(at) || c.state != stateCalling || c.cancelled {
		c.log.Info("stray answer from b: ack and bye", "tag", tag)
		c.ackAndBye(at, res)
		return
	}
	c.stopTimer(timerAttempt)
	c.stopTimer(timerRing)
	c.try = nil
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
		c.answerA(res, string(ans))
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
		c.answerA(res, string(off))
	default:
		c.ack(b, "", "")
		c.answerA(res, "")
	}
}

// hangupAfterFail ends a call whose B leg is up but whose A leg never was.
func (c *Call) hangupAfterFail() {
	c.state = stateEnding
	c.bye(c.b)
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
	if err := c.inv.Respond(out); err != nil {
		c.log.Warn("answer to a", "err", err)
	}
	c.inv = nil
	c.a.confirmed = true
	c.b.confirmed = true
	c.state = stateConfirmed
	c.rec.Answer = time.Now().UTC()
	c.rec.SIPCode = int(res.StatusCode())
	if o := c.s.hooks.Observer; o != nil {
		o.CallAnswered(c.rec)
	}
	c.b.timer = c.timerFromUACResponse(res)
	c.armSessionTimers()
	c.startTimer(timerMaxDuration, c.maxDuration)
	c.log = c.s.callLogger(c)
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

// ack sends the ACK for B's 2xx to the INVITE with CSeq seq (the leg's
// current one unless given), remembering it for retransmitted 2xx.
func (c *Call) ack(l *leg, contentType, body string) {
	ack := l.request(sip.ACK, l.localSeq, contentType, body)
	l.lastACK = ack
	if err := c.s.send(ack, l.dst); err != nil {
		c.log.Debug("ack", "leg", l.name, "err", err)
	}
}

// ackAndBye closes a dialog B set up that the call does not want.
func (c *Call) ackAndBye(at *attempt, res sip.Response) {
	l := *at.leg // a private copy: the stray dialog has its own tag and target
	l.remoteTag = sipmsg.ToTag(res)
	l.confirmUAC(res)
	seq, _ := sipmsg.CSeq(res)
	ack := l.request(sip.ACK, seq, "", "")
	_ = c.s.send(ack, l.dst)
	l.localSeq = seq
	bye := l.newRequest(sip.BYE, "", "")
	if _, err := c.send(&l, bye, func(sip.Response) {}); err != nil {
		c.log.Debug("bye stray", "err", err)
	}
}

// reinviteWithAuth answers a trunk's digest challenge once.
func (c *Call) reinviteWithAuth(at *attempt, res sip.Response) bool {
	tr := at.dest.trunk
	req := at.leg.newRequest(sip.INVITE, "", "")
	// Keep the original headers and body; only Via, CSeq and credentials change.
	req = cloneForRetry(at.req, req)
	if err := sip.AuthorizeRequest(req, res, sip.String{Str: tr.Username}, sip.String{Str: tr.Password}); err != nil {
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
	out := sip.CopyRequest(orig)
	via, _ := fresh.Via()
	out.ReplaceHeaders("Via", []sip.Header{via})
	cseq, _ := fresh.CSeq()
	out.ReplaceHeaders("CSeq", []sip.Header{cseq})
	return out
}
