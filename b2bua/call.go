package b2bua

import (
	"log/slog"
	"time"

	"github.com/ghettovoice/gosip/sip"

	"github.com/sbc-project/sbc/b2bua/outcome"
	"github.com/sbc-project/sbc/b2bua/routing"
	"github.com/sbc-project/sbc/b2bua/sipmsg"
	"github.com/sbc-project/sbc/b2bua/transport"
	"github.com/sbc-project/sbc/b2bua/txn"
	"github.com/sbc-project/sbc/media"
	"github.com/sbc-project/sbc/media/rtpproc"
)

type evKind int

const (
	evRequest  evKind = iota // an in-dialog request or ACK on a leg
	evResponse               // a response on one of the call's client transactions
	evCancel                 // the caller cancelled its INVITE
	evAckLost                // the caller never ACKed our 2xx
	evTimer                  // one of the call's timers fired
	evStray                  // a 2xx retransmission after its transaction ended
	evHangup                 // end the call from outside (shutdown, admin)
	evTxDone                 // a client transaction ended
	evMedia                  // the media session reported something
	evFunc                   // run fn on the call's goroutine (ops.go: snapshots, admin hang-up)
)

type event struct {
	kind  evKind
	leg   *leg
	req   sip.Request
	stx   *txn.ServerTx
	res   sip.Response
	ctx   *txn.ClientTx
	timer timerKind
	cause outcome.Cause
	media media.Event
	fn    func(*Call) // evFunc
}

type callState int

const (
	stateCalling   callState = iota // B-leg attempts under way, A not answered
	stateConfirmed                  // both legs confirmed
	stateEnding                     // BYE/CANCEL sent, waiting for their answers
)

// Call is one call: two legs, a media session and the goroutine that owns
// them. All fields are touched only by that goroutine, after start.
type Call struct {
	s      *Server
	log    *slog.Logger
	events chan event
	done   chan struct{}

	a, b   *leg
	inv    *txn.ServerTx // A's INVITE until answered
	invReq sip.Request
	media  MediaSession
	route  *routing.Route
	dests  []dest // B-leg targets not yet tried
	try    *attempt
	// forks are the attempts ringing in parallel (a registered user's
	// bindings); the first 2xx wins and the others are cancelled.
	forks   []*attempt
	forking bool
	best    int // best final failure among the forks (RFC 3261 16.7)
	// admitted gives back what the admission stage counted for this call
	// (nil: nothing); maxDuration bounds it once answered (0: no bound).
	admitted    func()
	maxDuration time.Duration
	// dial is the user part leg B dials toward a trunk, as the dial rules
	// read and checked it (policy.Request.Dial); "": the one dialed.
	dial string

	state       callState
	cancelled   bool
	answered    bool
	lastFailure int  // SIP code of the last failed attempt (408 for no answer)
	tlsFailed   bool // the last attempt failed in the TLS handshake with its trunk
	// user is the caller the auth stage authenticated ("" when none, or
	// the source is trusted); identity.go asserts it toward the callee.
	user  string
	cause outcome.Cause
	side  outcome.Side

	onResp map[*txn.ClientTx]func(sip.Response)
	// afterFinal keeps the handlers of INVITE transactions that had their
	// final answer: 2xx retransmissions and 2xx from other forks still
	// arrive (RFC 6026 Accepted state) and must be ACKed, but the call does
	// not wait for them to end.
	afterFinal map[*txn.ClientTx]func(sip.Response)
	pending    *relay // a re-INVITE or UPDATE being relayed
	// inflight are the requests relayed to the other leg whose server
	// transactions wait for its answer (inflight.go).
	inflight map[*txn.ServerTx]inflightReq
	timers   map[timerKind]*time.Timer
	conns    []*transport.Conn // connections the call is indexed under (connlost.go)
	started  time.Time
	rec      outcome.CallRecord // the CDR material, filled as the call goes
}

// post hands an event to the call's goroutine; after the call ended it is
// dropped and post reports false.
func (c *Call) post(ev event) bool {
	select {
	case c.events <- ev:
		return true
	case <-c.done:
		return false
	}
}

// Hangup ends the call from outside the call's goroutine.
func (c *Call) Hangup(cause outcome.Cause) { c.post(event{kind: evHangup, cause: cause}) }

// run is the call's goroutine.
func (c *Call) run() {
	defer c.finish()
	if o := c.s.hooks.Observer; o != nil {
		o.CallStarted(c.rec)
	}
	if !c.start() {
		return
	}
	for !c.over() {
		ev := <-c.events
		c.handle(ev)
	}
}

func (c *Call) handle(ev event) {
	switch ev.kind {
	case evRequest:
		c.onRequest(ev.leg, ev.req, ev.stx)
	case evResponse:
		if f := c.onResp[ev.ctx]; f != nil {
			f(ev.res)
		} else if f := c.afterFinal[ev.ctx]; f != nil {
			f(ev.res)
		}
	case evTxDone:
		delete(c.afterFinal, ev.ctx)
	case evCancel:
		c.onCancel()
	case evAckLost:
		if c.state == stateConfirmed {
			c.log.Warn("caller never acknowledged the answer")
			c.hangup(outcome.CauseACKTimeout, outcome.SideA)
		}
	case evTimer:
		c.onTimer(ev.timer)
	case evStray:
		if ev.leg.lastACK != nil && ev.leg.remoteTag == sipmsg.ToTag(ev.res) {
			_ = c.s.send(ev.leg.lastACK, ev.leg.dst)
		}
	case evHangup:
		c.hangup(ev.cause, outcome.SideSBC)
	case evMedia:
		c.onMediaEvent(ev.media)
	case evFunc:
		ev.fn(c)
	}
}

