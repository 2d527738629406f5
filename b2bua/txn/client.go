package txn

import (
	"fmt"
	"sync"
	"time"

	"github.com/ghettovoice/gosip/sip"

	"github.com/sbc-project/sbc/b2bua/transport"
)

type clientState uint8

const (
	cCalling    clientState = iota // INVITE: Calling; non-INVITE: Trying
	cProceeding                    // a 1xx arrived
	cCompleted                     // non-2xx final (INVITE) or any final (non-INVITE)
	cAccepted                      // INVITE: a 2xx arrived (RFC 6026)
	cTerminated
)

// responsesCap sizes ClientTx.Responses. Provisional responses are dropped
// once fewer than finalReserve slots are free, so the first final response
// always fits even when the TU reads nothing.
const (
	responsesCap = 32
	finalReserve = 8
)

// ClientTx is a client transaction: one request sent and its responses.
// Methods are safe for concurrent use.
type ClientTx struct {
	l        *Layer
	key      clientKey
	req      sip.Request // nil once a final response arrived (Request)
	dst      transport.Target
	invite   bool
	internal bool // a CANCEL sent by the layer: its responses are absorbed

	responses chan sip.Response // nil when h is set, or internal
	h         ClientHandler     // set by RequestWith: events go to it, not to responses

	mu         sync.Mutex
	done       signal         // under mu
	queue      []sip.Response // for h: delivered, not yet handed over
	ended      bool           // for h: terminated, h.Ended not yet called
	handing    bool           // for h: a goroutine is handing the queue over
	muted      bool           // for h: the request was never sent, h hears nothing
	state      clientState
	ack        sip.Request // the ACK of the non-2xx final, re-sent on its retransmissions
	wantCancel bool        // Cancel was called before any provisional response
	cancelSent bool
	interval   time.Duration
	retrans    timer // Timers A and E
	timeout    timer // Timers B and F (after a CANCEL, the wait for the INVITE's final); then D, K and M
}

// ClientHandler gets the events of a client transaction started with
// Layer.RequestWith instead of its Responses channel: every response
// Responses would carry, then Ended once when the transaction terminates.
// Calls come in order and never two at once for one transaction, on the
// goroutine that received the response or fired the timer, with no lock
// of the layer held; a handler should hand long work off.
type ClientHandler interface {
	Response(tx *ClientTx, res sip.Response)
	Ended(tx *ClientTx)
}

func newClientTx(l *Layer, key clientKey, req sip.Request, dst transport.Target, internal bool, h ClientHandler) *ClientTx {
	tx := &ClientTx{
		l: l, key: key, req: req, dst: dst,
		invite:   req.IsInvite(),
		internal: internal,
		h:        h,
	}
	if h == nil && !internal { // an internal CANCEL's responses are absorbed
		tx.responses = make(chan sip.Response, responsesCap)
	}
	return tx
}

// Request returns the request of the transaction, until a final response
// arrives: nil after it. The TU must not modify it. A transaction that
// lingers after its final response (Timers D, K and M: 32 s for an INVITE
// answered 2xx) needs only its key to match and absorb what follows, and
// keeping each request for that long was most of an established call's
// memory (BENCHMARKS.md, issue 15 point 6).
func (tx *ClientTx) Request() sip.Request {
	tx.mu.Lock()
	defer tx.mu.Unlock()
	return tx.req
}

// Responses (nil for a transaction with a ClientHandler) delivers the provisional and final responses, and a synthetic
// 408 (no To tag) when Timer B/F fires or a CANCELed INVITE gets no final
// response within 64*T1. For INVITE, every 2xx arriving in the Accepted
// state (64*T1 after the first) is delivered too: retransmissions and 2xx
// with other To tags (forking), so the TU ACKs each and BYEs the extras.
// The layer never blocks on it: provisional responses are dropped when the
// TU falls behind, finals only if it lets 32 pile up. It is closed when the
// transaction terminates, without a final response if Layer.Close ended it.
func (tx *ClientTx) Responses() <-chan sip.Response { return tx.responses }

// Done is closed when the transaction has terminated.
func (tx *ClientTx) Done() <-chan struct{} {
	tx.mu.Lock()
	defer tx.mu.Unlock()
	return tx.done.wait()
}

