package b2bua

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ghettovoice/gosip/sip"

	"github.com/sbc-project/sbc/b2bua/outcome"
	"github.com/sbc-project/sbc/b2bua/routing"
	"github.com/sbc-project/sbc/b2bua/sipmsg"
	"github.com/sbc-project/sbc/b2bua/timeline"
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
	kind   evKind
	leg    *leg
	req    sip.Request // evRequest; evTxDone: the transaction's request
	stx    serverTx
	res    sip.Response
	client clientTx  // evResponse, evTxDone
	due    *deadline // evTimer: the timer that fired
	cause  outcome.Cause
	media  *media.Event // evMedia (rare: behind a pointer, the event stays small)
	fn     func(*Call)  // evFunc
}

// maxPending bounds the events waiting for a call: a call rarely has more
// than a few (the transaction layer absorbs retransmissions), and one that
// lets this many pile up is stuck or flooded; post refuses more.
const maxPending = 256

type callState int

const (
	stateCalling   callState = iota // B-leg attempts under way, A not answered
	stateConfirmed                  // both legs confirmed
	stateEnding                     // BYE/CANCEL sent, waiting for their answers
)

// Call is one call: two legs, a media session and the goroutine that owns
// them while it handles an event. All fields but the queue's are touched
// only by that goroutine, after start.
type Call struct {
	s   *Server
	log *slog.Logger
	// The events posted to the call wait in queue. A goroutine runs the
	// call only while it has events (running): an established call that
	// waits for its next request costs no goroutine stack (8 kB a call
	// with one each) and no queue. ended is set when the loop has ended:
	// an event posted later would never be handled, so post refuses it,
	// and nothing posting (a media event, a UDP worker) ever waits on a
	// call (media Stop waits for its events).
	qmu     sync.Mutex
	queue   []event
	running bool
	ended   bool
	// finished is set when the call is done, and done, made only for
	// whoever waits for that (doneChan), is closed then.
	finished bool
	// The call's flags, together: a bool between wider fields costs 8
	// bytes. forking: forks are ringing; cancelled: the caller cancelled;
	// answered: A got its 2xx; tlsFailed: the last attempt failed in the
	// TLS handshake with its trunk; vouched: the caller authenticated or
	// came from a trusted source, so a refusal may play it an
	// announcement (earlymedia.go); dropped: let go without a word
	// (replica_restore.go drop).
	forking, cancelled, answered, tlsFailed, vouched, dropped bool

	done chan struct{}
	// lookupStop cancels the context of the lookup the call waits on
	// (lookupCtx), if any.
	lookupStop context.CancelFunc
	// self is what the call's transactions hold of it (txEvents, watch):
	// they outlive the call (32 s on UDP), and it lets the call go when
	// it is done.
	self *callRef

	a, b *leg
	inv  serverTx // A's INVITE until answered
	// invReq is A's INVITE until the 2xx to it is sent (letInviteGo):
	// what later requests need of it is in leg A; users, what tracing
	// needs, stays.
	invReq sip.Request
	users  []string
	// traceOn is whether the call's lines are traced: decided when the
	// call starts, calls out, is answered or transferred (README: a call
	// already up keeps the decision).
	traceOn bool
	invSeq  uint32 // the CSeq number of A's INVITE, for RAck (prack.go)
	media   MediaSession
	// setup is what only the search for the callee needs (call2_offer.go),
	// let go when the call is answered; nil then.
	setup *callSetup
	// tl is the call's timeline (timeline.go); nil: none kept.
	tl    *timeline.Timeline
	route *routing.Route
	try   *attempt
	// forks are the attempts ringing in parallel (a registered user's
	// bindings); the first 2xx wins and the others are cancelled.
	forks []*attempt
	// admitted gives back what the admission stage counted for this call
	// (nil: nothing); maxDuration bounds it once answered (0: no bound).
	admitted    func()
	maxDuration time.Duration

	state       callState
	lastFailure int // SIP code of the last failed attempt (408 for no answer)
	// user is the caller the auth stage authenticated ("" when none, or
	// the source is trusted); identity.go asserts it toward the callee.
	user string
	// ringback is the local ringback playing, refusing the refusal
	// waiting for its announcement (earlymedia.go); nil: none.
	ringback *media.Playback
	refusing *announcedRefusal
	cause    outcome.Cause
	side     outcome.Side

	// handlers route the responses of the call's client transactions
	// (send). The handler of an INVITE transaction that had its final
	// answer stays (final) until the transaction ends: 2xx
	// retransmissions and 2xx from other forks still arrive (RFC 6026
	// Accepted state) and must be ACKed, but the call does not wait for
	// them (over).
	handlers txHandlers
	pending  *relay      // a re-INVITE or UPDATE being relayed
	prack    *prackState // 100rel on both legs (prack.go); nil: none yet (rel)
	xfer     transfers   // REFERs (call6_refer.go)
	// inflight are the requests relayed to the other leg whose server
	// transactions wait for its answer (call4_dialog.go).
	inflight map[serverTx]inflightReq
	timers   []*deadline // running (timers.go)
	// ctx is the call's context. A CANCEL or a hang-up from outside
	// cancels it with a *stopped cause, so that a step waiting on the
	// network (a late policy stage, a trunk's DNS) returns at once and the
	// call's loop takes the event; finish cancels it too.
	ctx     context.Context
	stop    context.CancelCauseFunc
	conns   []*transport.Conn // connections the call is indexed under (calls.go)
	grace   *flowGrace        // legs whose connection closed, in their grace (flowgrace.go); nil: none ever
	started time.Time
	rec     callRecord // the CDR material, filled as the call goes (record.go)
	repl    *replica   // what was last replicated (replica.go); nil: nothing
}

