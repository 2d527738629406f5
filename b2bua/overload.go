package b2bua

import (
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultOverloadDelay is the standing queueing delay (Config.OverloadDelay)
// past which new calls are refused: far below T1 (500 ms), so that what
// is admitted is still answered before its client retransmits.
const DefaultOverloadDelay = 50 * time.Millisecond

// overloadInterval is how often the control looks at what it measured and
// adjusts the share of new calls it refuses: CoDel's interval, long
// enough that a burst does not count as a standing queue, short enough to
// act well before a client's first retransmission (T1, 500 ms).
const overloadInterval = 100 * time.Millisecond

// The share of new calls refused is a fraction of shedScale. It rises by
// shedUp per interval while the SBC is behind and falls by shedDown per
// interval once the queue has drained: a few hundred milliseconds to
// refuse most calls, a second and more to take them all again, so the
// state does not flap with every burst.
const (
	shedScale = 1024
	shedUp    = shedScale / 8
	shedDown  = shedScale / 32
	shedMax   = shedScale - shedScale/64 // a trickle still goes through, to measure by
)

// overloadHold is how long the overloaded state (the log line, the
// sbc_overloaded gauge) outlasts the last interval with a standing queue:
// an SBC at the edge of its capacity goes in and out of short queues, and
// is reported overloaded once, not once per queue. The share refused
// follows the measure all the same.
const overloadHold = 2 * time.Second

// overload is the overload control: it watches how long received messages
// waited before the SBC began handling them, from the time the kernel
// received them (transport.Packet.Received: the socket buffer, the UDP
// workers' queues and the CPU every goroutine competes for), and the
// datagrams the kernel dropped from full socket buffers. The smallest
// wait seen in an interval is the standing queue (a burst ends, a queue
// that stays does not: CoDel's measure); while it is above the threshold
// the share of new calls refused grows, and
// once it falls under half the threshold, the share shrinks back to none.
// It is driven by measured delay, not by a count of calls: the same delay
// means overload whatever the calls cost. Safe for concurrent use; observe
// allocates nothing. Kernel drops are reported with the state change but
// do not refuse calls by themselves: bursts overflow the socket buffer at
// rates the SBC carries (747 drops at 800 calls/s offered, every call
// completed, BENCHMARKS.md), and refusing then cost calls it could carry.
type overload struct {
	target time.Duration // standing delay that means overload; negative: off
	log    *slog.Logger
	drops  func() uint64 // the kernel's socket drops so far (nil: none known)

	minWait  atomic.Int64 // ns: the smallest wait seen in this interval; MaxInt64: none yet
	next     atomic.Int64 // unix ns: when this interval ends
	tick     sync.Mutex   // held by the one goroutine closing an interval
	dropped  uint64       // drops() at the last interval's close (under tick)
	lastOver int64        // unix ns: the last interval with a standing queue (under tick)
	behind   bool         // the last interval had a standing queue, none refused yet (under tick)
	on       atomic.Bool  // the overloaded state: refusing, or within overloadHold of it

	shed     atomic.Int32 // share of new calls refused, of shedScale
	standing atomic.Int64 // ns: the last interval's standing delay (metric)
	refused  atomic.Uint64
	waits    delayHistogram

	admitted [1 << 16]atomic.Uint64 // hashes of new INVITEs let through (admit)
}

// newOverload watches for a standing delay over target (0:
// DefaultOverloadDelay; negative: never overloaded, only measured).
// drops reports the kernel's receive drops so far; nil if unknown.
func newOverload(target time.Duration, drops func() uint64, log *slog.Logger) *overload {
	if target == 0 {
		target = DefaultOverloadDelay
	}
	o := &overload{target: target, log: log, drops: drops}
	o.minWait.Store(math.MaxInt64)
	return o
}

// observe takes one message's wait, from its arrival to now, and closes
// the interval when it is over.
func (o *overload) observe(arrived, now time.Time) {
	wait := int64(now.Sub(arrived))
	wait = max(wait, 0) // the wall clock stepped back
	o.waits.add(wait)
	for cur := o.minWait.Load(); wait < cur; cur = o.minWait.Load() {
		if o.minWait.CompareAndSwap(cur, wait) {
			break
		}
	}
	if ns := now.UnixNano(); ns >= o.next.Load() && o.tick.TryLock() {
		if next := o.next.Load(); ns >= next {
			o.next.Store(ns + int64(overloadInterval))
			// Intervals that passed without a message saw no queue.
			idle := int32(min((ns-next)/int64(overloadInterval), shedScale))
			o.adjust(ns, idle)
		}
		o.tick.Unlock()
	}
}

// adjust closes an interval, after idle more that passed without a
// message: it moves the share of calls refused by what the interval
// showed and logs a change of state once.
func (o *overload) adjust(ns int64, idle int32) {
	standing := o.minWait.Swap(math.MaxInt64)
	if standing == math.MaxInt64 {
		standing = 0
	}
	o.standing.Store(standing)
	var drops uint64
	if o.drops != nil {
		now := o.drops()
		drops, o.dropped = now-o.dropped, now
	}
	if o.target < 0 {
		return
	}
	shed := o.shed.Load()
	switch {
	case time.Duration(standing) > o.target && shed == 0 && !o.behind:
		// The first interval behind: a stall of the whole process (a
		// scheduler hiccup, a GC pause) looks the same; refuse from the
		// second one on.
		o.behind = true
	case time.Duration(standing) > o.target:
		shed = min(shed+shedUp, shedMax)
		o.lastOver = ns
	case time.Duration(standing) < o.target/2:
		o.behind = false
		shed = max(shed-shedDown*(1+idle), 0)
	default:
		shed = max(shed-shedDown*idle, 0)
	}
	o.shed.Store(shed)
	switch on := o.on.Load(); {
	case !on && shed > 0:
		o.on.Store(true)
		o.log.Warn("overload: refusing new calls with 503", "standing_delay", time.Duration(standing),
			"threshold", o.target, "socket_drops", drops)
	case on && shed == 0 && ns-o.lastOver >= int64(overloadHold):
		o.on.Store(false)
		o.log.Info("overload over: taking every new call again", "standing_delay", time.Duration(standing),
			"refused", o.refused.Load())
	}
}

// admit decides on a new INVITE by its Call-ID: false means refuse it.
// While the control sheds a share s, the INVITEs whose Call-ID hashes
// below s are refused, so that a retransmission gets the same answer as
// the first copy; an INVITE already let through (its retransmission, the
// call in progress) is always let through again. The record of those is a
// fixed table, a slot per hash: a retransmission whose slot was taken
// since by another call can be refused, which needs 65,536 newer calls in
// its few seconds of retransmissions.
func (o *overload) admit(callID []byte) bool {
	sum := hash64(callID) | 1 // never 0, the empty slot
	slot := &o.admitted[sum&(uint64(len(o.admitted))-1)]
	shed := o.shed.Load()
	if shed > 0 && slot.Load() != sum && int32(sum>>32)&(shedScale-1) < shed {
		o.refused.Add(1)
		return false
	}
	slot.Store(sum)
	return true
}

// hash64 is FNV-1a (inline: hash/fnv's interface would allocate) with
// MurmurHash3's finalizer, so that every bit depends on every byte:
// Call-IDs often differ only in their last characters.
func hash64(b []byte) uint64 {
	h := uint64(14695981039346656037)
	for _, c := range b {
		h ^= uint64(c)
		h *= 1099511628211
	}
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return h
}

// delayBounds are the upper bounds of the histogram's buckets of waits,
// in seconds; the last bucket is everything longer.
var delayBounds = [...]float64{0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2}

// delayHistogram counts waits by bucket with atomics (no lock, no
// allocation): a Prometheus histogram without the client's per-sample
// cost.
type delayHistogram struct {
	counts [len(delayBounds) + 1]atomic.Uint64
	sumNs  atomic.Uint64
}

func (d *delayHistogram) add(ns int64) {
	s := float64(ns) / 1e9
	i := 0
	for i < len(delayBounds) && s > delayBounds[i] {
		i++
	}
	d.counts[i].Add(1)
	d.sumNs.Add(uint64(ns))
}

// OverloadStats is what the overload control reports.
type OverloadStats struct {
	Overloaded    bool          // new calls are being refused
	Shed          float64       // the share of new calls refused now, 0 to 1
	StandingDelay time.Duration // the smallest wait of the last interval
	Refused       uint64        // new calls refused with 503 since start
	// WaitBounds and WaitCounts are the histogram of waits: WaitCounts[i]
	// waited at most WaitBounds[i] seconds and more than the bound before
	// it; the last count, more than every bound. WaitSum is their total.
	WaitBounds []float64
	WaitCounts []uint64
	WaitSum    time.Duration
}

// Overload returns the overload control's state.
func (s *Server) Overload() OverloadStats {
	o := s.load
	shed := o.shed.Load()
	st := OverloadStats{
		Overloaded:    o.on.Load(),
		Shed:          float64(shed) / shedScale,
		StandingDelay: time.Duration(o.standing.Load()),
		Refused:       o.refused.Load(),
		WaitBounds:    delayBounds[:],
		WaitCounts:    make([]uint64, len(o.waits.counts)),
		WaitSum:       time.Duration(o.waits.sumNs.Load()),
	}
	for i := range o.waits.counts {
		st.WaitCounts[i] = o.waits.counts[i].Load()
	}
	return st
}
