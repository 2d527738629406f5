package txn

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/ghettovoice/gosip/sip"

	"github.com/sbc-project/sbc/b2bua/sipmsg"
	"github.com/sbc-project/sbc/b2bua/transport"
)

type serverState uint8

const (
	sTrying     serverState = iota // non-INVITE, no response yet
	sProceeding                    // INVITE from the start; non-INVITE after a 1xx
	sCompleted                     // non-2xx final sent (INVITE: until ACK) or any final (non-INVITE)
	sConfirmed                     // INVITE: ACK of the non-2xx final received
	sAccepted                      // INVITE: 2xx sent (RFC 6026)
	sTerminated
)

// ServerTx is a server transaction: one request received and the responses
// the TU gives it. The TU must give every INVITE and non-INVITE request a
// final response, or call Terminate to drop it silently; a TU that does
// neither within Timers.TU (TUInvite for INVITE) gets a 500 sent for it.
// Methods are safe for concurrent use.
type ServerTx struct {
	l      *Layer
	key    serverKey
	req    sip.Request // nil once no response can follow (Request)
	src    transport.Target
	dst    transport.Target // where responses go, see responseTarget
	invite bool

	mu         sync.Mutex
	cancelled  signal // all three under mu
	ackTimeout signal
	done       signal
	state      serverState
	last       sip.Response // the latest response sent, re-sent on retransmissions; nil once a 2xx is ACKed
	lastWire   []byte       // a non-INVITE's final as rendered, kept instead of last (Layer.SetRenderedSender)
	tag        string       // the To tag of last, kept when last is let go
	ack        ackKey       // the ACK of the 2xx, filed in Layer.acks when filed
	filed      bool
	gotAck     bool          // Accepted: the ACK of the 2xx arrived
	interval   time.Duration // Timer G and 2xx retransmission interval
	// Two timer slots: no two timers of one slot run at once, and each
	// slot is 64 B of every transaction lingering 64*T1.
	retrans timer // the automatic 100 Trying until a response; then Timer G (and its RFC 6026 analogue for 2xx)
	end     timer // the TU's deadline for a final response (Timers.TU); then Timers H, I, J, L

	onCancel, onAckTimeout func() // set by Notify
}

func newServerTx(l *Layer, key serverKey, req sip.Request, src, dst transport.Target) *ServerTx {
	tx := &ServerTx{
		l: l, key: key, req: req, src: src, dst: dst,
		invite: req.IsInvite(),
	}
	if tx.invite {
		tx.state = sProceeding
	}
	return tx
}

// start arms the automatic 100 Trying of an INVITE and the TU's deadline.
func (tx *ServerTx) start() {
	tx.mu.Lock()
	defer tx.mu.Unlock()
	if tx.state == sTerminated {
		return
	}
	deadline := tx.l.t.TU
	if tx.invite {
		deadline = tx.l.t.TUInvite
	}
	tx.l.sched.arm(&tx.end, deadline, tx, kindTU)
	if tx.invite && tx.l.t.Trying > 0 && tx.state == sProceeding && tx.last == nil {
		tx.l.sched.arm(&tx.retrans, tx.l.t.Trying, tx, kindTrying)
	}
}

func (tx *ServerTx) mutex() *sync.Mutex { return &tx.mu }

// expire runs the timer of kind k that fired; tx.mu held.
func (tx *ServerTx) expire(k timerKind, out *outbox) {
	switch k {
	case kindG:
		tx.timerG(out)
	case kindH:
		tx.timerH(out)
	case kindL:
		tx.timerL(out)
	case kindTrying:
		tx.sendTrying(out)
	case kindTU:
		tx.tuTimeout(out)
	case kindEnd:
		tx.terminate(out)
	}
}

// tuTimeout answers 500 for a TU that never gave the request a final
// response: a bug above, but the transaction (and the peer waiting on it)
// must not wait forever.
func (tx *ServerTx) tuTimeout(out *outbox) {
	if tx.state != sTrying && tx.state != sProceeding {
		return
	}
	tx.l.stats.tuTimeouts.Add(1)
	tx.l.log.Warn("request left unanswered: answering 500", "method", tx.key.method, "branch", tx.key.branch)
	_ = tx.respond(NewResponse(tx.req, 500, "Server Internal Error"), 500, out)
}

