package b2bua

import (
	"strconv"
	"time"

	"github.com/ghettovoice/gosip/sip"

	"github.com/sbc-project/sbc/b2bua/outcome"
	"github.com/sbc-project/sbc/b2bua/sipmsg"
	"github.com/sbc-project/sbc/b2bua/timeline"
)

// Step 6, transfer (continued): the target's answers, the NOTIFYs that
// report them to the transferor, and the switch of the call to the new
// party with its own record.

// onTransferResponse handles the answers to the transfer's INVITE.
func (c *Call) onTransferResponse(x *transfer, at *attempt, res sip.Response) {
	code := int(res.StatusCode())
	if code >= 200 {
		defer at.settle()
	}
	switch {
	case code < 200:
		return
	case code < 300:
		if c.xfer.cur != x || x.at != at || c.state != stateConfirmed {
			c.ackAndBye(at, res)
			return
		}
		c.transferAnswered(x, at, res)
	default:
		if c.xfer.cur != x || x.at != at {
			return
		}
		if (code == 401 || code == 407) && c.transferAuth(x, at, res) {
			return
		}
		x.at = nil
		c.log.Info("transfer attempt failed", "dest", at.dest.name, "code", code)
		if x.timedOut || c.state != stateConfirmed {
			c.endTransfer(x, 408, "Request Timeout")
			return
		}
		if (code == 408 || code >= 500 && code < 600) && len(x.dests) > 0 {
			c.nextTransferAttempt(x)
			return
		}
		c.endTransfer(x, code, outcome.Phrase(code))
	}
}

// transferAuth answers a trunk's digest challenge to the transfer's
// INVITE once, with the trunk's credentials, as for a call's leg B.
func (c *Call) transferAuth(x *transfer, at *attempt, res sip.Response) bool {
	tr := at.dest.trunk
	if tr == nil || tr.Username == "" || at.authTried || c.state != stateConfirmed {
		return false
	}
	req := cloneForRetry(at.req, at.leg.newRequest(sip.INVITE, "", ""))
	if err := authorizeForTrunk(req, res, tr); err != nil {
		c.log.Warn("trunk challenge not answerable", "trunk", tr.Name, "err", err)
		return false
	}
	next := &attempt{leg: at.leg, dest: at.dest, req: req, authTried: true, offer: true}
	tx, err := c.send(at.leg, req, func(r sip.Response) { c.onTransferResponse(x, next, r) })
	if err != nil {
		return false
	}
	next.tx, x.at = tx, next
	return true
}

// transferAnswered connects the transferee to the party that answered:
// the answer goes through the media session's transferor side, the
// transferee is re-INVITEd with it, the transferor hears 200 and gets
// BYE, and the call goes on in a new record.
func (c *Call) transferAnswered(x *transfer, at *attempt, res sip.Response) {
	n := at.leg
	n.remoteTag = sipmsg.ToTag(res)
	n.confirmUAC(res)
	ans, err := c.transferSession(x).Answer(n.side, []byte(res.Body()))
	c.ack(n, "", "")
	if err != nil {
		c.log.Warn("transfer target's answer rejected", "err", err)
		c.bye(n)
		c.endTransfer(x, 488, "Not Acceptable Here")
		return
	}
	n.lastSDPIn, n.confirmed = res.Body(), true
	c.notifyTransfer(x, 200, "OK", true)
	c.finishTransfer(x)
	c.splitRecord(x, n)
	c.adoptTransferMedia(x)
	if x.from == c.a {
		c.a = n
	} else {
		c.b = n
	}
	if x.from.confirmed {
		c.bye(x.from)
	}
	c.xfer.done = append(c.xfer.done, x.from) // its dialog answers a late BYE until the call ends
	c.reinviteTransferee(x.to, string(ans))
	c.traceOn = c.traced()
	c.log.Info("call transferred", "leg", n.name(), "dest", at.dest.name)
}

// reinviteTransferee offers the transferee the new party's media (the
// SBC's address toward it stays; codecs may change).
func (c *Call) reinviteTransferee(l *leg, sdp string) {
	req := l.newRequest(sip.INVITE, "application/sdp", sdp)
	r := &relay{to: l, req: req}
	c.pending = r
	_, err := c.send(l, req, func(res sip.Response) {
		code := int(res.StatusCode())
		if code < 200 {
			return
		}
		if c.pending == r {
			c.pending = nil
		}
		if code >= 300 {
			c.log.Warn("transferee refused the new media", "code", code)
			if code == 408 || code == 481 {
				c.hangup(outcome.ReinviteCause(code), l.name())
			}
			return
		}
		c.ack(l, "", "")
		if body := res.Body(); body != "" {
			if _, ok := c.media.Absorb(l.side, []byte(body)); !ok {
				c.log.Info("transferee's answer kept as it was", "leg", l.name())
			}
			l.lastSDPIn = body
		}
		l.lastSDPOut = sdp
	})
	if err != nil {
		c.pending = nil
		c.log.Warn("re-invite to the transferee", "err", err)
	}
}

// endTransfer reports a transfer that did not happen to the transferor
// (NOTIFY with the failure) and gives back what the target took; the call
// goes on as it was.
func (c *Call) endTransfer(x *transfer, code int, reason string) {
	if reason == "" {
		reason = outcome.Phrase(code)
	}
	c.log.Info("transfer failed", "code", code)
	c.notifyTransfer(x, code, reason, true)
	c.finishTransfer(x)
	c.dropTransferMedia(x)
	if x.admitted != nil {
		x.admitted()
		x.admitted = nil
	}
	if !x.from.confirmed && c.state == stateConfirmed {
		// The transferor hung up after its REFER: nobody is left for the
		// transferee.
		c.hangup(byeCause(x.from), x.from.name())
	}
}

