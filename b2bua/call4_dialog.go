package b2bua

import (
	"errors"
	"strings"

	"github.com/ghettovoice/gosip/sip"

	"github.com/sbc-project/sbc/b2bua/outcome"
	"github.com/sbc-project/sbc/b2bua/sipmsg"
	"github.com/sbc-project/sbc/media"
	"github.com/sbc-project/sbc/media/rtpproc"
	"github.com/sbc-project/sbc/media/sdpconv"
)

// Step 4, in dialog: requests inside a confirmed call (BYE, re-INVITE,
// UPDATE, INFO, ...) answered here or carried to the other leg, and the
// requests relayed that wait for the other leg's answer.

// relay is an offer/answer exchange (re-INVITE or UPDATE) carried from one
// leg to the other.
type relay struct {
	from, to *leg
	stx      serverTx
	req      sip.Request
}

func (c *Call) other(l *leg) *leg {
	if l == c.a {
		return c.b
	}
	return c.a
}

// onRequest handles a request inside one of the call's dialogs.
func (c *Call) onRequest(l *leg, req sip.Request, stx serverTx) {
	if c.grace != nil && stx != nil && !c.flowFrom(l, req, stx) {
		return // from a new connection, not proven the leg's party (flowgrace.go)
	}
	m := req.Method()
	if m == sip.ACK {
		c.onACK(l, req)
		return
	}
	if !l.seqOK(req) {
		c.reply(l, stx, req, 500, "CSeq Out of Order")
		return
	}
	if m == sip.PRACK { // in the early dialog, or after a held 2xx (prack.go)
		c.onPRACK(l, req, stx)
		return
	}
	if c.state == stateEnding || !l.confirmed && !(l == c.a && c.state == stateCalling) {
		if m == sip.BYE {
			c.reply(l, stx, req, 200, "OK")
			return
		}
		c.reply(l, stx, req, 481, "Call/Transaction Does Not Exist")
		return
	}
	if c.state == stateCalling { // A sent something inside its early dialog
		if m == sip.BYE {
			c.reply(l, stx, req, 200, "OK")
			c.onCancel()
			return
		}
		c.reply(l, stx, req, 491, "Request Pending")
		return
	}
	if c.grace != nil && c.refuseInGap(l, req, stx) {
		return // the other leg's connection is gone for now (flowgrace.go)
	}
	switch m {
	case sip.BYE:
		c.reply(l, stx, req, 200, "OK")
		if c.transferorLeft(l) {
			return // the transfer goes on without it (call6_notify.go)
		}
		cause := outcome.CauseCallerBye
		if l == c.b {
			cause = outcome.CauseCalleeBye
		}
		c.setCause(cause, l.name())
		l.confirmed = false
		c.hangup(cause, l.name())
	case sip.INVITE, sip.UPDATE:
		c.onOffer(l, req, stx)
	case sip.OPTIONS:
		c.reply(l, stx, req, 200, "OK", sipmsg.Generic("Allow", allowed))
	case sip.INFO:
		c.timelineInfo(l, req)
		if c.infoToRTP(l, req, stx) {
			return
		}
		c.relayRequest(l, req, stx)
	case sip.MESSAGE:
		c.relayRequest(l, req, stx)
	case sip.NOTIFY:
		c.relayNotify(l, req, stx)
	case sip.REFER:
		c.onRefer(l, req, stx)
	default:
		c.reply(l, stx, req, 405, "Method Not Allowed", sipmsg.Generic("Allow", allowed))
	}
}

// infoToRTP plays a DTMF INFO from leg l as RFC 4733 toward the other leg
// when that leg does not want INFO and negotiated telephone-event. It
// reports whether it answered the request.
func (c *Call) infoToRTP(l *leg, req sip.Request, stx serverTx) bool {
	to := c.other(l)
	if to == nil || to.dtmfInfo {
		return false
	}
	ev, err := rtpproc.ParseDTMFInfo(sipmsg.Header(req, "Content-Type"), []byte(req.Body()))
	if err != nil {
		return false // not DTMF: relayed as it is
	}
	if err := c.media.SendDTMF(to.side, media.DTMF{Digit: ev.Digit, Duration: ev.Duration}); err != nil {
		c.log.Debug("dtmf info not playable as rfc 4733; relaying", "err", err)
		return false
	}
	c.reply(l, stx, req, 200, "OK")
	return true
}