// Request returns the request that started the transaction, its top Via
// stamped with received/rport, until the transaction has answered it for
// good: a final response sent (for a 2xx to INVITE, once its ACK came),
// Request returns nil. The TU must not modify it. The transaction lingers
// after that (Timers J, L, I: up to 32 s) with only its key and its last
// response; keeping every request for that long weighed on each call.
func (tx *ServerTx) Request() sip.Request {
	tx.mu.Lock()
	defer tx.mu.Unlock()
	return tx.req
}

// Source returns where the request came from.
func (tx *ServerTx) Source() transport.Target { return tx.src }

// Cancelled is closed when a CANCEL matching this INVITE transaction arrived
// before its final response. The layer has answered the CANCEL 200; the TU
// must answer the INVITE 487 and clean up. Never closed for non-INVITE.
func (tx *ServerTx) Cancelled() <-chan struct{} {
	tx.mu.Lock()
	defer tx.mu.Unlock()
	return tx.cancelled.wait()
}

// AckTimeout is closed when the 2xx to this INVITE was not ACKed within
// 64*T1 (RFC 6026 Timer L); the TU should then end the dialog with BYE.
func (tx *ServerTx) AckTimeout() <-chan struct{} {
	tx.mu.Lock()
	defer tx.mu.Unlock()
	return tx.ackTimeout.wait()
}

// Done is closed when the transaction has terminated.
func (tx *ServerTx) Done() <-chan struct{} {
	tx.mu.Lock()
	defer tx.mu.Unlock()
	return tx.done.wait()
}

// Notify has the layer call cancelled when Cancelled closes and ackTimeout
// when AckTimeout closes (either may be nil), each at most once, on the
// goroutine that received the CANCEL or fired the timer, with no lock of
// the layer held: a TU needs no goroutine waiting on the channels. One
// that closed before Notify is called at once, on the caller's goroutine.
// Call it once.
func (tx *ServerTx) Notify(cancelled, ackTimeout func()) {
	tx.mu.Lock()
	tx.onCancel, tx.onAckTimeout = cancelled, ackTimeout
	var now []func()
	if tx.cancelled.fired && cancelled != nil {
		now = append(now, cancelled)
	}
	if tx.ackTimeout.fired && ackTimeout != nil {
		now = append(now, ackTimeout)
	}
	tx.mu.Unlock()
	for _, f := range now {
		f()
	}
}

// signal is a channel closed once (a transaction's Done, Cancelled,
// AckTimeout), made only when someone asks for it: the B2BUA follows its
// transactions through Notify and ClientHandler, so most never need one
// (three channels per server transaction were 10 % of the transaction
// layer's allocations per call). Its methods are called with the owning
// transaction's mutex held.
type signal struct {
	ch    chan struct{}
	fired bool
}

// closedSignal is what wait returns for a signal fired before anyone asked.
var closedSignal = func() chan struct{} {
	ch := make(chan struct{})
	close(ch)
	return ch
}()

func (s *signal) fire() {
	if s.fired {
		return
	}
	s.fired = true
	if s.ch != nil {
		close(s.ch)
	}
}

func (s *signal) wait() <-chan struct{} {
	if s.ch == nil {
		if s.fired {
			return closedSignal
		}
		s.ch = make(chan struct{})
	}
	return s.ch
}

// Respond sends a response the TU built (see NewResponse) to where the
// request came from. The layer keeps res and re-sends it; the TU must not
// modify it afterwards. Provisional responses are re-sent when the request
// is retransmitted. A non-2xx final to INVITE is retransmitted on UDP
// (Timer G) until the ACK, which is absorbed, or Timer H (64*T1); the
// transaction then lingers T4 (Timer I). A 2xx to INVITE moves it to
// Accepted: on UDP the 2xx is retransmitted (T1 doubling up to T2) until
// its ACK arrives, which goes to Handler.OnRequest with a nil tx; without
// ACK, AckTimeout closes after 64*T1. More 2xx may follow in Accepted. A
// final to non-INVITE is re-sent on retransmissions for 64*T1 on UDP (Timer
// J). Errors: ErrTerminated, ErrFinalSent, a bad status, or the Sender's.
func (tx *ServerTx) Respond(res sip.Response) error {
	code := int(res.StatusCode())
	if code < 100 || code > 699 {
		return fmt.Errorf("respond %d to %s: status out of range", code, tx.key.method)
	}
	var out outbox
	tx.mu.Lock()
	err := tx.respond(res, code, &out)
	tx.mu.Unlock()
	if err == nil {
		err = out.flush(tx.l)
	}
	if err != nil {
		return fmt.Errorf("respond %d to %s: %w", code, tx.key.method, err)
	}
	return nil
}

