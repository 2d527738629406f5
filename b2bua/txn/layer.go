// Package txn is the SIP transaction layer of the SBC (RFC 3261 section 17,
// with the INVITE "Accepted" state of RFC 6026): it matches requests and
// responses to transactions, retransmits on unreliable transports, absorbs
// retransmissions, times transactions out, answers CANCEL and ACKs non-2xx
// final responses. It uses gosip's message model and its own timers; there
// is no goroutine per transaction: its timers are slots in one heap per
// layer, fired by one runtime timer (sched.go).
//
// Requests without an RFC 3261 branch (RFC 2543 peers, RFC 4475 3.1.1.7,
// 3.2.1, 3.4.1) are matched by the fallback of RFC 3261 17.2.3 (see
// serverBranch).
package txn

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ghettovoice/gosip/sip"

	"github.com/sbc-project/sbc/b2bua/transport"
)

// Errors returned by the layer and its transactions.
var (
	// ErrClosed is returned once Layer.Close has been called.
	ErrClosed = errors.New("transaction layer closed")
	// ErrTerminated is returned when acting on a transaction that has ended.
	ErrTerminated = errors.New("transaction terminated")
	// ErrFinalSent is returned by ServerTx.Respond after a final response
	// that cannot be followed by another (any but a 2xx to INVITE).
	ErrFinalSent = errors.New("final response already sent")
)

// Sender writes one message to the network, as msg.String() renders it. It
// is called from the caller of Receive, Request, Respond and Cancel, and from
// timer goroutines, concurrently, never with a lock of the layer held.
type Sender func(msg sip.Message, dst transport.Target) error

// RenderedSender writes a message already rendered: data is msg as it
// goes on the wire; msg is nil for a retransmission of bytes kept
// (SetRenderedSender). The same calling rules as Sender.
type RenderedSender func(data []byte, msg sip.Message, dst transport.Target) error

// Handler is the transaction user (the B2BUA core).
type Handler interface {
	// OnRequest gets every new request: a new server transaction for
	// anything but ACK and CANCEL (the layer answers CANCEL itself and
	// signals it on ServerTx.Cancelled); for an ACK that matched no
	// transaction or that acknowledges a 2xx (a new "request" for the
	// dialog layer) tx is nil. It runs on the goroutine that called
	// Receive, so it should hand long work off; retransmissions of the
	// request are absorbed meanwhile.
	OnRequest(req sip.Request, tx *ServerTx)
}

// Layer holds the live transactions. Its methods are safe for concurrent use.
type Layer struct {
	// OnStray, if set, gets the responses that match no client transaction,
	// such as 2xx retransmissions after the INVITE transaction ended, for the
	// TU to ACK again. Set it before the first Receive. Default: dropped
	// (and counted either way).
	OnStray func(res sip.Response, src transport.Target)

	send      Sender
	sendBytes RenderedSender // SetRenderedSender; nil: finals are kept as messages
	h         Handler
	t         Timers
	log       *slog.Logger
	stats     counters
	sched     scheduler   // the transactions' timers
	down      atomic.Bool // Close was called; closed below is the authoritative copy

	mu      sync.Mutex
	closed  bool
	servers map[serverKey]*ServerTx
	clients map[clientKey]*ClientTx
	acks    map[ackKey]*ServerTx                 // INVITE transactions in the Accepted state, by their 2xx
	peaks   struct{ servers, clients, acks int } // the maps' sizes since last made (shrunk)
}

// New returns a layer that writes with send and hands requests to h. A nil
// log discards.
func New(send Sender, h Handler, t Timers, log *slog.Logger) *Layer {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	l := &Layer{
		send:    send,
		h:       h,
		t:       t.withDefaults(),
		log:     log,
		servers: make(map[serverKey]*ServerTx),
		clients: make(map[clientKey]*ClientTx),
		acks:    make(map[ackKey]*ServerTx),
	}
	l.sched = scheduler{l: l, clock: runtimeClock{epoch: time.Now()}, slack: maxSlack}
	return l
}

