package b2bua

import (
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ghettovoice/gosip/sip"

	"github.com/sbc-project/sbc/b2bua/outcome"
	"github.com/sbc-project/sbc/b2bua/sipmsg"
)

type timerKind int

const (
	timerRing        timerKind = iota // whole call until a final answer
	timerAttempt                      // one B-leg attempt until a provisional
	timerRefreshA                     // we refresh leg A's session
	timerRefreshB                     // we refresh leg B's session
	timerExpireA                      // leg A's peer failed to refresh
	timerExpireB                      // leg B's peer failed to refresh
	timerMaxDuration                  // policy.admission.max_duration since answer
	timerRel1xx                       // retransmit the caller's reliable provisional (prack.go)
	timerRelGiveUp                    // 64*T1 without the caller's PRACK
)

// A call's running timers are c.timers: a call has a few at most (an
// established one: its maximum duration, its session refreshes), so they
// are a slice made when the first starts and let go when the last ends
// (a map kept some 200 bytes a call). They run on the server's
// deadlines (deadlines.go).

func (c *Call) startTimer(k timerKind, d time.Duration) {
	c.stopTimer(k)
	if d <= 0 {
		return
	}
	c.timers = append(c.timers, c.s.deadlines.add(c, k, d))
}

func (c *Call) stopTimer(k timerKind) {
	for i, e := range c.timers {
		if e.kind == k {
			c.forgetTimer(i)
			c.s.deadlines.stop(e)
			return
		}
	}
}

// forgetTimer takes the timer at i out of c.timers.
func (c *Call) forgetTimer(i int) {
	c.timers = slices.Delete(c.timers, i, i+1)
	if len(c.timers) == 0 {
		c.timers = nil
	}
}

// onTimer handles the firing of timer e; nothing if the call no longer
// runs it (stopped, or restarted, after it fired).
func (c *Call) onTimer(e *deadline) {
	i := slices.Index(c.timers, e)
	if i < 0 {
		return
	}
	c.forgetTimer(i)
	k := e.kind
	switch k {
	case timerRing:
		if c.state == stateCalling {
			c.log.Info("no answer before ring timeout")
			c.setCause(outcome.CauseNoAnswer, outcome.SideSBC) // the SBC gave up, not side B
			c.cancelled = true
			c.finalFor(outcome.CauseNoAnswer)
			c.abandonAttempt()
			c.state = stateEnding
		}
	case timerAttempt:
		if c.state == stateCalling && c.try != nil && !c.try.provisional {
			at := c.try
			c.log.Info("no response from destination", "dest", at.dest.name)
			c.abandonAttempt()
			c.s.removeDialog(at.leg)
			c.try = nil
			// Its late answers still reach onInviteResponse: a 2xx is
			// ACKed and BYEd as a stray.
			c.lastFailure = 408
			c.nextAttempt()
		}
	case timerRefreshA:
		c.refresh(c.a)
	case timerRefreshB:
		c.refresh(c.b)
	case timerMaxDuration:
		if c.state == stateConfirmed {
			c.log.Info("maximum call duration reached", "max_duration", c.maxDuration)
			c.hangup(outcome.CauseMaxDuration, outcome.SideSBC)
		}
	case timerRel1xx, timerRelGiveUp:
		c.onRel1xxTimer(k)
	case timerExpireA, timerExpireB:
		if c.state == stateConfirmed {
			c.log.Info("session timer expired")
			c.hangup(outcome.CauseSessionTimerExpired, outcome.SideSBC)
		}
	}
}

// sessionTimer is RFC 4028 state on one leg.
type sessionTimer struct {
	interval  time.Duration // 0: no session timer on this leg
	weRefresh bool
}

// offerTimer adds Session-Expires to B's INVITE when A asked for a session
// timer, so both legs are kept alive.
func (c *Call) offerTimer(req sip.Request) {
	if _, ok := sipmsg.HeaderInt(c.invReq, "Session-Expires"); !ok {
		return
	}
	se := int(c.s.cfg.SessionExpires / time.Second)
	req.AppendHeader(sipmsg.Generic("Session-Expires", strconv.Itoa(se)))
	req.AppendHeader(sipmsg.Generic("Min-SE", strconv.Itoa(int(c.s.cfg.MinSE/time.Second))))
}

// negotiateTimerUAS decides leg A's session timer from A's request and adds
// the headers to our 2xx (RFC 4028 9).
func (c *Call) negotiateTimerUAS(req sip.Request, res sip.Response) sessionTimer {
	se, ok := sipmsg.HeaderInt(req, "Session-Expires")
	if !ok {
		return sessionTimer{}
	}
	if min := int(c.s.cfg.MinSE / time.Second); se < min {
		se = min
	}
	refresher := param(sipmsg.Header(req, "Session-Expires"), "refresher")
	supports := sipmsg.HasOption(req, "Supported", "timer") || sipmsg.HasOption(req, "Require", "timer")
	if refresher == "" {
		refresher = "uas"
		if supports {
			refresher = "uac"
		}
	}
	res.AppendHeader(sipmsg.Generic("Session-Expires", strconv.Itoa(se)+";refresher="+refresher))
	if supports {
		res.AppendHeader(sipmsg.Generic("Require", "timer"))
	}
	return sessionTimer{interval: time.Duration(se) * time.Second, weRefresh: refresher == "uas"}
}