// openEvents marks the call's first goroutine (run) as running.
func (c *Call) openEvents() {
	c.running = true
}

// doneChan returns a channel closed once the call is done. It is made on
// demand (an admin snapshot waits on it): two channels a call, made for
// every call, cost 0.2 kB each call kept.
func (c *Call) doneChan() <-chan struct{} {
	c.qmu.Lock()
	defer c.qmu.Unlock()
	if c.done == nil {
		c.done = make(chan struct{})
		if c.finished {
			close(c.done)
		}
	}
	return c.done
}

// markDone sets the call done and wakes whoever waits in doneChan.
func (c *Call) markDone() {
	c.qmu.Lock()
	defer c.qmu.Unlock()
	c.finished = true
	if c.done != nil {
		close(c.done)
	}
}

// post hands an event to the call, starting a goroutine for it when none
// runs the call; once the call's loop has ended (or maxPending events
// wait) it is dropped and post reports false. It never blocks.
func (c *Call) post(ev event) bool {
	ok, idle := c.enqueue(ev)
	if idle {
		go c.loop()
	}
	return ok
}

// enqueue queues ev unless the call's loop has ended or maxPending events
// wait (ok false); idle: no goroutine ran the call, and the caller must
// now run it (running is taken for it under qmu, so one goroutine at a
// time runs the call).
func (c *Call) enqueue(ev event) (ok, idle bool) {
	c.qmu.Lock()
	defer c.qmu.Unlock()
	if c.ended || len(c.queue) >= maxPending {
		return false, false
	}
	c.queue = append(c.queue, ev)
	idle = !c.running
	c.running = true
	return true, idle
}

// next takes the oldest event waiting; with none, the goroutine running
// the call stops doing so (ok false) and the queue's memory is let go.
func (c *Call) next() (ev event, ok bool) {
	c.qmu.Lock()
	defer c.qmu.Unlock()
	if len(c.queue) == 0 {
		c.running, c.queue = false, nil
		return event{}, false
	}
	ev = c.queue[0]
	c.queue[0] = event{}
	c.queue = c.queue[1:]
	return ev, true
}

// Hangup ends the call from outside the call's goroutine.
func (c *Call) Hangup(cause outcome.Cause) {
	c.halt(&stopped{cause: cause, side: outcome.SideSBC})
	c.post(event{kind: evHangup, cause: cause})
}

// halt cancels the call's context with cause, and the lookup the call
// waits on (lookupCtx). Any goroutine.
func (c *Call) halt(cause error) {
	c.stop(cause)
	c.qmu.Lock()
	stop := c.lookupStop
	c.qmu.Unlock()
	if stop != nil {
		stop()
	}
}

// lookupCtx is the context of a step that waits on the network for at
// most d (a trunk's DNS, the bindings peers hold), cancelled as the
// call's is, by halt. It is not derived from the call's context: a
// context with a child keeps a map for its children from then on (0.35 kB
// for the call's life). done must be called when the step returns. Call
// goroutine only, one lookup at a time.
func (c *Call) lookupCtx(d time.Duration) (ctx context.Context, done func()) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(c.ctx), d)
	c.qmu.Lock()
	c.lookupStop = cancel
	c.qmu.Unlock()
	if c.ctx.Err() != nil { // halted before the lookup could be cancelled
		cancel()
	}
	return ctx, func() {
		c.qmu.Lock()
		c.lookupStop = nil
		c.qmu.Unlock()
		cancel()
	}
}

// stopped is the cause a call's context is cancelled with: why and by
// whom the call was stopped from outside its goroutine.
type stopped struct {
	cause outcome.Cause
	side  outcome.Side
}

