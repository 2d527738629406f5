package b2bua

import (
	"github.com/ghettovoice/gosip/sip"

	"github.com/sbc-project/sbc/b2bua/txn"
)

// A request relayed from one leg to the other (re-INVITE, UPDATE, INFO,
// MESSAGE, NOTIFY) keeps its server transaction open until the other leg
// answers. When the call ends first, RFC 3261 section 15.1.2 has the UAS
// answer every pending request of the dialog, 487 recommended: so does the
// call, at once, rather than leave the transaction (and the peer waiting
// on it) to the other leg, which may never answer now.

// inflightReq is a relayed request waiting for the other leg's answer.
type inflightReq struct {
	from *leg
	req  sip.Request
}

// hold notes that stx waits for the other leg's answer to req.
func (c *Call) hold(from *leg, req sip.Request, stx *txn.ServerTx) {
	if stx != nil {
		c.inflight[stx] = inflightReq{from: from, req: req}
	}
}

// release takes stx off the waiting list and reports whether it was on it:
// false means it was answered already (the call ended under it) and the
// other leg's late answer goes nowhere.
func (c *Call) release(stx *txn.ServerTx) bool {
	if _, ok := c.inflight[stx]; !ok {
		return false
	}
	delete(c.inflight, stx)
	return true
}

// terminateInflight answers every relayed request still waiting 487.
func (c *Call) terminateInflight() {
	for stx, r := range c.inflight {
		c.reply(r.from, stx, r.req, 487, "Request Terminated")
		delete(c.inflight, stx)
	}
}
