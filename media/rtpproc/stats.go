package rtpproc

import (
	"math"
	"sync/atomic"
	"time"
)

// seqMod is RFC 3550 A.1's RTP_SEQ_MOD.
const seqMod = 1 << 16

// jitterGain is RFC 3550 A.8's 1/16: how much of each new transit-time
// difference the jitter estimate takes in.
const jitterGain = 1.0 / 16

// RecvStats counts one received RTP stream as RFC 3550 appendix A does:
// extended sequence numbers (A.1), loss as expected minus received (A.3)
// and interarrival jitter (A.8). When the source changes (a new SSRC, or a
// sequence jump confirmed by two sequential packets) counting starts
// afresh, but totals keep what earlier sources lost, and the jitter
// estimate carries over. The zero value is ready.
//
// Update is called by one goroutine, the stream's reader; Snapshot and
// SetRTT may be called from any goroutine.
type RecvStats struct {
	// Published for Snapshot.
	packets, bytes atomic.Uint64
	lost           atomic.Int64  // never negative
	expected       atomic.Uint64 // packets the sequence numbers account for
	jitterBits     atomic.Uint64 // float64 bits of the jitter in ms
	rtt            atomic.Int64  // time.Duration

	// The current source, owned by the goroutine calling Update.
	started      bool
	ssrc         uint32
	maxSeq       uint16
	cycles       uint32 // sequence wraps, times seqMod
	baseSeq      uint32
	badSeq       uint32 // seqMod+1: none
	received     uint64 // packets counted since baseSeq
	prevLost     int64  // lost by earlier sources
	prevExpected uint64
	// Jitter.
	clock       uint32
	base        int64 // arrival the transit times are relative to
	transit     uint32
	lastTS      uint32
	haveTransit bool
	jitter      float64 // in clock units
}

// Update counts one RTP packet of the stream: clockRate is its RTP clock
// (0: 8000), arrival its arrival time in monotonic nanoseconds. Packets
// that are not well-formed RTP are ignored. Bytes count the whole RTP
// packet. The jitter is updated only by packets whose timestamp differs
// from the previous packet's, so video frames split over several packets
// and the repeats of a telephone event do not count as jitter. It does
// not allocate.
func (r *RecvStats) Update(pkt []byte, clockRate uint32, arrival int64) {
	if _, ok := parseRTP(pkt); !ok {
		return
	}
	if clockRate == 0 {
		clockRate = defaultClockRate
	}
	seq, ts, ssrc := rtpSeq(pkt), rtpTS(pkt), rtpSSRC(pkt)
	r.packets.Add(1)
	r.bytes.Add(uint64(len(pkt)))
	switch {
	case !r.started:
		r.started, r.ssrc = true, ssrc
		r.initSeq(seq)
		r.base = arrival
	case ssrc != r.ssrc:
		r.ssrc = ssrc
		r.restart(seq)
	}
	r.updateSeq(seq)
	r.updateJitter(ts, clockRate, arrival)
	r.publish()
}

// initSeq starts counting a sequence at seq (RFC 3550 A.1 init_seq).
func (r *RecvStats) initSeq(seq uint16) {
	r.baseSeq, r.maxSeq, r.cycles = uint32(seq), seq, 0
	r.badSeq = seqMod + 1
	r.received = 0
	r.haveTransit = false
}

// restart ends the current sequence, keeping its loss in the totals, and
// starts a new one at seq.
func (r *RecvStats) restart(seq uint16) {
	exp, lost := r.current()
	r.prevExpected += exp
	r.prevLost += lost
	r.initSeq(seq)
}

// updateSeq is RFC 3550 A.1 update_seq without probation: the SBC has
// already chosen the source it listens to.
func (r *RecvStats) updateSeq(seq uint16) {
	delta := seq - r.maxSeq
	switch {
	case delta < maxDropout:
		if seq < r.maxSeq {
			r.cycles += seqMod
		}
		r.maxSeq = seq
	case uint32(delta) <= seqMod-maxMisorder:
		// A large jump: believe it once two sequential packets confirm
		// it (the source restarted), otherwise ignore the packet.
		if uint32(seq) != r.badSeq {
			r.badSeq = (uint32(seq) + 1) & (seqMod - 1)
			return
		}
		r.restart(seq)
	}
	// else: a duplicate or reordered packet, counted as received.
	r.received++
}

