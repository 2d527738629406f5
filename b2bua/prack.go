package b2bua

import (
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/ghettovoice/gosip/sip"

	"github.com/sbc-project/sbc/b2bua/outcome"
	"github.com/sbc-project/sbc/b2bua/sipmsg"
	"github.com/sbc-project/sbc/b2bua/txn"
)

// Reliable provisional responses (RFC 3262: the 100rel option, PRACK), on
// each leg on its own. Toward the caller the SBC is the UAS: a caller that
// supports 100rel gets early media (a provisional with SDP) reliably, and a
// caller that requires it gets every provisional reliably; each is
// retransmitted until the caller's PRACK, and the 2xx waits for the PRACK
// of a provisional that carried SDP. Toward the callee the SBC is the UAC:
// it advertises 100rel (Rel100) and PRACKs each reliable provisional the
// callee sends, whatever the caller supports, so a PBX's reliable 183
// reaches a browser that knows nothing of 100rel as a plain 183.

// Rel100 is what the SBC says of 100rel on the INVITEs it sends to callees
// (leg B). The zero value advertises it.
type Rel100 int

// The Rel100 settings.
const (
	Rel100Supported Rel100 = iota // Supported: 100rel
	Rel100Required                // Require: 100rel: a callee without it answers 420
	Rel100Off                     // not named: callees send provisionals unreliably
)

// maxQueued bounds the reliable provisionals that wait for the caller's
// PRACK of an earlier one (RFC 3262 3: one at a time); past it the oldest
// waiting one is dropped (the next carries the same news).
const maxQueued = 8

// prackState is a call's 100rel state: toward the caller (the SBC's
// reliable provisionals) and toward each callee early dialog (the RSeq
// last PRACKed).
type prackState struct {
	rseq     uint32        // RSeq of the latest reliable provisional to the caller
	unacked  sip.Response  // the reliable provisional the caller has not PRACKed; nil: none
	interval time.Duration // its current retransmission interval
	queue    []sip.Response
	held     sip.Response // the 2xx waiting for the PRACK of an unacked provisional with SDP
	rseqB    map[earlyDialog]uint32
}

// rel is the call's 100rel state, made when first needed: most calls
// never send or receive a reliable provisional.
func (c *Call) rel() *prackState {
	if c.prack == nil {
		c.prack = &prackState{}
	}
	return c.prack
}

// earlyDialog names one early dialog of leg B: the leg's Call-ID and the
// callee's To tag (a forking proxy behind it may open several).
type earlyDialog struct{ callID, tag string }

// advertise100rel says 100rel on leg B's initial INVITE as configured.
func (c *Call) advertise100rel(req sip.Request) {
	switch c.s.cfg.Rel100 {
	case Rel100Supported:
		req.ReplaceHeaders("Supported", []sip.Header{sipmsg.Generic("Supported", "timer, 100rel")})
	case Rel100Required:
		req.ReplaceHeaders("Supported", []sip.Header{sipmsg.Generic("Supported", "timer, 100rel")})
		req.AppendHeader(sipmsg.Generic("Require", "100rel"))
	}
}

// callerRel100 reports whether the caller supports and requires 100rel.
func (c *Call) callerRel100() (supports, requires bool) {
	requires = sipmsg.HasOption(c.invReq, "Require", "100rel")
	return requires || sipmsg.HasOption(c.invReq, "Supported", "100rel"), requires
}

// provisionalToA sends a provisional response to the caller: reliably
// when the caller requires 100rel, or supports it and the response carries
// SDP (early media); otherwise as it is. A reliable one waits while an
// earlier one is not yet PRACKed.
func (c *Call) provisionalToA(out sip.Response) {
	supports, requires := c.callerRel100()
	if !requires && !(supports && out.Body() != "") {
		if err := c.inv.Respond(out); err != nil {
			c.log.Debug("relay provisional", "err", err)
		}
		return
	}
	p := c.rel()
	if p.unacked != nil {
		if len(p.queue) == maxQueued {
			p.queue = p.queue[1:]
		}
		p.queue = append(p.queue, out)
		return
	}
	c.sendReliable(out)
}