// Cancel sends CANCEL for an INVITE (RFC 3261 9.1) once a provisional
// response has arrived: at once if one has, else as soon as one does. The
// CANCEL is a client transaction of its own to the same destination with the
// same branch; the layer absorbs its response. If no final response to the
// INVITE follows within 64*T1, a synthetic 408 ends the transaction. A 2xx
// that crosses the CANCEL is delivered as usual (the TU ACKs and BYEs it).
// After a final response, or a second time, Cancel does nothing. It fails
// only for a non-INVITE transaction.
func (tx *ClientTx) Cancel() error {
	if !tx.invite {
		return fmt.Errorf("cancel %s: only INVITE can be cancelled", tx.key.method)
	}
	var out outbox
	tx.mu.Lock()
	switch tx.state {
	case cCalling:
		tx.wantCancel = true
	case cProceeding:
		tx.startCancel(&out)
	}
	tx.mu.Unlock()
	out.flush(tx.l)
	return nil
}

// startCancel is called with tx.mu held.
func (tx *ClientTx) startCancel(out *outbox) {
	if tx.cancelSent {
		return
	}
	tx.cancelSent = true
	tx.l.sched.arm(&tx.timeout, tx.l.t.long(), tx, kindB)
	cancel := newCancel(tx.req)
	out.then(func() {
		if _, err := tx.l.request(cancel, tx.dst, true, nil); err != nil {
			tx.l.log.Debug("send CANCEL", "branch", tx.key.branch, "err", err)
		}
	})
}

// start arms Timers A/E (unreliable transports only) and B/F.
func (tx *ClientTx) start() {
	tx.mu.Lock()
	defer tx.mu.Unlock()
	t := tx.l.t
	if !tx.dst.Kind.Reliable() {
		tx.interval = t.T1
		tx.l.sched.arm(&tx.retrans, t.T1, tx, kindA)
	}
	tx.l.sched.arm(&tx.timeout, t.long(), tx, kindB)
}

func (tx *ClientTx) mutex() *sync.Mutex { return &tx.mu }

// expire runs the timer of kind k that fired; tx.mu held.
func (tx *ClientTx) expire(k timerKind, out *outbox) {
	switch k {
	case kindA:
		tx.timerA(out)
	case kindB:
		tx.timerB(out)
	case kindEnd:
		tx.terminate(out)
	}
}

// timerA is Timer A (INVITE: doubling, no cap) and Timer E (non-INVITE:
// doubling up to T2, then T2 once a provisional arrived).
func (tx *ClientTx) timerA(out *outbox) {
	switch {
	case tx.state == cCalling && tx.invite:
		tx.interval *= 2
	case tx.state == cCalling:
		tx.interval = min(2*tx.interval, tx.l.t.T2)
	case tx.state == cProceeding && !tx.invite:
		tx.interval = tx.l.t.T2
	default:
		return
	}
	out.send(tx.req, tx.dst, true)
	tx.l.sched.arm(&tx.retrans, tx.interval, tx, kindA)
}

// timerB is Timer B/F, and the end of the wait for a CANCELed INVITE's
// final response: a synthetic 408 ends the transaction.
func (tx *ClientTx) timerB(out *outbox) {
	if tx.state != cCalling && tx.state != cProceeding {
		return
	}
	tx.l.stats.timeouts.Add(1)
	tx.l.log.Debug("request timed out", "method", tx.req.Method(), "dst", tx.dst.String())
	tx.deliver(NewResponse(tx.req, 408, "Request Timeout"), true, out)
	tx.terminate(out)
}

// receive handles a response matched to the transaction and reports whether
// the transaction took it (false once terminated: it is a stray then).
func (tx *ClientTx) receive(res sip.Response) bool {
	var out outbox
	tx.mu.Lock()
	ok := tx.receiveLocked(res, int(res.StatusCode()), &out)
	tx.mu.Unlock()
	out.flush(tx.l)
	return ok
}