// reply answers an in-dialog request from the SBC itself.
func (c *Call) reply(l *leg, stx serverTx, req sip.Request, code int, reason string, extra ...sip.Header) {
	if stx == nil {
		return
	}
	res := l.response(req, code, reason)
	for _, h := range extra {
		res.AppendHeader(h)
	}
	_ = stx.Respond(res)
}

// onACK handles an ACK for a 2xx the SBC sent on leg l.
func (c *Call) onACK(l *leg, req sip.Request) {
	if l != c.a || c.b == nil || c.b.acked || c.state != stateConfirmed {
		return
	}
	// Delayed offer: A's ACK carries the answer to B's offer.
	body := ""
	if sdp := req.Body(); sdp != "" {
		ans, err := c.media.Answer(media.SideA, []byte(sdp))
		if err != nil {
			c.log.Warn("answer in ack rejected", "err", err)
			c.ack(c.b, "", "")
			c.hangup(outcome.CauseBadSDPAnswer, outcome.SideSBC)
			return
		}
		c.a.lastSDPIn = strings.Clone(sdp) // not a part of the ACK's datagram, kept whole else
		body = sentSDP(ans)
		c.b.lastSDPOut = body
	}
	c.ack(c.b, "application/sdp", body)
}

// onOffer handles a re-INVITE or UPDATE: a session refresh is answered
// here; a real offer is carried to the other leg.
func (c *Call) onOffer(l *leg, req sip.Request, stx serverTx) {
	if c.pending != nil || c.xfer.cur != nil {
		c.reply(l, stx, req, 491, "Request Pending", sipmsg.Generic("Retry-After", "1"))
		return
	}
	sdp := req.Body()
	if sdp == "" || sdp == l.lastSDPIn {
		c.refreshed(l, req, stx)
		return
	}
	if ans, ok := c.media.Absorb(l.side, []byte(sdp)); ok {
		// A new port, a new SSRC, an ICE restart: nothing the other side
		// must hear about.
		l.lastSDPIn, l.lastSDPOut = strings.Clone(sdp), sentSDP(ans) // as in onOfferResponse
		c.log.Info("re-offer absorbed", "leg", l.name())
		c.refreshed(l, req, stx)
		return
	}
	out, err := c.media.Offer(l.side, []byte(sdp))
	if errors.Is(err, media.ErrNoCodec) {
		c.reply(l, stx, req, 488, "Not Acceptable Here", sipmsg.Generic("Warning", sdpconv.NoCodecWarning))
		return
	}
	if errors.Is(err, media.ErrTranscodeCapacity) {
		c.log.Warn("re-offer refused: transcoding capacity reached", "leg", l.name())
		c.reply(l, stx, req, 488, "Not Acceptable Here", sipmsg.Generic("Warning", media.TranscodeWarning))
		return
	}
	if errors.Is(err, media.ErrNoFax) {
		// T.38 toward a browser: refused, and the call keeps its audio.
		c.reply(l, stx, req, 488, "Not Acceptable Here", sipmsg.Generic("Warning", media.NoFaxWarning))
		return
	}
	if err != nil {
		c.reply(l, stx, req, 488, "Not Acceptable Here", sipmsg.Generic("Warning", `399 sbc "bad sdp"`))
		return
	}
	to := c.other(l)
	fwd := to.newRequest(req.Method(), "application/sdp", string(out))
	copyHeaders(req, fwd, to.pass)
	r := &relay{from: l, to: to, stx: stx, req: req}
	if _, err := c.send(to, fwd, func(res sip.Response) { c.onOfferResponse(r, res) }); err != nil {
		c.reply(l, stx, req, 500, "Server Internal Error")
		return
	}
	c.pending = r
	c.hold(l, req, stx)
}

// offerUndoer is a media session that can undo a refused offer
// (media.Session); MediaSession fakes need not.
type offerUndoer interface{ Refused(from media.Side) }

var _ offerUndoer = (*media.Session)(nil)

