package b2bua

import (
	"context"
	"log/slog"
	"strconv"
	"time"

	"github.com/ghettovoice/gosip/sip"

	"github.com/sbc-project/sbc/b2bua/outcome"
	"github.com/sbc-project/sbc/b2bua/registrar"
	"github.com/sbc-project/sbc/b2bua/sipmsg"
	"github.com/sbc-project/sbc/b2bua/transport"
	"github.com/sbc-project/sbc/media"
	"github.com/sbc-project/sbc/policy"
)

// Step 5, end: failures answered to the caller, CANCEL, hang-up from
// either side or the SBC, a lost connection, and finish, which writes the
// call's record and gives back what the call held.

// onCancel: the caller gave up. 487 to A, CANCEL to B.
func (c *Call) onCancel() {
	if c.prack != nil && c.prack.held != nil {
		c.cancelHeld() // B answered; A's 2xx waits for a PRACK (prack.go)
		return
	}
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

// hangup ends an established or ringing call: BYE (or CANCEL) toward every
// leg that is still up, then waits for their answers in stateEnding.
func (c *Call) hangup(cause outcome.Cause, side outcome.Side) {
	if c.state == stateEnding {
		return
	}
	c.setCause(cause, side)
	// The call ends now for billing, even if a BYE into a dead leg takes
	// its full transaction timeout to fail.
	c.rec.End = time.Now().UTC()
	c.terminateInflight()
	c.abandonTransfer()
	if c.state == stateCalling {
		c.cancelled = true
		c.finalFor(c.cause)
		c.abandonAttempt()
		c.state = stateEnding
		return
	}
	c.state = stateEnding
	for _, l := range []*leg{c.a, c.b} {
		if l != nil && l.confirmed {
			c.bye(l)
		}
	}
}

// bye sends BYE on a leg; the call waits for its answer.
func (c *Call) bye(l *leg) {
	l.confirmed = false
	req := l.newRequest(sip.BYE, "", "")
	if _, err := c.send(l, req, func(sip.Response) {}); err != nil {
		c.log.Debug("bye", "leg", l.name(), "err", err)
	}
}

func (c *Call) setCause(cause outcome.Cause, side outcome.Side) {
	if c.cause == "" {
		c.cause, c.side = cause, side
	}
}

// legLost hangs the call up if one of its confirmed legs, or its caller,
// lived on conn; owner is the binding registered on conn when it closed
// (zero: none). An answered call waits for the grace first (flowgrace.go).
func (c *Call) legLost(conn *transport.Conn, owner registrar.Binding) {
	if c.state == stateEnding {
		return
	}
	for _, l := range []*leg{c.a, c.b} {
		if l == nil || l.dst.Conn != conn {
			continue
		}
		if l == c.b && !l.confirmed {
			return
		}
		if c.keepLost(l, conn, owner) {
			return
		}
		c.log.Info("connection lost: ending the call", "leg", l.name(), "conn", conn.String())
		l.confirmed = false // no BYE into a closed connection
		c.hangup(outcome.CauseConnectionLost, l.name())
		return
	}
}

// failTLS answers A when the last trunk could not be reached because its
// TLS handshake failed (its certificate not valid for its name or from an
// unknown CA, or a client certificate missing): 503, and a CDR whose
// hangup_cause says so. The details are in the log, not in the answer.
func (c *Call) failTLS() {
	c.fail(outcome.CauseTrunkTLSFailed,
		sipmsg.Generic("Retry-After", strconv.Itoa(int(c.s.cfg.RetryAfter/time.Second))),
		sipmsg.Generic("Warning", `399 sbc "TLS handshake with the trunk failed"`))
}

// finish releases everything the call holds; it runs last on the call's
// goroutine.
func (c *Call) finish() {
	// Nothing the call took on may stay unanswered once it is gone.
	c.terminateInflight()
	if c.inv != nil {
		c.finalToA(500, "Server Internal Error")
	}
	for _, e := range c.timers {
		c.s.deadlines.stop(e)
	}
	c.grace.stop()
	c.stopRingback()
	c.endRefusal()
	var med outcome.Media // the record's media counters
	if c.media != nil {
		c.media.Stop()
		med = c.xfer.since(recordMedia(c.media.Stats()))
		codecs := c.media.Codecs()
		c.rec.ACodec, c.rec.BCodec = codecs[media.SideA], codecs[media.SideB]
		c.rec.Transcoded = c.media.Transcoded()
	}
	if c.rec.End.IsZero() {
		c.rec.End = time.Now().UTC()
	}
	c.rec.Cause, c.rec.Side = c.cause, c.side
	if c.rec.Cause == "" {
		c.rec.Cause, c.rec.Side = outcome.CauseNormalClearing, outcome.SideSBC
	}
	if c.answered {
		c.rec.SIPCode = 200
	}
	c.timelineEnd()
	if c.media != nil {
		// The media has stopped and its counters are in the record: the
		// ports go back to quarantine now, not after the record's fsync
		// (records.go says why and what bounds the calls still waiting).
		c.media.Close()
	}
	if o := c.s.hooks.Observer; o != nil {
		// Durable before the call lets go of its admission counts and its
		// place among the calls waiting for their records (ARCHITECTURE.md:
		// records before resources): a stalled CDR disk keeps them taken,
		// so new calls are refused rather than carried without records.
		c.s.pending.enter()
		o.CallEnded(c.rec.withMedia(med))
		c.s.pending.leave()
	}
	c.unreplicate() // after the record: a crash in between restores the call, not loses its record
	if c.admitted != nil {
		c.admitted() // give back the admission counts
	}
	c.unindex()
	c.stop(errFinished)
	if c.self != nil {
		c.self.p.Store(nil) // lingering transactions keep nothing of the call
	}
	c.markDone()
	if c.answered {
		c.s.stats.CallsAnswered.Add(1)
	} else {
		c.s.stats.CallsFailed.Add(1)
	}
	if c.log.Enabled(context.Background(), slog.LevelInfo) {
		// Checked first: the attributes are boxed (allocated) even when
		// the line is not written, once per call.
		c.log.Info("call ended", "cause", c.cause, "side", c.side, "answered", c.answered,
			"duration", time.Since(c.started).Round(time.Millisecond))
	}
	c.s.untrack(c)
}

// unindex takes the call's dialogs and connections out of the server's
// indexes.
func (c *Call) unindex() {
	if c.a != nil {
		c.s.removeDialog(c.a)
	}
	if c.b != nil {
		c.s.removeDialog(c.b)
	}
	if c.try != nil {
		c.s.removeDialog(c.try.leg)
	}
	for _, f := range c.forks {
		c.s.removeDialog(f.leg)
	}
	c.abandonTransfer() // its admission counts
	for _, l := range c.xfer.done {
		c.s.removeDialog(l)
	}
	c.s.unwatchConns(c)
}
