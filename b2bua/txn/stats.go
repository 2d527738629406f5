package txn

import "sync/atomic"

// Stats are the layer's counters since New.
type Stats struct {
	Requests        uint64 // requests received
	Responses       uint64 // responses received
	Retransmissions uint64 // requests and responses re-sent (timers and retransmitted requests)
	Absorbed        uint64 // retransmissions and hop-by-hop ACKs swallowed by a transaction
	Timeouts        uint64 // Timer B/F/H expiries, CANCELed INVITEs never answered, 2xx never ACKed
	Strays          uint64 // responses that matched no client transaction
	Malformed       uint64 // messages dropped for lacking Via, CSeq, Call-ID or Request-URI
	Legacy          uint64 // requests without an RFC 3261 branch (RFC 2543), matched by the fallback of RFC 3261 17.2.3
	SendErrors      uint64 // Sender failures
	Dropped         uint64 // responses not delivered because the TU let Responses fill up
	TUTimeouts      uint64 // server transactions the TU never answered, answered 500 by the layer
}

type counters struct {
	requests, responses, retransmissions, absorbed, timeouts atomic.Uint64
	strays, malformed, legacy, sendErrors, dropped           atomic.Uint64
	tuTimeouts                                               atomic.Uint64
}

// Stats returns a snapshot of the counters.
func (l *Layer) Stats() Stats {
	c := &l.stats
	return Stats{
		Requests:        c.requests.Load(),
		Responses:       c.responses.Load(),
		Retransmissions: c.retransmissions.Load(),
		Absorbed:        c.absorbed.Load(),
		Timeouts:        c.timeouts.Load(),
		Strays:          c.strays.Load(),
		Malformed:       c.malformed.Load(),
		Legacy:          c.legacy.Load(),
		SendErrors:      c.sendErrors.Load(),
		Dropped:         c.dropped.Load(),
		TUTimeouts:      c.tuTimeouts.Load(),
	}
}