// onOfferResponse carries the other leg's answer back.
func (c *Call) onOfferResponse(r *relay, res sip.Response) {
	code := int(res.StatusCode())
	if code < 200 {
		return
	}
	c.pending = nil
	if r.req.Method() == sip.INVITE && code < 300 {
		c.ack(r.to, "", "")
	}
	if !c.release(r.stx) {
		return // the call ended and answered the request meanwhile
	}
	if c.state != stateConfirmed {
		c.reply(r.from, r.stx, r.req, 487, "Request Terminated")
		return
	}
	if code >= 300 {
		// The offer was refused; the call stays as it was, its media
		// back where the offerer still listens (a refused T.38 switch).
		if m, ok := c.media.(offerUndoer); ok {
			m.Refused(r.from.side)
		}
		c.reply(r.from, r.stx, r.req, code, outcome.Phrase(code))
		if code == 408 || code == 481 {
			c.hangup(outcome.ReinviteCause(code), r.to.name())
		}
		return
	}
	out := r.from.response(r.req, code, outcome.Phrase(code))
	copyHeaders(res, out, r.from.pass)
	if sdp := res.Body(); sdp != "" {
		ans, err := c.media.Answer(r.to.side, []byte(sdp))
		if err == nil {
			// Copies: a part of a received message keeps all of its
			// datagram for the call's life (leg.detach).
			r.to.lastSDPIn = strings.Clone(sdp)
			r.from.lastSDPIn = strings.Clone(r.req.Body())
			r.from.lastSDPOut = sentSDP(ans)
			sipmsg.SetBody(out, "application/sdp", r.from.lastSDPOut)
		}
	}
	c.timerOnRefresh(r.from, r.req, out)
	_ = r.stx.Respond(out)
}

// refreshed answers a re-INVITE or UPDATE that changes nothing (a session
// timer refresh) without bothering the other leg.
func (c *Call) refreshed(l *leg, req sip.Request, stx serverTx) {
	res := l.response(req, 200, "OK")
	if l.lastSDPOut != "" && (req.Method() == sip.INVITE || req.Body() != "") {
		sipmsg.SetBody(res, "application/sdp", l.lastSDPOut)
	}
	c.timerOnRefresh(l, req, res)
	_ = stx.Respond(res)
}

// relayRequest carries INFO and similar requests to the other leg and
// their answers back.
func (c *Call) relayRequest(l *leg, req sip.Request, stx serverTx) {
	to := c.other(l)
	fwd := to.newRequest(req.Method(), sipmsg.Header(req, "Content-Type"), req.Body())
	copyHeaders(req, fwd, to.pass)
	_, err := c.send(to, fwd, func(res sip.Response) {
		if res.StatusCode() < 200 || !c.release(stx) {
			return
		}
		out := l.response(req, int(res.StatusCode()), outcome.Phrase(int(res.StatusCode())))
		if b := res.Body(); b != "" {
			sipmsg.SetBody(out, sipmsg.Header(res, "Content-Type"), b)
		}
		_ = stx.Respond(out)
	})
	if err != nil {
		c.reply(l, stx, req, 500, "Server Internal Error")
		return
	}
	c.hold(l, req, stx)
}

// A request relayed from one leg to the other (re-INVITE, UPDATE, INFO,
// MESSAGE, NOTIFY) keeps its server transaction open until the other leg
// answers. When the call ends first, RFC 3261 section 15.1.2 has the UAS
// answer every pending request of the dialog, 487 recommended: so does the
// call, at once, rather than leave the transaction (and the peer waiting
// on it) to the other leg, which may never answer now.

// inflightReq is a relayed request waiting for the other leg's answer.
type inflightReq struct {
	from *leg
	req  sip.Request
}

// hold notes that stx waits for the other leg's answer to req.
func (c *Call) hold(from *leg, req sip.Request, stx serverTx) {
	if stx != nil {
		put(&c.inflight, stx, inflightReq{from: from, req: req})
	}
}

// release takes stx off the waiting list and reports whether it was on it:
// false means it was answered already (the call ended under it) and the
// other leg's late answer goes nowhere.
func (c *Call) release(stx serverTx) bool {
	if _, ok := c.inflight[stx]; !ok {
		return false
	}
	drop(&c.inflight, stx)
	return true
}

// terminateInflight answers every relayed request still waiting 487.
func (c *Call) terminateInflight() {
	for stx, r := range c.inflight {
		c.reply(r.from, stx, r.req, 487, "Request Terminated")
		drop(&c.inflight, stx)
	}
}