// current returns the expected and lost packets of the current sequence
// (RFC 3550 A.3); lost is never negative, though duplicates can make
// received exceed expected.
func (r *RecvStats) current() (expected uint64, lost int64) {
	expected = uint64(r.cycles) + uint64(r.maxSeq) - uint64(r.baseSeq) + 1
	return expected, max(int64(expected)-int64(r.received), 0)
}

// updateJitter is RFC 3550 A.8: the jitter moves by 1/16 of the change in
// relative transit time from one packet to the next.
func (r *RecvStats) updateJitter(ts, clockRate uint32, arrival int64) {
	if clockRate != r.clock {
		if r.clock != 0 {
			r.jitter = r.jitter * float64(clockRate) / float64(r.clock)
		}
		r.clock = clockRate
		r.haveTransit = false
	}
	if r.haveTransit && ts == r.lastTS {
		return
	}
	// Arrival in clock units, modulo 2^32 like the timestamp.
	transit := uint32(clockUnitsSigned(arrival-r.base, clockRate)) - ts
	if r.haveTransit {
		d := float64(int32(transit - r.transit))
		r.jitter += (math.Abs(d) - r.jitter) * jitterGain
	}
	r.transit, r.lastTS, r.haveTransit = transit, ts, true
}

// clockUnitsSigned is clockUnits for a duration in nanoseconds that may
// be negative (a packet stamped before the base arrival).
func clockUnitsSigned(ns int64, clockRate uint32) int64 {
	if ns < 0 {
		return -clockUnits(time.Duration(-ns), clockRate)
	}
	return clockUnits(time.Duration(ns), clockRate)
}

// publish stores the totals Snapshot reads.
func (r *RecvStats) publish() {
	exp, lost := r.current()
	r.expected.Store(r.prevExpected + exp)
	r.lost.Store(r.prevLost + lost)
	r.jitterBits.Store(math.Float64bits(r.jitter / float64(r.clock) * 1000))
}

// SetRTT records the round-trip time to the stream's sender (from RTCP
// report blocks), which Snapshot's MOS counts in the one-way delay. Until
// it is set the RTT is taken as 0.
func (r *RecvStats) SetRTT(rtt time.Duration) { r.rtt.Store(int64(max(rtt, 0))) }

// StreamStats is a snapshot of a received stream.
type StreamStats struct {
	// Packets and Bytes count every well-formed RTP packet received.
	Packets, Bytes uint64
	// Lost is packets expected from the sequence numbers and never
	// received (RFC 3550 A.3), summed over the stream's sources; never
	// negative.
	Lost int64
	// JitterMs is the RFC 3550 interarrival jitter, in milliseconds.
	JitterMs float64
	// MOS is the E-model estimate of the listening quality (see MOS),
	// from 1 to 4.5; 0 when no packet has been received.
	MOS float64
}

// Snapshot returns the stream's statistics so far, with the MOS computed
// for codec (an SDP encoding name such as "PCMU" or "opus") from the loss
// rate over the whole stream, the current jitter and the last SetRTT. It
// may be called from any goroutine and does not allocate.
func (r *RecvStats) Snapshot(codec string) StreamStats {
	s := StreamStats{
		Packets:  r.packets.Load(),
		Bytes:    r.bytes.Load(),
		Lost:     r.lost.Load(),
		JitterMs: math.Float64frombits(r.jitterBits.Load()),
	}
	if s.Packets == 0 {
		return s
	}
	lossPct := 0.0
	if exp := r.expected.Load(); exp > 0 {
		lossPct = float64(s.Lost) / float64(exp) * 100
	}
	rttMs := float64(r.rtt.Load()) / float64(time.Millisecond)
	s.MOS = MOS(codec, lossPct, s.JitterMs, rttMs)
	return s
}

// Source returns the SSRC of the source counted now and the rollover
// counter of its sequence numbers (wraps seen since it began); ok is
// false before the first packet. Owned, like Update, by the caller's
// goroutine (or lock).
func (r *RecvStats) Source() (ssrc, roc uint32, ok bool) {
	return r.ssrc, r.cycles >> 16, r.started
}