// onMediaEvent handles what the media session reports: media gone (media
// timeout, a browser's ICE/DTLS never coming up) ends the call; a digit
// taken out of the RTP of one side goes to the other as SIP INFO.
func (c *Call) onMediaEvent(ev media.Event) {
	switch ev.Kind {
	case media.EventEnd:
		if c.state == stateEnding {
			return
		}
		c.log.Info("media ended the call", "cause", ev.Cause)
		c.hangup(outcome.Cause(ev.Cause), outcome.SideSBC) // media ends calls with outcome causes (record_test.go)
	case media.EventDTMF:
		to := c.a
		if ev.From == media.SideA {
			to = c.b
		}
		if to == nil || !to.confirmed || c.state != stateConfirmed {
			return
		}
		ct, body := rtpproc.FormatDTMFRelay(rtpproc.Event{Digit: ev.DTMF.Digit, Duration: ev.DTMF.Duration})
		req := to.newRequest(sip.INFO, ct, string(body))
		if _, err := c.send(to, req, func(sip.Response) {}); err != nil {
			c.log.Debug("dtmf info", "leg", to.name, "err", err)
		}
	}
}

// over reports whether the call is done: ended and nothing outstanding.
func (c *Call) over() bool {
	return c.state == stateEnding && len(c.onResp) == 0
}

// send starts a client transaction on a leg and routes its responses to f
// (on the call's goroutine). The final response removes f.
func (c *Call) send(l *leg, req sip.Request, f func(sip.Response)) (*txn.ClientTx, error) {
	ctx, err := c.s.tx.Request(req, l.dst)
	if err != nil {
		return nil, err
	}
	c.onResp[ctx] = func(res sip.Response) {
		if res.StatusCode() >= 200 {
			if h := c.onResp[ctx]; h != nil && req.Method() == sip.INVITE {
				c.afterFinal[ctx] = f
			}
			delete(c.onResp, ctx)
		}
		f(res)
	}
	c.s.pumps.Add(1)
	go func() {
		defer c.s.pumps.Done()
		final := false
		for res := range ctx.Responses() {
			final = final || res.StatusCode() >= 200
			c.post(event{kind: evResponse, ctx: ctx, res: res})
		}
		if !final { // ended without a final response: treat as a timeout
			c.post(event{kind: evResponse, ctx: ctx, res: txn.NewResponse(req, 408, "Request Timeout")})
		}
		c.post(event{kind: evTxDone, ctx: ctx})
	}()
	return ctx, nil
}

// watch forwards the A INVITE's CANCEL and lost-ACK signals to the call.
func (c *Call) watch(stx *txn.ServerTx) {
	c.s.pumps.Add(1)
	go func() {
		defer c.s.pumps.Done()
		select {
		case <-stx.Cancelled():
			c.post(event{kind: evCancel})
		case <-stx.AckTimeout():
			c.post(event{kind: evAckLost})
		case <-stx.Done():
		case <-c.done:
		}
	}()
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
		c.log.Debug("bye", "leg", l.name, "err", err)
	}
}

func (c *Call) setCause(cause outcome.Cause, side outcome.Side) {
	if c.cause == "" {
		c.cause, c.side = cause, side
	}
}

// start runs the first steps of an INVITE: route, media, first attempt.
func (c *Call) start() bool {
	if !c.routeCall() {
		return false
	}
	return c.nextAttempt()
}

// finish releases everything the call holds; it runs last on the call's
// goroutine.
func (c *Call) finish() {
	// Nothing the call took on may stay unanswered once it is gone.
	c.terminateInflight()
	if c.inv != nil {
		c.finalToA(500, "Server Internal Error")
	}
	for _, t := range c.timers {
		t.Stop()
	}
	if c.media != nil {
		c.media.Stop()
		c.rec.Media = recordMedia(c.media.Stats())
		codecs := c.media.Codecs()
		c.rec.ACodec, c.rec.BCodec = codecs[media.SideA], codecs[media.SideB]
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
	if o := c.s.hooks.Observer; o != nil {
		// Durable before the call lets go of anything (DESIGN: no lost
		// CDRs): a stalled CDR disk keeps ports and admission counts taken,
		// so new calls are refused rather than carried without records.
		o.CallEnded(c.rec)
	}
	if c.media != nil {
		c.media.Close()
	}
	if c.admitted != nil {
		c.admitted() // give back the admission counts
	}
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
	c.s.unwatchConns(c)
	close(c.done)
	if c.answered {
		c.s.stats.CallsAnswered.Add(1)
	} else {
		c.s.stats.CallsFailed.Add(1)
	}
	c.log.Info("call ended", "cause", c.cause, "side", c.side, "answered", c.answered,
		"duration", time.Since(c.started).Round(time.Millisecond))
	c.s.untrack(c)
}