func (tx *ServerTx) respond(res sip.Response, code int, out *outbox) error {
	switch tx.state {
	case sTerminated:
		return ErrTerminated
	case sCompleted, sConfirmed:
		return ErrFinalSent
	case sAccepted:
		if code/100 != 2 {
			return ErrFinalSent
		}
		tx.last = res
		tx.fileAck(res)
		out.send(res, tx.dst, false)
		return nil
	}
	tx.l.sched.stop(&tx.retrans) // the 100 Trying
	if code >= 200 {
		tx.l.sched.stop(&tx.end) // the TU's deadline
	}
	tx.last = res
	t := tx.l.t
	if !tx.invite && code >= 200 && tx.l.sendBytes != nil && lingerFor(tx.dst.Kind, t.long()) > 0 {
		tx.keepWire(res, out)
	} else {
		out.send(res, tx.dst, false)
	}
	switch {
	case code < 200:
		tx.state = sProceeding
	case tx.invite && code < 300:
		tx.state = sAccepted
		tx.fileAck(res)
		tx.startRetransmit()
		tx.l.sched.arm(&tx.end, t.long(), tx, kindL)
	case tx.invite:
		tx.state = sCompleted
		tx.req = nil
		tx.startRetransmit()
		tx.l.sched.arm(&tx.end, t.long(), tx, kindH)
	default:
		tx.state = sCompleted
		tx.req = nil
		tx.l.sched.arm(&tx.end, lingerFor(tx.dst.Kind, t.long()), tx, kindEnd)
	}
	return nil
}

// keepWire sends a non-INVITE's final response res as rendered here, and
// keeps only that rendering for the request's retransmissions, not res:
// the transaction lingers 64*T1 (Layer.SetRenderedSender).
func (tx *ServerTx) keepWire(res sip.Response, out *outbox) {
	w := sipmsg.RenderWire(res)
	tx.lastWire = bytes.Clone(w.Bytes())
	w.Free()
	tx.last = nil
	out.sendBytes(tx.lastWire, res, tx.dst, false)
}

// startRetransmit starts Timer G on unreliable transports.
func (tx *ServerTx) startRetransmit() {
	if tx.dst.Kind.Reliable() {
		return
	}
	tx.interval = tx.l.t.T1
	tx.l.sched.arm(&tx.retrans, tx.interval, tx, kindG)
}

func (tx *ServerTx) timerG(out *outbox) {
	if tx.state != sCompleted && (tx.state != sAccepted || tx.gotAck) {
		return
	}
	out.send(tx.last, tx.dst, true)
	tx.interval = min(2*tx.interval, tx.l.t.T2)
	tx.l.sched.arm(&tx.retrans, tx.interval, tx, kindG)
}

func (tx *ServerTx) timerH(*outbox) {
	tx.l.stats.timeouts.Add(1)
	tx.l.log.Debug("no ACK for final response", "method", tx.key.method, "branch", tx.key.branch)
	tx.terminate(nil)
}

func (tx *ServerTx) timerL(out *outbox) {
	if !tx.gotAck {
		tx.l.stats.timeouts.Add(1)
		tx.l.log.Debug("no ACK for 2xx", "branch", tx.key.branch)
		tx.ackTimeout.fire()
		if tx.onAckTimeout != nil {
			out.then(tx.onAckTimeout)
		}
	}
	tx.terminate(nil)
}

// sendTrying answers 100 for a TU that is slow to answer an INVITE (RFC 3261
// 17.2.1), which stops the client's retransmissions.
func (tx *ServerTx) sendTrying(out *outbox) {
	if tx.state != sProceeding || tx.last != nil {
		return
	}
	tx.last = NewResponse(tx.req, 100, "Trying")
	out.add(pending{msg: tx.last, dst: tx.dst, ifLast: tx})
}