// timerFromUACResponse reads leg B's session timer from B's 2xx: we are the
// UAC there, so refresher=uac means us.
func (c *Call) timerFromUACResponse(res sip.Response) sessionTimer {
	se, ok := sipmsg.HeaderInt(res, "Session-Expires")
	if !ok || se <= 0 {
		return sessionTimer{}
	}
	refresher := param(sipmsg.Header(res, "Session-Expires"), "refresher")
	return sessionTimer{interval: time.Duration(se) * time.Second, weRefresh: refresher != "uas"}
}

// armSessionTimers starts the refresh or expiry timer of each leg.
func (c *Call) armSessionTimers() {
	c.armLeg(c.a, timerRefreshA, timerExpireA)
	c.armLeg(c.b, timerRefreshB, timerExpireB)
}

func (c *Call) armLeg(l *leg, refresh, expire timerKind) {
	t := l.timer
	if t.interval <= 0 {
		return
	}
	if t.weRefresh {
		c.startTimer(refresh, t.interval/2)
		return
	}
	// RFC 4028 10: the refresher has until interval - min(32s, interval/3).
	grace := t.interval / 3
	if grace > 32*time.Second {
		grace = 32 * time.Second
	}
	c.startTimer(expire, t.interval-grace)
}

// timerOnRefresh restarts a leg's timer when its peer refreshed the
// session, and answers with the interval.
func (c *Call) timerOnRefresh(l *leg, req sip.Request, res sip.Response) {
	if se, ok := sipmsg.HeaderInt(req, "Session-Expires"); ok && l.timer.interval > 0 {
		if min := int(c.s.cfg.MinSE / time.Second); se < min {
			se = min
		}
		refresher := param(sipmsg.Header(req, "Session-Expires"), "refresher")
		if refresher == "" {
			refresher = "uac"
		}
		// In a refresh from the peer, the peer is the UAC of the request.
		l.timer = sessionTimer{interval: time.Duration(se) * time.Second, weRefresh: refresher == "uas"}
		res.AppendHeader(sipmsg.Generic("Session-Expires", strconv.Itoa(se)+";refresher="+refresher))
		res.AppendHeader(sipmsg.Generic("Require", "timer"))
	}
	if l == c.a {
		c.stopTimer(timerExpireA)
		c.armLeg(c.a, timerRefreshA, timerExpireA)
	} else {
		c.stopTimer(timerExpireB)
		c.armLeg(c.b, timerRefreshB, timerExpireB)
	}
}

// refresh sends a session refresh on a leg: UPDATE without a body when the
// peer allows it, else a re-INVITE with the SDP it already has.
func (c *Call) refresh(l *leg) {
	if c.state != stateConfirmed || !l.confirmed {
		return
	}
	// An offer exchange is a refresh too, and a leg whose connection is
	// gone for now (flowgrace.go) cannot take one: try again soon.
	if c.pending != nil || c.grace.of(l) != nil {
		c.startTimer(refreshKind(c, l), 2*time.Second)
		return
	}
	method, ct, body := sip.UPDATE, "", ""
	if !l.peerAllowsUpdate {
		method, ct, body = sip.INVITE, "application/sdp", l.lastSDPOut
	}
	req := l.newRequest(method, ct, body)
	se := int(l.timer.interval / time.Second)
	req.AppendHeader(sipmsg.Generic("Session-Expires", strconv.Itoa(se)+";refresher=uac"))
	r := &relay{from: l, to: l}
	c.pending = r
	_, err := c.send(l, req, func(res sip.Response) {
		code := res.StatusCode()
		if code < 200 {
			return
		}
		c.pending = nil
		if method == sip.INVITE && code < 300 {
			c.ack(l, "", "")
		}
		switch {
		case code < 300:
			c.armLeg(l, refreshKind(c, l), expireKind(c, l))
		case code == 408 || code == 481:
			c.hangup(outcome.CauseSessionRefreshFailed, outcome.SideSBC)
		default:
			c.startTimer(refreshKind(c, l), l.timer.interval/4)
		}
	})
	if err != nil {
		c.pending = nil
	}
}

func refreshKind(c *Call, l *leg) timerKind {
	if l == c.a {
		return timerRefreshA
	}
	return timerRefreshB
}

func expireKind(c *Call, l *leg) timerKind {
	if l == c.a {
		return timerExpireA
	}
	return timerExpireB
}

// param returns a ;name=value parameter of a header value.
func param(v, name string) string {
	for _, p := range strings.Split(v, ";")[1:] {
		k, val, _ := strings.Cut(strings.TrimSpace(p), "=")
		if strings.EqualFold(k, name) {
			return strings.ToLower(strings.TrimSpace(val))
		}
	}
	return ""
}