func (tx *ClientTx) receiveLocked(res sip.Response, code int, out *outbox) bool {
	switch tx.state {
	case cTerminated:
		return false
	case cAccepted:
		if code/100 == 2 {
			tx.deliver(res, true, out)
		} else {
			tx.l.stats.absorbed.Add(1)
		}
	case cCompleted:
		if tx.invite && code >= 300 {
			out.send(tx.ack, tx.dst, true)
		}
		tx.l.stats.absorbed.Add(1)
	default:
		tx.advance(res, code, out)
	}
	return true
}

// advance moves a Calling/Trying or Proceeding transaction on.
func (tx *ClientTx) advance(res sip.Response, code int, out *outbox) {
	t := tx.l.t
	if code < 200 {
		if tx.state == cCalling && tx.invite {
			tx.l.sched.stop(&tx.retrans, &tx.timeout)
		}
		tx.state = cProceeding
		tx.deliver(res, false, out)
		if tx.wantCancel {
			tx.startCancel(out)
		}
		return
	}
	tx.l.sched.stop(&tx.retrans, &tx.timeout)
	req := tx.req
	tx.req = nil // nothing re-sends or answers it from now on (Request)
	switch {
	case tx.invite && code < 300:
		tx.state = cAccepted
		tx.l.sched.arm(&tx.timeout, t.long(), tx, kindEnd)
	case tx.invite:
		tx.state = cCompleted
		tx.ack = newAck(req, res)
		out.send(tx.ack, tx.dst, false)
		tx.l.sched.arm(&tx.timeout, lingerFor(tx.dst.Kind, t.long()), tx, kindEnd)
	default:
		tx.state = cCompleted
		tx.l.sched.arm(&tx.timeout, lingerFor(tx.dst.Kind, t.T4), tx, kindEnd)
	}
	tx.deliver(res, true, out)
}

// deliver queues res for the TU without blocking; called with tx.mu held,
// which makes the room check exact: only deliver sends on the channel. With
// a ClientHandler, res joins the queue that out hands over once tx.mu is
// released.
func (tx *ClientTx) deliver(res sip.Response, final bool, out *outbox) {
	if tx.internal || tx.muted {
		return
	}
	if tx.h != nil {
		tx.queue = append(tx.queue, res)
		out.handOver(tx)
		return
	}
	room := cap(tx.responses) - len(tx.responses)
	if room == 0 || (!final && room <= finalReserve) {
		tx.l.stats.dropped.Add(1)
		if final {
			tx.l.log.Warn("TU not reading responses, final dropped", "branch", tx.key.branch, "code", int(res.StatusCode()))
		}
		return
	}
	tx.responses <- res
}

// handOver gives the ClientHandler what is queued for it, in order. One
// goroutine at a time does it; one that finds another at it leaves the
// queue to it, which takes what was added meanwhile before it stops.
func (tx *ClientTx) handOver() {
	tx.mu.Lock()
	if tx.handing {
		tx.mu.Unlock()
		return
	}
	tx.handing = true
	for {
		switch {
		case len(tx.queue) > 0:
			res := tx.queue[0]
			tx.queue[0] = nil
			tx.queue = tx.queue[1:]
			tx.mu.Unlock()
			tx.h.Response(tx, res)
			tx.mu.Lock()
		case tx.ended:
			tx.ended = false
			tx.mu.Unlock()
			tx.h.Ended(tx)
			tx.mu.Lock()
		default:
			tx.handing = false
			tx.queue = nil
			tx.mu.Unlock()
			return
		}
	}
}

// abort ends the transaction without a response (Layer.Close, or the
// request could not be sent: then mute keeps the handler out of it).
func (tx *ClientTx) abort(mute bool) {
	var out outbox
	tx.mu.Lock()
	tx.muted = tx.muted || mute
	tx.terminate(&out)
	tx.mu.Unlock()
	out.flush(tx.l)
}

// terminate is called with tx.mu held; out hands the end to a
// ClientHandler once tx.mu is released.
func (tx *ClientTx) terminate(out *outbox) {
	if tx.state == cTerminated {
		return
	}
	tx.state = cTerminated
	tx.l.sched.stop(&tx.retrans, &tx.timeout)
	tx.l.removeClient(tx)
	if tx.responses != nil {
		close(tx.responses)
	}
	if tx.h != nil && !tx.muted && !tx.internal {
		tx.ended = true
		out.handOver(tx)
	}
	tx.done.fire()
}
