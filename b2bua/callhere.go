package b2bua

import (
	"github.com/ghettovoice/gosip/sip"

	"github.com/sbc-project/sbc/b2bua/outcome"
	"github.com/sbc-project/sbc/b2bua/transport"
	"github.com/sbc-project/sbc/b2bua/txn"
)

// postHere hands ev to the call as post does, but when no goroutine runs
// the call the calling goroutine runs it itself (loopHere) instead of
// starting one. It is for what the SIP side received (a request in a
// dialog, a response): the UDP worker or connection reader that parsed
// the message handles it. Each goroutine started for an event woke an
// idle thread of the runtime, which at 800 calls/s made most of the
// eleven context switches a call (BENCHMARKS.md, issue 15 tenth step).
// The call's order is kept: running is taken under qmu as post takes
// it, so one goroutine at a time runs the call, and a later post only
// queues. It never blocks for long: an event whose handling may wait
// (quick) goes to a goroutine of its own, with the rest of the queue.
func (c *Call) postHere(ev event) bool {
	ok, idle := c.enqueue(ev)
	if idle {
		c.loopHere()
	}
	return ok
}

// loopHere is loop on a goroutine that must get back to its own work
// soon: it handles the events that are quick, and hands the call to a
// goroutine of its own at the first that is not, and to end it (finish
// waits for the record's fsync, stops media).
func (c *Call) loopHere() {
	for !c.over() {
		ev, ok := c.next()
		if !ok {
			return // idle: the next post runs the call again
		}
		if !c.quick(&ev) {
			go c.loopFrom(ev)
			return
		}
		if !c.step(ev) {
			return
		}
	}
	go c.end()
}

// loopFrom handles ev, taken from the queue already, then loops.
func (c *Call) loopFrom(ev event) {
	if c.step(ev) {
		c.loop()
	}
}

// quick reports whether handling ev is sure not to wait: on the network
// (a policy stage, DNS, the bindings peers hold: REFER and its NOTIFYs,
// a transfer under way, a connection in its flow grace), on another call
// (Replaces), on the disk (a transfer's record) or on a stream
// connection's dial or write (a leg or a destination left to try that is
// not UDP). Call goroutine only.
func (c *Call) quick(ev *event) bool {
	if c.grace != nil || c.xfer.cur != nil || c.forks != nil || !c.allUDP() {
		return false
	}
	switch ev.kind {
	case evResponse, evStray:
		return true
	case evRequest:
		m := ev.req.Method()
		return m != sip.REFER && m != sip.NOTIFY
	}
	return false
}

// allUDP reports whether every leg of the call, and every destination it
// may still try, is reached over UDP: a send there never waits.
func (c *Call) allUDP() bool {
	for _, l := range [...]*leg{c.a, c.b} {
		if l != nil && l.dst.Kind != transport.UDP {
			return false
		}
	}
	if c.try != nil && c.try.leg != nil && c.try.leg.dst.Kind != transport.UDP {
		return false
	}
	if c.setup != nil {
		for i := range c.setup.dests {
			if c.setup.dests[i].to.Kind != transport.UDP {
				return false
			}
		}
	}
	return true
}

// txEvents hands a client transaction's events to its call: the
// transaction layer calls it in order, from the goroutine that received
// the response or fired the timer.
type txEvents struct{ r *callRef }

var _ txn.ClientHandler = txEvents{}

func (e txEvents) Response(tx *txn.ClientTx, res sip.Response) {
	if c := e.r.p.Load(); c != nil {
		c.postHere(event{kind: evResponse, client: tx, res: res})
	}
}

func (e txEvents) Ended(tx *txn.ClientTx) {
	if c := e.r.p.Load(); c != nil {
		c.post(event{kind: evTxDone, client: tx, req: tx.Request()})
	}
}

// watch forwards the A INVITE's CANCEL and lost-ACK signals to the call.
func (c *Call) watch(stx serverTx) {
	r := c.ref()
	stx.Notify(func() {
		if c := r.p.Load(); c != nil {
			c.halt(&stopped{cause: outcome.CauseCallerCancel, side: outcome.SideA})
			c.post(event{kind: evCancel})
		}
	}, func() {
		if c := r.p.Load(); c != nil {
			c.post(event{kind: evAckLost})
		}
	})
}