// SetRenderedSender has the layer keep the final response of a
// non-INVITE server transaction as its rendered bytes, sent with send,
// for the 64*T1 it lingers on UDP (Timer J) re-sending it on the
// request's retransmissions: the response message (some 2 kB of objects,
// and the request's datagram its headers point into) is let go. Call it
// before the first Receive.
func (l *Layer) SetRenderedSender(send RenderedSender) { l.sendBytes = send }

// Receive feeds a parsed message from the transport; src is where it came
// from, which with the top Via says where its responses go (responseTarget:
// RFC 3261 18.2.2, or the source port on a symmetric UDP listener). It
// stamps received/rport into the top Via of requests (see stampVia), then
// matches the message to a transaction or starts one. Messages without a
// Via, CSeq or Call-ID are dropped and counted. After Close it drops
// everything.
func (l *Layer) Receive(msg sip.Message, src transport.Target) {
	if l.down.Load() {
		return
	}
	switch m := msg.(type) {
	case sip.Request:
		l.stats.requests.Add(1)
		l.receiveRequest(m, src)
	case sip.Response:
		l.stats.responses.Add(1)
		l.receiveResponse(m, src)
	default:
		l.stats.malformed.Add(1)
	}
}

// wellFormed reports whether msg has what matching needs.
func wellFormed(msg sip.Message) (*sip.ViaHop, *sip.CSeq, bool) {
	hop, ok1 := msg.ViaHop()
	cseq, ok2 := msg.CSeq()
	callID, ok3 := msg.CallID()
	if !ok1 || !ok2 || !ok3 || hop == nil || cseq == nil || callID == nil {
		return nil, nil, false
	}
	return hop, cseq, true
}

func (l *Layer) receiveRequest(req sip.Request, src transport.Target) {
	hop, _, ok := wellFormed(req)
	if !ok || req.Recipient() == nil {
		l.stats.malformed.Add(1)
		return
	}
	stampVia(hop, src)
	dst := responseTarget(hop, src)
	if !rfc3261Branch(branchOf(hop)) {
		l.stats.legacy.Add(1)
	}
	switch req.Method() {
	case sip.ACK:
		l.receiveAck(req, hop, src)
	case sip.CANCEL:
		l.receiveCancel(req, hop, src, dst)
	default:
		tx, isNew := l.serverTx(req, hop, src, dst)
		switch {
		case tx == nil: // closed
		case isNew:
			tx.start()
			l.h.OnRequest(req, tx)
		default:
			tx.retransmitted()
		}
	}
}

// serverTx finds the transaction of req or starts one; nil once closed.
func (l *Layer) serverTx(req sip.Request, hop *sip.ViaHop, src, dst transport.Target) (tx *ServerTx, isNew bool) {
	key := newServerKey(req, hop, req.Method(), src)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, false
	}
	if tx := l.servers[key]; tx != nil {
		return tx, false
	}
	key = keptKey(key)
	tx = newServerTx(l, key, req, src, dst)
	l.servers[key] = tx
	l.peaks.servers = max(l.peaks.servers, len(l.servers))
	return tx, true
}

// receiveAck absorbs the ACK of a non-2xx final response and hands every
// other ACK to the TU: those of a 2xx (matched by Call-ID, CSeq and To tag
// while the INVITE transaction is Accepted, or by nothing once it ended).
func (l *Layer) receiveAck(ack sip.Request, hop *sip.ViaHop, src transport.Target) {
	l.mu.Lock()
	tx := l.servers[newServerKey(ack, hop, sip.ACK, src)]
	if tx == nil {
		if k, ok := newAckKey(ack); ok {
			tx = l.acks[k]
		}
	}
	closed := l.closed
	l.mu.Unlock()
	if closed {
		return
	}
	if tx != nil && !tx.acked() {
		l.stats.absorbed.Add(1)
		return
	}
	l.h.OnRequest(ack, nil)
}

