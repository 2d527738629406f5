package b2bua

import (
	"github.com/ghettovoice/gosip/sip"

	"github.com/sbc-project/sbc/b2bua/transport"
	"github.com/sbc-project/sbc/b2bua/txn"
)

// What a call needs of the transaction layer, as small interfaces: the
// server gives calls the real layer (txnLayer); the call state machine's
// unit tests give them a fake one.

// serverTx is a request a call answers; *txn.ServerTx implements it.
type serverTx interface {
	Request() sip.Request
	Source() transport.Target
	Respond(res sip.Response) error
	// Notify has cancelled and ackTimeout called when the request is
	// cancelled and when the ACK of its 2xx never came (txn.ServerTx).
	Notify(cancelled, ackTimeout func())
}

// clientTx is a request a call sent; *txn.ClientTx implements it.
type clientTx interface {
	Cancel() error
}

// transactions start a call's client transactions and send what is no
// transaction (the ACK of a 2xx).
type transactions interface {
	// Request starts a client transaction whose responses, then its end,
	// are posted to c as evResponse and evTxDone events, in order.
	Request(req sip.Request, dst transport.Target, c *Call) (clientTx, error)
	Send(msg sip.Message, dst transport.Target) error
	// SendRendered sends data, a message rendered by the call (the ACK of
	// a 2xx, which its leg keeps as these bytes to send again on each
	// retransmitted 2xx); msg is data parsed, for the tap, or nil.
	SendRendered(data []byte, msg sip.Message, dst transport.Target) error
}

var (
	_ serverTx     = (*txn.ServerTx)(nil)
	_ clientTx     = (*txn.ClientTx)(nil)
	_ transactions = txnLayer{}
)

// txnLayer is the transaction layer and the wire, for calls.
type txnLayer struct {
	layer    *txn.Layer
	send     func(msg sip.Message, dst transport.Target) error
	rendered func(data []byte, msg sip.Message, dst transport.Target) error
}

func (t txnLayer) Request(req sip.Request, dst transport.Target, c *Call) (clientTx, error) {
	tx, err := t.layer.RequestWith(req, dst, txEvents{c.ref()})
	if err != nil {
		return nil, err // not a typed nil in an interface
	}
	return tx, nil
}

func (t txnLayer) Send(msg sip.Message, dst transport.Target) error { return t.send(msg, dst) }

func (t txnLayer) SendRendered(data []byte, msg sip.Message, dst transport.Target) error {
	return t.rendered(data, msg, dst)
}