// sendReliable sends out as a reliable provisional (RFC 3262 3): Require
// 100rel and the next RSeq, retransmitted on an unreliable transport from
// T1 on, doubling, until the PRACK; without a PRACK in 64*T1 the call
// fails (onRel1xxTimer).
func (c *Call) sendReliable(out sip.Response) {
	p := c.rel()
	if p.rseq == 0 {
		// Random below 2**31 (RFC 3262 3), with room to count up.
		p.rseq = rand.Uint32N((1<<31)-(1<<20)) + 1
	} else {
		p.rseq++
	}
	out.RemoveHeader("Require")
	out.AppendHeader(sipmsg.Generic("Require", "100rel"))
	out.AppendHeader(sipmsg.Generic("RSeq", strconv.FormatUint(uint64(p.rseq), 10)))
	p.unacked = out
	if err := c.inv.Respond(out); err != nil {
		c.log.Debug("reliable provisional", "err", err)
	}
	t1 := c.t1()
	if !c.a.dst.Kind.Reliable() {
		p.interval = t1
		c.startTimer(timerRel1xx, t1)
	}
	c.startTimer(timerRelGiveUp, 64*t1)
}

func (c *Call) t1() time.Duration {
	if t1 := c.s.cfg.Timers.T1; t1 > 0 {
		return t1
	}
	return txn.DefaultT1
}

// onRel1xxTimer retransmits the unacknowledged reliable provisional, or,
// at 64*T1, gives up on the caller's PRACK: the caller gets a 5xx (RFC
// 3262 3) and a callee that answered meanwhile gets BYE.
func (c *Call) onRel1xxTimer(k timerKind) {
	p := c.prack
	if c.inv == nil || p == nil || p.unacked == nil {
		return // answered (or PRACKed) meanwhile: nothing left to repeat
	}
	if k == timerRel1xx {
		_ = c.inv.Respond(p.unacked)
		p.interval *= 2
		c.startTimer(timerRel1xx, p.interval)
		return
	}
	c.log.Warn("caller never acknowledged a reliable provisional response", "rseq", p.rseq)
	c.stopTimer(timerRel1xx)
	p.unacked, p.queue = nil, nil
	c.endHeld(outcome.CausePRACKTimeout)
}

// cancelHeld takes the caller's CANCEL while its 2xx waits for its PRACK:
// the caller was never answered, so it gets 487 and the callee BYE.
func (c *Call) cancelHeld() {
	c.log.Info("caller cancelled")
	c.stopTimer(timerRel1xx)
	c.stopTimer(timerRelGiveUp)
	if p := c.prack; p != nil {
		p.unacked, p.queue = nil, nil
	}
	c.endHeld(outcome.CauseCallerCancel)
}

// endHeld ends a call before the caller got its 2xx: the caller gets the
// final answer of cause, a callee that answered meanwhile gets BYE (a
// ringing one CANCEL), and the record is of a call never answered.
func (c *Call) endHeld(cause outcome.Cause) {
	if p := c.prack; p != nil && p.held != nil {
		p.held = nil
		c.answered, c.rec.Answer = false, time.Time{}
	}
	c.setCause(cause, outcome.SideA)
	c.finalFor(cause)
	c.hangup(cause, outcome.SideA)
}

// answerToA sends the caller its 2xx, unless a reliable provisional with
// SDP (the answer to the caller's offer) is not PRACKed yet: RFC 3262 3
// has the 2xx wait for that PRACK.
func (c *Call) answerToA(out sip.Response) {
	if p := c.prack; p != nil && p.unacked != nil && p.unacked.Body() != "" {
		p.held = out
		return
	}
	c.sendAnswerToA(out)
}

// sendAnswerToA sends the caller's 2xx, which confirms leg A.
func (c *Call) sendAnswerToA(out sip.Response) {
	if err := c.inv.Respond(out); err != nil {
		c.log.Warn("answer to a", "err", err)
	}
	c.inv = nil
	c.a.confirmed = true
	if c.prack != nil {
		c.prack.queue = nil // a provisional after the 2xx means nothing
	}
	c.letInviteGo()
}

