package b2bua

import (
	"strconv"
	"sync/atomic"
	"time"

	"github.com/sbc-project/sbc/b2bua/sipmsg"
)

// maxPendingRecords is how many ended calls may wait for their record to
// become durable (the CDR spool's fsync) before new calls are refused.
//
// A call gives its media ports back as soon as its media has stopped and
// its counters are in the record, before the record's fsync: the wait
// for the fsync was a quarter of a pair's hold at the median and up to
// 0.5 s at the 99th percentile on a loaded machine (BENCHMARKS.md, "Issue
// 15, seventh step"), time in which the bench's pool (4,000 ports, two
// pairs a call) could not reuse the pair at 1,200-1,400 calls/s. The ports
// used to be what refused new calls when the disk stalled; this bound
// does it now, for the records themselves: each waiting call holds its
// goroutine, its record and its admission counts until the fsync, and
// past this many new INVITEs get 503 with Retry-After. 2,000 is well
// above what a working disk leaves waiting (at 2,000 calls/s and a
// 0.5 s fsync, about 1,000) and bounds the memory a dead one costs.
const maxPendingRecords = 2000

// pendingRecords counts the calls waiting for their record's fsync.
type pendingRecords struct {
	n       atomic.Int64
	refused atomic.Bool // the refusal was logged since the count last fell below the bound
}

func (p *pendingRecords) enter() { p.n.Add(1) }
func (p *pendingRecords) leave() { p.n.Add(-1) }

// refuseUnrecorded answers a new INVITE 503 with Retry-After while too
// many ended calls wait for their records (maxPendingRecords); it logs the
// first refusal of each such period. True when it refused.
func (s *Server) refuseUnrecorded(tx serverTx) bool {
	if s.pending.n.Load() < s.maxPending {
		if s.pending.refused.Load() {
			s.pending.refused.Store(false)
		}
		return false
	}
	if !s.pending.refused.Swap(true) {
		s.log.Warn("call records are not becoming durable: refusing new calls",
			"waiting", s.pending.n.Load(), "bound", s.maxPending)
	}
	retry := max(int(s.cfg.RetryAfter/time.Second), 1)
	s.respond(tx, 503, "Service Unavailable", sipmsg.Generic("Retry-After", strconv.Itoa(retry)),
		sipmsg.Generic("Warning", `399 sbc "Call records pending"`))
	return true
}