func (e *stopped) Error() string { return "call stopped: " + string(e.cause) }

// errFinished cancels the context of a call that has finished.
var errFinished = &stopped{cause: "finished", side: outcome.SideSBC}

// run is the call's first goroutine: the steps of start, then the events
// that came meanwhile.
func (c *Call) run() {
	c.startTimeline()
	if o := c.s.hooks.Observer; o != nil {
		o.CallStarted(c.rec.full())
	}
	if !c.start() {
		c.end()
		return
	}
	c.loop()
}

// loop handles the call's events until none waits, or the call is over.
func (c *Call) loop() {
	for !c.over() {
		ev, ok := c.next()
		if !ok {
			return // idle: the next post starts a goroutine again
		}
		if !c.step(ev) {
			return
		}
	}
	c.end()
}

// step handles one event and replicates what it changed; false: the
// call was dropped (its goroutine lets it go).
func (c *Call) step(ev event) bool {
	c.handle(ev)
	if c.dropped {
		return false
	}
	if c.s.hooks.Replicate != nil {
		c.replicate()
	}
	return true
}

// end ends the call's loop: what is posted from now on is refused, and
// the call finishes.
func (c *Call) end() {
	c.qmu.Lock()
	c.ended, c.queue = true, nil
	c.qmu.Unlock()
	c.finish()
}

func (c *Call) handle(ev event) {
	switch ev.kind {
	case evRequest:
		c.onRequest(ev.leg, ev.req, ev.stx)
	case evResponse:
		if i := c.handlers.index(ev.client); i >= 0 {
			c.handlers[i].f(ev.res)
		}
	case evTxDone:
		if i := c.handlers.index(ev.client); i >= 0 && !c.handlers[i].final { // ended without a final response: a timeout
			c.handlers[i].f(txn.NewResponse(ev.req, 408, "Request Timeout"))
		}
		c.afterFinalEnded(ev.client)
	case evCancel:
		c.onCancel()
	case evAckLost:
		if c.state == stateConfirmed {
			c.log.Warn("caller never acknowledged the answer")
			c.hangup(outcome.CauseACKTimeout, outcome.SideA)
		}
	case evTimer:
		c.onTimer(ev.due)
	case evStray:
		if ev.leg.lastACK != nil && ev.leg.remoteTag == sipmsg.ToTag(ev.res) {
			_ = c.s.txs.SendRendered(ev.leg.lastACK, nil, ev.leg.dst)
		}
	case evHangup:
		c.hangup(ev.cause, outcome.SideSBC)
	case evMedia:
		c.onMediaEvent(*ev.media)
	case evFunc:
		ev.fn(c)
	}
}

// onMediaEvent handles what the media session reports: media gone (media
// timeout, a browser's ICE/DTLS never coming up) ends the call; a digit
// taken out of the RTP of one side goes to the other as SIP INFO.
func (c *Call) onMediaEvent(ev media.Event) {
	c.timelineMediaEvent(ev)
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
			c.log.Debug("dtmf info", "leg", to.name(), "err", err)
		}
	case media.EventState: // the session's state changed (a latch, DTLS up, its periodic report)
		c.mediaChanged()
	}
}

// over reports whether the call is done: ended and nothing outstanding.
func (c *Call) over() bool {
	return c.state == stateEnding && !c.handlers.any(false)
}

// put sets (*m)[k], making the map if it is nil. A call's maps
// (inflight) are made when first needed and let go when emptied (drop):
// an established call mostly has nothing in them, and an emptied map
// keeps its slots (some 200 bytes each).
func put[K comparable, V any](m *map[K]V, k K, v V) {
	if *m == nil {
		*m = make(map[K]V)
	}
	(*m)[k] = v
}

// drop deletes (*m)[k] and lets the map go once it is empty.
func drop[K comparable, V any](m *map[K]V, k K) {
	delete(*m, k)
	if len(*m) == 0 {
		*m = nil
	}
}

// callRef points to a call until it is done (finish), then to nothing.
// A transaction lingers up to 64*T1 after its final response (Timers M,
// D, J: 32 s on UDP) with its handler; through a pointer to the Call, that
// kept each ended call whole (its legs, media session, messages: some
// 15 kB) for 32 s, 500 MB at 1,200 calls/s, whose heap growth was 5-7 %
// of the SBC's CPU. A done call takes no event (post refuses it), so what
// reaches it through a cut reference is what it would have dropped.
type callRef struct{ p atomic.Pointer[Call] }

// ref returns the call's callRef; the call's goroutine, or its creator
// before it starts, calls it.
func (c *Call) ref() *callRef {
	if c.self == nil {
		c.self = &callRef{}
		c.self.p.Store(c)
	}
	return c.self
}
