package txn

import (
	"time"

	"github.com/ghettovoice/gosip/sip"

	"github.com/sbc-project/sbc/b2bua/transport"
)

// The RFC 3261 timer defaults (section 17, table 4) and the 100 Trying delay
// (section 17.2.1).
const (
	DefaultT1     = 500 * time.Millisecond
	DefaultT2     = 4 * time.Second
	DefaultT4     = 5 * time.Second
	DefaultTrying = 200 * time.Millisecond
)

// Timers are the transaction timer bases. The zero value of each field means
// its default: T1 500ms (round-trip estimate), T2 4s (retransmission cap), T4
// 5s (how long the network keeps a message). Every timeout of the layer
// derives from them: B, F, H, L, M and, on unreliable transports, J and D are
// 64*T1; I and K are T4 on unreliable transports and zero on reliable ones.
type Timers struct {
	T1, T2, T4 time.Duration
	// Trying is how long an INVITE may wait for a response from the TU
	// before the layer sends 100 Trying itself. Zero means 200ms; negative
	// means never.
	Trying time.Duration
	// TU bounds how long the TU may leave a non-INVITE request without a
	// final response, and TUInvite an INVITE: past it the layer answers
	// 500 itself and counts a TU timeout, so that no server transaction
	// lives forever whatever the TU forgets. Zero means 64*T1 for TU and
	// DefaultTUInvite for TUInvite; the TU must answer INVITEs sooner (the
	// B2BUA's ring timeout).
	TU, TUInvite time.Duration
}

// DefaultTUInvite is the default Timers.TUInvite: longer than any ring
// time an operator configures in practice (RFC 3261 Timer C is 3 min).
const DefaultTUInvite = 10 * time.Minute

func (t Timers) withDefaults() Timers {
	if t.T1 <= 0 {
		t.T1 = DefaultT1
	}
	if t.T2 <= 0 {
		t.T2 = DefaultT2
	}
	if t.T4 <= 0 {
		t.T4 = DefaultT4
	}
	if t.Trying == 0 {
		t.Trying = DefaultTrying
	}
	if t.TU <= 0 {
		t.TU = t.long()
	}
	if t.TUInvite <= 0 {
		t.TUInvite = DefaultTUInvite
	}
	return t
}

// long is 64*T1: Timers B, F, H, J, L, M and D.
func (t Timers) long() time.Duration { return 64 * t.T1 }

// lingerFor is how long a completed transaction stays to absorb
// retransmissions: d on unreliable transports, nothing on reliable ones
// (Timers D, I, J, K).
func lingerFor(k transport.Kind, d time.Duration) time.Duration {
	if k.Reliable() {
		return 0
	}
	return d
}

// outbox collects what a state change must do once the transaction's mutex
// is released: no I/O and no calls into the TU happen under a lock. It
// holds two messages without allocating (a state change sends at most
// one or two), and the client transaction whose handler must hear what
// was queued for it as a field, not a method value: on the stack of
// Respond and of a response's receipt, it costs no allocation.
type outbox struct {
	n     int        // messages in first
	first [2]pending // a slice of it would make the outbox escape
	more  []pending
	hand  *ClientTx // its handOver runs after the sends, before calls
	calls []func()
}

type pending struct {
	msg     sip.Message
	data    []byte // msg rendered (Layer.sendBytes), or nil
	dst     transport.Target
	retrans bool
	// ifLast, when set, sends msg only if it is still that transaction's
	// last response, under its lock: the layer's own 100 Trying must not
	// go out after a response the TU sent meanwhile (seen at 1,500
	// calls/s: a 100 reaching the caller after the 200).
	ifLast *ServerTx
}

func (o *outbox) send(msg sip.Message, dst transport.Target, retrans bool) {
	o.add(pending{msg: msg, dst: dst, retrans: retrans})
}

// sendBytes queues data, msg rendered (msg nil: a retransmission).
func (o *outbox) sendBytes(data []byte, msg sip.Message, dst transport.Target, retrans bool) {
	o.add(pending{msg: msg, data: data, dst: dst, retrans: retrans})
}

func (o *outbox) add(p pending) {
	if o.n < len(o.first) {
		o.first[o.n] = p
		o.n++
		return
	}
	o.more = append(o.more, p)
}

// empty reports whether nothing is to be sent.
func (o *outbox) empty() bool { return o.n == 0 }

// mayBlock reports whether flushing could wait on a peer: a send on a
// reliable transport (a stream write waits up to its write timeout).
func (o *outbox) mayBlock() bool {
	for _, p := range o.first[:o.n] {
		if p.dst.Kind.Reliable() {
			return true
		}
	}
	for _, p := range o.more {
		if p.dst.Kind.Reliable() {
			return true
		}
	}
	return false
}

func (p pending) write(l *Layer) error {
	if tx := p.ifLast; tx != nil {
		tx.mu.Lock()
		defer tx.mu.Unlock()
		if tx.last == nil || sip.Message(tx.last) != p.msg {
			return nil // the TU answered since: its response goes instead
		}
	}
	if p.retrans {
		l.stats.retransmissions.Add(1)
	}
	if p.data != nil {
		return l.writeBytes(p.data, p.msg, p.dst)
	}
	return l.write(p.msg, p.dst)
}

// handOver has tx's ClientHandler take what is queued for it once the
// sends are out.
func (o *outbox) handOver(tx *ClientTx) { o.hand = tx }

func (o *outbox) then(f func()) { o.calls = append(o.calls, f) }

// flush sends the messages in order, then hands a client transaction's
// handler what is queued for it, then runs the calls. It returns the
// first send error; the rest are counted and logged by l.write.
func (o *outbox) flush(l *Layer) error {
	var first error
	for _, p := range o.first[:o.n] {
		if err := p.write(l); err != nil && first == nil {
			first = err
		}
	}
	for _, p := range o.more {
		if err := p.write(l); err != nil && first == nil {
			first = err
		}
	}
	if o.hand != nil {
		o.hand.handOver()
	}
	for _, f := range o.calls {
		f()
	}
	return first
}