// onPRACK answers the caller's PRACK: 200 when it acknowledges the
// reliable provisional outstanding (then the next waiting one, or the held
// 2xx, goes out), 481 otherwise (RFC 3262 3).
func (c *Call) onPRACK(l *leg, req sip.Request, stx serverTx) {
	p := c.prack
	if l != c.a || p == nil || p.unacked == nil || !c.racks(req, p.rseq) {
		c.reply(l, stx, req, 481, "Call/Transaction Does Not Exist")
		return
	}
	if body := req.Body(); body != "" {
		// A new offer in the PRACK: answerable here only if nothing the
		// callee must hear of changed.
		ans, ok := c.media.Absorb(l.side, []byte(body))
		if !ok {
			c.reply(l, stx, req, 488, "Not Acceptable Here", sipmsg.Generic("Warning", `399 sbc "offer in PRACK not relayed"`))
			return
		}
		res := l.response(req, 200, "OK")
		l.lastSDPIn, l.lastSDPOut = body, sentSDP(ans)
		sipmsg.SetBody(res, "application/sdp", l.lastSDPOut)
		_ = stx.Respond(res)
	} else {
		c.reply(l, stx, req, 200, "OK")
	}
	p.unacked = nil
	c.stopTimer(timerRel1xx)
	c.stopTimer(timerRelGiveUp)
	if c.inv == nil {
		return // the final answer went out meanwhile
	}
	if out := p.held; out != nil {
		p.held = nil
		c.sendAnswerToA(out)
		return
	}
	if len(p.queue) > 0 {
		next := p.queue[0]
		p.queue = p.queue[1:]
		c.sendReliable(next)
	}
}

// racks reports whether req's RAck acknowledges the provisional with
// RSeq rseq to the caller's INVITE.
func (c *Call) racks(req sip.Request, rseq uint32) bool {
	f := strings.Fields(sipmsg.Header(req, "RAck"))
	if len(f) != 3 {
		return false
	}
	return f[0] == strconv.FormatUint(uint64(rseq), 10) && f[1] == strconv.FormatUint(uint64(c.invSeq), 10) &&
		strings.EqualFold(f[2], string(sip.INVITE))
}

// prackB PRACKs a reliable provisional from leg B (RFC 3262 4) and reports
// whether the response goes on to the caller: not a retransmission (an
// RSeq already PRACKed) nor one out of order (not the next RSeq of its
// early dialog), which the callee repeats until it is PRACKed anyway.
func (c *Call) prackB(at *attempt, res sip.Response) bool {
	if !sipmsg.HasOption(res, "Require", "100rel") {
		return true
	}
	rseq, err := strconv.ParseUint(strings.TrimSpace(sipmsg.Header(res, "RSeq")), 10, 32)
	if err != nil || rseq == 0 {
		c.log.Debug("reliable provisional without a valid RSeq: taken as unreliable", "rseq", sipmsg.Header(res, "RSeq"))
		return true
	}
	p := c.rel()
	key := earlyDialog{callID: at.leg.callID, tag: sipmsg.ToTag(res)}
	if last, seen := p.rseqB[key]; seen && uint32(rseq) != last+1 {
		return false
	}
	if p.rseqB == nil {
		p.rseqB = make(map[earlyDialog]uint32)
	}
	p.rseqB[key] = uint32(rseq)
	c.sendPRACK(at, res, uint32(rseq))
	return true
}

// sendPRACK sends leg B's PRACK for the reliable provisional res, in the
// early dialog res opened: its To tag, its Contact as the target, its
// Record-Route as the route set, the leg's next CSeq.
func (c *Call) sendPRACK(at *attempt, res sip.Response, rseq uint32) {
	b := at.leg
	b.localSeq++
	l := *b // a private copy: this early dialog's tag, target and routes
	l.remoteTag = sipmsg.ToTag(res)
	l.confirmUAC(res)
	req := l.request(sip.PRACK, l.localSeq, "", "")
	seq, _ := sipmsg.CSeq(res)
	req.AppendHeader(sipmsg.Generic("RAck", strconv.FormatUint(uint64(rseq), 10)+" "+
		strconv.FormatUint(uint64(seq), 10)+" INVITE"))
	_, err := c.send(&l, req, func(r sip.Response) {
		if r.StatusCode() >= 300 {
			c.log.Info("prack refused by b", "code", r.StatusCode(), "rseq", rseq)
		}
	})
	if err != nil {
		c.log.Debug("prack to b", "err", err)
	}
}