// receiveCancel answers a CANCEL (RFC 3261 9.2): 200 when it matches a
// server transaction, 481 when not. The INVITE's TU learns of it through
// ServerTx.Cancelled. The CANCEL's own transaction absorbs its
// retransmissions.
func (l *Layer) receiveCancel(req sip.Request, hop *sip.ViaHop, src, dst transport.Target) {
	tx, isNew := l.serverTx(req, hop, src, dst)
	if tx == nil {
		return
	}
	if !isNew {
		tx.retransmitted()
		return
	}
	l.mu.Lock()
	target := l.servers[newServerKey(req, hop, sip.INVITE, src)]
	l.mu.Unlock()
	answer := func(res sip.Response, tag string) {
		if tag == "" {
			tag = newTag()
		}
		if err := tx.Respond(withToTag(res, tag)); err != nil {
			l.log.Debug("answer CANCEL", "err", err)
		}
	}
	if target == nil {
		answer(NewResponse(req, 481, "Call/Transaction Does Not Exist"), "")
		return
	}
	// The 200 goes out before the INVITE's TU hears of the CANCEL (cancel).
	target.cancel(func(tag string) { answer(NewResponse(req, 200, "OK"), tag) })
}

func (l *Layer) receiveResponse(res sip.Response, src transport.Target) {
	hop, cseq, ok := wellFormed(res)
	if !ok {
		l.stats.malformed.Add(1)
		return
	}
	l.mu.Lock()
	tx := l.clients[clientKey{branch: branchOf(hop), method: cseq.MethodName}]
	closed := l.closed
	l.mu.Unlock()
	if closed {
		return
	}
	if tx == nil || !tx.receive(res) {
		l.stats.strays.Add(1)
		if l.OnStray != nil {
			l.OnStray(res, src)
		}
	}
}

// Request starts a client transaction: it sends req to dst as is (the
// caller built its top Via with a NewBranch branch), retransmits it on
// unreliable transports (Timers A/E), times it out (Timers B/F: a synthetic
// 408 on Responses) and delivers its responses. ACK is not a transaction
// (the ACK of a 2xx goes straight to the transport). The returned error is
// set when the request is malformed, its branch is taken, the layer is
// closed or the first send fails; then no transaction exists.
func (l *Layer) Request(req sip.Request, dst transport.Target) (*ClientTx, error) {
	return l.request(req, dst, false, nil)
}

// RequestWith is Request with the transaction's events handed to h (see
// ClientHandler) rather than queued on Responses: nothing waits for the
// transaction's lifetime. When it returns an error h hears nothing.
func (l *Layer) RequestWith(req sip.Request, dst transport.Target, h ClientHandler) (*ClientTx, error) {
	if h == nil {
		return nil, fmt.Errorf("start %s transaction: no handler", req.Method())
	}
	return l.request(req, dst, false, h)
}

func (l *Layer) request(req sip.Request, dst transport.Target, internal bool, h ClientHandler) (*ClientTx, error) {
	hop, cseq, ok := wellFormed(req)
	if !ok || req.Recipient() == nil {
		return nil, fmt.Errorf("start %s transaction: request needs Via, CSeq, Call-ID and Request-URI", req.Method())
	}
	if req.IsAck() {
		return nil, errors.New("start ACK transaction: ACK is not a transaction, send it directly")
	}
	key := clientKey{branch: branchOf(hop), method: cseq.MethodName}
	if !rfc3261Branch(key.branch) {
		return nil, fmt.Errorf("start %s transaction: branch %q lacks the %s cookie", req.Method(), key.branch, magicCookie)
	}
	tx := newClientTx(l, key, req, dst, internal, h)
	l.mu.Lock()
	switch {
	case l.closed:
		l.mu.Unlock()
		return nil, ErrClosed
	case l.clients[key] != nil:
		l.mu.Unlock()
		return nil, fmt.Errorf("start %s transaction: branch %s already in use", req.Method(), key.branch)
	}
	l.clients[key] = tx
	l.peaks.clients = max(l.peaks.clients, len(l.clients))
	l.mu.Unlock()

	// Timers first: on loopback the response can beat the return of send.
	tx.start()
	if err := l.write(req, dst); err != nil {
		tx.abort(true)
		return nil, fmt.Errorf("send %s to %s: %w", req.Method(), dst, err)
	}
	return tx, nil
}