// transferorLeft takes a BYE from the transferor of a transfer under
// way (a blind transfer's transferor may hang up once its REFER is
// accepted, RFC 5589 section 6): the transfer goes on, and the call ends
// only if it fails. It reports whether l was such a transferor.
func (c *Call) transferorLeft(l *leg) bool {
	x := c.xfer.cur
	if x == nil || x.from != l {
		return false
	}
	l.confirmed = false
	c.log.Info("transferor hung up; the transfer goes on", "leg", l.name())
	return true
}

// byeCause is the cause of a BYE from leg l.
func byeCause(l *leg) outcome.Cause {
	if l.name() == outcome.SideB {
		return outcome.CauseCalleeBye
	}
	return outcome.CauseCallerBye
}

// finishTransfer ends the transfer's bookkeeping.
func (c *Call) finishTransfer(x *transfer) {
	if x.timer != nil {
		x.timer.Stop()
	}
	if c.xfer.cur == x {
		c.xfer.cur = nil
	}
}

// transferTimeout gives up on a target that rang for the ring timeout.
func (c *Call) transferTimeout(x *transfer) {
	if c.xfer.cur != x || x.at == nil || x.at.tx == nil {
		return
	}
	x.timedOut = true
	if err := x.at.tx.Cancel(); err != nil {
		c.log.Debug("cancel transfer", "err", err)
	}
}

// abandonTransfer cancels a transfer under way when the call ends.
func (c *Call) abandonTransfer() {
	x := c.xfer.cur
	if x == nil {
		return
	}
	c.finishTransfer(x)
	c.dropTransferMedia(x)
	if x.admitted != nil {
		x.admitted()
		x.admitted = nil
	}
	if x.at != nil && x.at.tx != nil {
		_ = x.at.tx.Cancel()
	}
}

// notifyTransfer sends the transferor a NOTIFY of the refer event with
// the target's status line as message/sipfrag (RFC 3515 2.4.5).
func (c *Call) notifyTransfer(x *transfer, code int, reason string, final bool) {
	l := x.from
	if !l.confirmed || x.noSub {
		return
	}
	frag := "SIP/2.0 " + strconv.Itoa(code) + " " + reason + "\r\n"
	req := l.newRequest(sip.NOTIFY, "message/sipfrag;version=2.0", frag)
	req.AppendHeader(sipmsg.Generic("Event", "refer;id="+x.eventID))
	state := "active;expires=" + strconv.Itoa(int(c.s.cfg.RingTimeout/time.Second)+30)
	if final {
		state = "terminated;reason=noresource"
	}
	req.AppendHeader(sipmsg.Generic("Subscription-State", state))
	req.AppendHeader(l.contact)
	if _, err := c.send(l, req, func(sip.Response) {}); err != nil {
		c.log.Debug("notify transfer", "err", err)
	}
}

// splitRecord ends the call's record at the transfer (cause transferred,
// by the transferor's side) and starts the record of the call that goes
// on, the two naming each other.
func (c *Call) splitRecord(x *transfer, n *leg) {
	now := time.Now().UTC()
	old := c.rec.full()
	next := callRecord{
		ID: sipmsg.NewToken(16), ACallID: old.ACallID, BCallID: old.BCallID,
		FromURI: old.FromURI, ToURI: old.ToURI, SrcAddr: old.SrcAddr, ATransport: old.ATransport,
		Trunk: old.Trunk, Start: now, Answer: now, SIPCode: 200, TransferredFrom: old.ID,
	}
	c.s.hooks.Timelines.Alias(c.tl, next.ID, timeline.LegNone)
	if n.name() == outcome.SideA {
		next.ACallID, next.FromURI, next.SrcAddr = n.callID, x.target.String(), n.dst.Addr.String()
		next.ATransport = n.dst.Kind.Param()
	} else {
		next.BCallID, next.ToURI, next.Trunk = n.callID, x.target.String(), x.at.dest.name
	}
	if x.linked != nil {
		c.linkReplaced(x.linked, next.ID, x.from.name())
	}
	old.End, old.Cause, old.Side, old.TransferredTo = now, outcome.CauseTransferred, x.from.name(), next.ID
	stats := recordMedia(c.media.Stats())
	old.Media = c.xfer.since(stats)
	codecs := c.media.Codecs()
	old.ACodec, old.BCodec = codecs[0], codecs[1]
	c.xfer.base = &stats
	c.rec = next
	if o := c.s.hooks.Observer; o != nil {
		o.CallEnded(old)
		o.CallStarted(next.full())
		o.CallAnswered(next.full())
	}
	if c.admitted != nil {
		c.admitted()
	}
	c.admitted, x.admitted = x.admitted, nil
}

// subtractMedia is the media of a record that began when the counters
// were at base: packets and bytes since; the quality figures as they are.
func subtractMedia(m, base outcome.Media) outcome.Media {
	sub := func(f, b outcome.Flow) outcome.Flow {
		f.Packets -= min(f.Packets, b.Packets)
		f.Bytes -= min(f.Bytes, b.Bytes)
		return f
	}
	return outcome.Media{AtoB: sub(m.AtoB, base.AtoB), BtoA: sub(m.BtoA, base.BtoA)}
}
