package transport

import "sync/atomic"

// Stats is a snapshot of the layer's counters. Counters only grow; Open is
// the current number of open stream connections.
type Stats struct {
	Received   uint64 // SIP messages handed to the Handler
	Sent       uint64 // messages written by Send
	SendErrors uint64 // Send calls that failed
	Keepalives uint64 // CRLF keepalives received (not SIP messages)
	Dropped    Drops
	Open       map[Kind]int // open stream connections by transport (TCP, TLS, WS, WSS)
}

// Drops counts messages dropped and connections closed, by reason.
type Drops struct {
	Oversize    uint64 // message or Content-Length above MaxMessageSize, or WS frame (closed with 1009)
	LineTooLong uint64 // stream header line above MaxLineLength
	BadFraming  uint64 // bad or conflicting Content-Length
	Handshake   uint64 // TLS handshake or WebSocket upgrade failed, refused or timed out
	ConnLimit   uint64 // connection refused by MaxConnsPerIP
	IdleClosed  uint64 // stream connection closed after IdleTimeout
	Origin      uint64 // WebSocket upgrade refused by CheckOrigin (403; also counted in Handshake)
	QueueFull   uint64 // UDP datagram dropped: its worker's queue was full
	// SocketOverflow are UDP datagrams the kernel dropped because a
	// listener's socket buffer was full (SO_RXQ_OVFL; Linux only), as
	// reported with the next datagram read.
	SocketOverflow uint64
}

// counters are the live atomic counters behind Stats.
type counters struct {
	received, sent, sendErrors, keepalives atomic.Uint64
	oversize, lineTooLong, badFraming      atomic.Uint64
	handshake, connLimit, idleClosed       atomic.Uint64
	origin, queueFull, socketOverflow      atomic.Uint64
	open                                   [WSS + 1]atomic.Int64 // indexed by Kind
}

// Stats returns a snapshot of the counters. Each counter is read atomically;
// the snapshot as a whole is not.
func (l *Layer) Stats() Stats {
	c := &l.stats
	s := Stats{
		Received:   c.received.Load(),
		Sent:       c.sent.Load(),
		SendErrors: c.sendErrors.Load(),
		Keepalives: c.keepalives.Load(),
		Dropped: Drops{
			Oversize:       c.oversize.Load(),
			LineTooLong:    c.lineTooLong.Load(),
			BadFraming:     c.badFraming.Load(),
			Handshake:      c.handshake.Load(),
			ConnLimit:      c.connLimit.Load(),
			IdleClosed:     c.idleClosed.Load(),
			Origin:         c.origin.Load(),
			QueueFull:      c.queueFull.Load(),
			SocketOverflow: c.socketOverflow.Load(),
		},
		Open: make(map[Kind]int, 4),
	}
	for _, k := range []Kind{TCP, TLS, WS, WSS} {
		s.Open[k] = int(c.open[k].Load())
	}
	return s
}

// SocketOverflow is Stats().Dropped.SocketOverflow, without the snapshot's
// allocation: the overload control reads it often.
func (l *Layer) SocketOverflow() uint64 { return l.stats.socketOverflow.Load() }