// write sends one message, counting and logging failures.
func (l *Layer) write(msg sip.Message, dst transport.Target) error {
	err := l.send(msg, dst)
	if err != nil {
		l.stats.sendErrors.Add(1)
		l.log.Debug("send SIP message", "dst", dst.String(), "err", err)
	}
	return err
}

// writeBytes is write for a rendered message (sendBytes).
func (l *Layer) writeBytes(data []byte, msg sip.Message, dst transport.Target) error {
	err := l.sendBytes(data, msg, dst)
	if err != nil {
		l.stats.sendErrors.Add(1)
		l.log.Debug("send SIP message", "dst", dst.String(), "err", err)
	}
	return err
}

// Count returns the number of live transactions, server and client.
func (l *Layer) Count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.servers) + len(l.clients)
}

// Close terminates every transaction (their Done channels close, client
// Responses channels close without a final response) and stops their
// timers. Later calls do nothing; later messages are dropped.
func (l *Layer) Close() {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return
	}
	l.closed = true
	l.down.Store(true)
	servers := make([]*ServerTx, 0, len(l.servers))
	for _, tx := range l.servers {
		servers = append(servers, tx)
	}
	clients := make([]*ClientTx, 0, len(l.clients))
	for _, tx := range l.clients {
		clients = append(clients, tx)
	}
	l.mu.Unlock()
	for _, tx := range servers {
		tx.Terminate()
	}
	for _, tx := range clients {
		tx.abort(false)
	}
	l.sched.close()
}

func (l *Layer) removeServer(tx *ServerTx) {
	l.mu.Lock()
	if l.servers[tx.key] == tx {
		delete(l.servers, tx.key)
		l.servers = shrunk(l.servers, &l.peaks.servers)
	}
	l.mu.Unlock()
}

func (l *Layer) removeClient(tx *ClientTx) {
	l.mu.Lock()
	if l.clients[tx.key] == tx {
		delete(l.clients, tx.key)
		l.clients = shrunk(l.clients, &l.peaks.clients)
	}
	l.mu.Unlock()
}

// setAckKey files an Accepted INVITE transaction under the ACK of its 2xx.
func (l *Layer) setAckKey(k ackKey, tx *ServerTx) {
	l.mu.Lock()
	l.acks[k] = tx
	l.peaks.acks = max(l.peaks.acks, len(l.acks))
	l.mu.Unlock()
}

func (l *Layer) dropAckKey(k ackKey, tx *ServerTx) {
	l.mu.Lock()
	if l.acks[k] == tx {
		delete(l.acks, k)
		l.acks = shrunk(l.acks, &l.peaks.acks)
	}
	l.mu.Unlock()
}

// shrinkFrom is the size below which a transaction map is never rebuilt:
// a few hundred kB at most stay with it.
const shrinkFrom = 1024

// shrunk returns m, or a copy of it once it has fallen to an eighth of
// peak, the largest size it held since it was made (peak then starts
// again from its size). Go maps keep the slots of their largest size for
// good, so a burst of calls (a flash crowd, a load test) left the tables
// the size of the burst: 0.28 kB per call of the burst, held for the
// process's life. A copy follows at least 7/8 of peak deletions, so its
// cost per deletion is constant. l.mu held.
func shrunk[K comparable, V any](m map[K]V, peak *int) map[K]V {
	if *peak < shrinkFrom || len(m)*8 > *peak {
		return m
	}
	fresh := make(map[K]V, len(m))
	maps.Copy(fresh, m)
	*peak = len(m)
	return fresh
}