// fileAck makes the ACK of the 2xx res findable (Call-ID, CSeq, To tag).
func (tx *ServerTx) fileAck(res sip.Response) {
	k, ok := newAckKey(res)
	if !ok || (tx.filed && k == tx.ack) {
		return
	}
	if tx.filed {
		tx.l.dropAckKey(tx.ack, tx)
	}
	k.callID = strings.Clone(k.callID) // kept 64*T1: not a substring of a datagram received
	tx.ack, tx.filed = k, true
	tx.l.setAckKey(k, tx)
}

// retransmitted handles a retransmission of the request: it re-sends the
// latest response, if any.
func (tx *ServerTx) retransmitted() {
	var out outbox
	tx.mu.Lock()
	switch tx.state {
	case sProceeding, sCompleted, sAccepted:
		if tx.last != nil {
			out.send(tx.last, tx.dst, true)
		} else if tx.lastWire != nil {
			out.sendBytes(tx.lastWire, nil, tx.dst, true)
		}
	}
	tx.mu.Unlock()
	if out.empty() {
		tx.l.stats.absorbed.Add(1)
	}
	out.flush(tx.l)
}

// acked handles an ACK matched to this INVITE transaction and reports
// whether it goes to the TU: yes for the first ACK of a 2xx and for any ACK
// reaching a terminated transaction, no for the ACK of a non-2xx final
// (hop-by-hop, it ends Timer G/H and starts Timer I) and for duplicates.
func (tx *ServerTx) acked() bool {
	tx.mu.Lock()
	defer tx.mu.Unlock()
	switch tx.state {
	case sCompleted:
		tx.state = sConfirmed
		tx.l.sched.stop(&tx.retrans)
		tx.l.sched.arm(&tx.end, lingerFor(tx.dst.Kind, tx.l.t.T4), tx, kindEnd)
		return false
	case sAccepted:
		if tx.gotAck {
			return false
		}
		tx.gotAck = true
		tx.l.sched.stop(&tx.retrans)
		// The 2xx is not re-sent any more: a late retransmission of the
		// INVITE is absorbed (RFC 6026 section 8.7). Letting it go frees it
		// for the rest of the Accepted state (64*T1).
		if tx.last != nil {
			tx.tag = sipmsg.ToTag(tx.last)
			tx.last = nil
		}
		tx.req = nil
		return true
	case sTerminated:
		return true
	default:
		return false
	}
}

// cancel answers a CANCEL of this INVITE and then marks it cancelled if
// it has no final response yet. answer gets the To tag the TU gave its
// responses so far, for the 200 to the CANCEL, and sends that 200 before
// the TU learns of the CANCEL: RFC 3261 9.2 has the 200 precede the
// INVITE's 487, and a TU woken first could send its 487 first.
func (tx *ServerTx) cancel(answer func(tag string)) {
	tx.mu.Lock()
	tag := tx.tag
	if tx.last != nil {
		tag = sipmsg.ToTag(tx.last)
	}
	tx.mu.Unlock()
	answer(tag)
	var notify func()
	tx.mu.Lock()
	if tx.invite && tx.state == sProceeding && !tx.cancelled.fired {
		tx.cancelled.fire()
		notify = tx.onCancel
	}
	tx.mu.Unlock()
	if notify != nil {
		notify()
	}
}

// Terminate ends the transaction at once without a response, for requests
// the TU drops silently. Idempotent.
func (tx *ServerTx) Terminate() {
	tx.mu.Lock()
	tx.terminate(nil)
	tx.mu.Unlock()
}

// terminate is called with tx.mu held.
func (tx *ServerTx) terminate(*outbox) {
	if tx.state == sTerminated {
		return
	}
	tx.state = sTerminated
	tx.req = nil
	tx.lastWire = nil
	tx.l.sched.stop(&tx.retrans, &tx.end)
	if tx.filed {
		tx.l.dropAckKey(tx.ack, tx)
	}
	tx.l.removeServer(tx)
	tx.done.fire()
}
