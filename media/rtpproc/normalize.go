package rtpproc

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"sync/atomic"
	"time"
)

// Limits of a segment: the packets of one source whose sequence numbers
// and timestamps follow each other. Beyond them, a packet starts a new
// segment.
const (
	// maxDropout and maxMisorder are RFC 3550 A.1's MAX_DROPOUT and
	// MAX_MISORDER: how far ahead of, or behind, the highest sequence
	// number seen a packet may be and still belong to the segment.
	maxDropout  = 3000
	maxMisorder = 100
	// tsSlack is how far a timestamp may stray from what the sequence
	// delta explains, each packet of the delta being worth up to
	// maxFrame (Opus's longest frame), before it is a new time base.
	tsSlack  = 10 * time.Second
	maxFrame = 120 * time.Millisecond
	// minGap is the least a new segment's timestamp advances past the
	// last one sent: one 20 ms frame, so the receiver never sees time
	// stand still or run backwards across a switch.
	minGap = 20 * time.Millisecond
	// maxGap caps the advance across a long silence, keeping it well
	// inside the half of the 32-bit timestamp space receivers compare in.
	maxGap = time.Hour
	// stragglerWindow is how long after a switch to a new SSRC packets of
	// the previous SSRC are dropped as stragglers instead of switching
	// back.
	stragglerWindow = 250 * time.Millisecond
	// defaultClockRate is assumed when a caller passes a clock rate of 0.
	defaultClockRate = 8000
)

// noArrival marks that no packet has arrived yet.
const noArrival = math.MinInt64

// Normalizer keeps one outgoing RTP stream continuous while its source
// changes under it: toward the browser, the PBX may switch from ringback
// to the callee, to a transferred party or to music on hold, each with a
// new SSRC, a sequence jump or a new timestamp base; toward the PBX, a
// browser may restart its stream. The output has one SSRC (OutSSRC) and
// sequence numbers and timestamps without jumps.
//
// The input is cut into segments. A packet starts a new segment when its
// SSRC differs from the current source's, when its sequence number is
// more than 3000 ahead of or 100 behind the highest seen in the segment,
// or when its timestamp is further from the segment's than the sequence
// delta explains (by more than 10 s of clock). The first packet of a
// segment is sent with the next sequence number, a timestamp advanced by
// the wall-clock time since the last packet (at least 20 ms), and the
// marker bit. Within a segment the offsets are constant, so loss,
// reordering and duplicates pass through as they came.
//
// Rewrite is called by one goroutine, the stream's reader. Next, InSSRC,
// OutSSRC and RewriteSenderRTCP may be called from any goroutine, also
// concurrently with Rewrite. The zero value is not usable: use
// NewNormalizer.
type Normalizer struct {
	out uint32

	// cursor is the output's high-water mark, advanced by Rewrite and by
	// Next: the sequence offset of the current segment (bits 48-63), the
	// last output sequence number (32-47) and its timestamp (0-31). One
	// word, so an injected packet and a relayed one never get the same
	// sequence number.
	cursor atomic.Uint64
	// source publishes the current source SSRC (bits 32-63) and the
	// segment's timestamp offset (0-31) for InSSRC and the RTCP path;
	// hasSource is set once it holds a source.
	source    atomic.Uint64
	hasSource atomic.Bool
	// lastArrival is when the last packet was relayed or reserved
	// (noArrival: never); clock is the last clock rate Rewrite saw.
	lastArrival atomic.Int64
	clock       atomic.Uint32

	// The segment, owned by the goroutine calling Rewrite.
	started    bool
	inSSRC     uint32
	tsOff      uint32
	hiSeq      uint16 // highest input sequence number of the segment
	hiTS       uint32 // its timestamp
	prevSSRC   uint32 // the source before the last SSRC switch
	hasPrev    bool
	switchedAt int64 // arrival of the first packet after that switch
	segments   uint32
}

// NewNormalizer returns a Normalizer whose output stream has SSRC
// outSSRC. Its first sequence number and timestamp are random (RFC 3550
// section 5.1).
func NewNormalizer(outSSRC uint32) *Normalizer {
	n := &Normalizer{out: outSSRC}
	n.cursor.Store(packCursor(0, uint16(rand.Uint32()), rand.Uint32()))
	n.lastArrival.Store(noArrival)
	n.clock.Store(defaultClockRate)
	return n
}

func packCursor(off, seq uint16, ts uint32) uint64 {
	return uint64(off)<<48 | uint64(seq)<<32 | uint64(ts)
}

func unpackCursor(c uint64) (off, seq uint16, ts uint32) {
	return uint16(c >> 48), uint16(c >> 32), uint32(c)
}

// OutSSRC returns the SSRC of the output stream.
func (n *Normalizer) OutSSRC() uint32 { return n.out }

// Segments counts the input segments so far: 1 from the first packet,
// one more at each switch of SSRC or jump of sequence number or
// timestamp. Only the goroutine calling Rewrite may call it.
func (n *Normalizer) Segments() uint32 { return n.segments }

// InSSRC returns the SSRC of the current source, 0 before the first
// packet. It is safe to call from any goroutine.
func (n *Normalizer) InSSRC() uint32 { return uint32(n.source.Load() >> 32) }

// Rewrite maps one RTP packet of the input into the output stream, in
// place: SSRC, sequence number and timestamp, and the marker bit on the
// first packet of a segment. clockRate is the RTP clock of the stream (0:
// 8000); arrival is the packet's arrival time in monotonic nanoseconds.
// It reports false, leaving pkt unchanged, when pkt is not a well-formed
// RTP packet, or when it is a straggler of the previous source arriving
// within 250 ms of a switch to a new one; the caller drops those. It does
// not allocate.
func (n *Normalizer) Rewrite(pkt []byte, clockRate uint32, arrival int64) bool {
	if _, ok := parseRTP(pkt); !ok {
		return false
	}
	seq, ts, ssrc := rtpSeq(pkt), rtpTS(pkt), rtpSSRC(pkt)
	if n.straggler(ssrc, arrival) {
		return false
	}
	if clockRate == 0 {
		clockRate = defaultClockRate
	}
	if n.clock.Load() != clockRate {
		n.clock.Store(clockRate)
	}
	var outSeq uint16
	var outTS uint32
	fresh := !n.started || ssrc != n.inSSRC || n.jump(seq, ts, clockRate)
	if fresh {
		n.segments++
		outSeq, outTS = n.startSegment(ssrc, seq, ts, clockRate, arrival)
	} else {
		outSeq, outTS = n.continueSegment(seq, ts)
	}
	n.lastArrival.Store(arrival)
	setRTPSeq(pkt, outSeq)
	setRTPTS(pkt, outTS)
	binary.BigEndian.PutUint32(pkt[8:], n.out)
	if fresh {
		pkt[1] |= 0x80
	}
	return true
}

// straggler reports whether a packet of ssrc is a late packet of the
// source the stream just switched away from.
func (n *Normalizer) straggler(ssrc uint32, arrival int64) bool {
	return n.hasPrev && ssrc == n.prevSSRC && ssrc != n.inSSRC &&
		arrival-n.switchedAt < int64(stragglerWindow)
}

// jump reports whether a packet of the current source leaves the segment:
// its sequence number is outside the window around the highest seen, or
// its timestamp disagrees with the sequence delta.
func (n *Normalizer) jump(seq uint16, ts uint32, clockRate uint32) bool {
	d := seq - n.hiSeq
	var seqDelta int64
	switch {
	case d <= maxDropout:
		seqDelta = int64(d)
	case d >= math.MaxUint16+1-maxMisorder:
		seqDelta = int64(d) - (math.MaxUint16 + 1)
	default:
		return true
	}
	tsDelta := int64(int32(ts - n.hiTS))
	limit := clockUnits(tsSlack, clockRate) + abs64(seqDelta)*clockUnits(maxFrame, clockRate)
	return abs64(tsDelta) > limit
}

// startSegment makes the packet (ssrc, seq, ts) the first of a new
// segment, sent right after the last output packet.
func (n *Normalizer) startSegment(ssrc uint32, seq uint16, ts, clockRate uint32, arrival int64) (uint16, uint32) {
	adv := max(elapsedUnits(arrival, n.lastArrival.Load(), clockRate), uint32(clockUnits(minGap, clockRate)))
	var outSeq uint16
	var outTS uint32
	for {
		c := n.cursor.Load()
		_, last, lastTS := unpackCursor(c)
		outSeq, outTS = last+1, lastTS+adv
		if n.cursor.CompareAndSwap(c, packCursor(outSeq-seq, outSeq, outTS)) {
			break
		}
	}
	if n.started && ssrc != n.inSSRC {
		n.prevSSRC, n.hasPrev, n.switchedAt = n.inSSRC, true, arrival
	}
	n.started, n.inSSRC, n.tsOff = true, ssrc, outTS-ts
	n.hiSeq, n.hiTS = seq, ts
	n.source.Store(uint64(ssrc)<<32 | uint64(n.tsOff))
	n.hasSource.Store(true)
	return outSeq, outTS
}

// continueSegment maps a packet of the current segment with its offsets.
func (n *Normalizer) continueSegment(seq uint16, ts uint32) (uint16, uint32) {
	if d := seq - n.hiSeq; d != 0 && d <= maxDropout {
		n.hiSeq, n.hiTS = seq, ts
	}
	outTS := ts + n.tsOff
	for {
		c := n.cursor.Load()
		off, last, _ := unpackCursor(c)
		outSeq := seq + off
		if int16(outSeq-last) <= 0 {
			return outSeq, outTS // late or duplicate: the mark stays
		}
		if n.cursor.CompareAndSwap(c, packCursor(off, outSeq, outTS)) {
			return outSeq, outTS
		}
	}
}

// Next reserves the next sequence number of the output stream for an
// injected packet (a generated telephone event), and returns it with a
// timestamp for it: the last output timestamp advanced by the wall-clock
// time since the last packet (at arrival, monotonic nanoseconds), and by
// at least frameTS. Relayed packets that follow are shifted by one, so the
// output stays continuous. For the later packets of one event, which keep
// the first packet's timestamp, pass frameTS 0 and use only seq.
//
// Next may be called from any goroutine. A relayed packet that arrives
// reordered across an injected one can be given the sequence number of
// the packet sent after it.
func (n *Normalizer) Next(frameTS uint32, arrival int64) (seq uint16, ts uint32) {
	adv := max(elapsedUnits(arrival, n.lastArrival.Load(), n.clock.Load()), frameTS)
	for {
		c := n.cursor.Load()
		off, last, lastTS := unpackCursor(c)
		seq, ts = last+1, lastTS+adv
		if n.cursor.CompareAndSwap(c, packCursor(off+1, seq, ts)) {
			break
		}
	}
	n.lastArrival.Store(arrival)
	return seq, ts
}

// elapsedUnits converts the wall-clock time from prev to now into clock
// units, capped at maxGap; 0 when prev is unknown or not before now.
func elapsedUnits(now, prev int64, clockRate uint32) uint32 {
	if prev == noArrival || now <= prev {
		return 0
	}
	return uint32(clockUnits(min(time.Duration(now-prev), maxGap), clockRate))
}

// clockUnits converts d (not negative) into units of clockRate, without
// overflow for any duration.
func clockUnits(d time.Duration, clockRate uint32) int64 {
	sec, rem := int64(d/time.Second), int64(d%time.Second)
	return sec*int64(clockRate) + rem*int64(clockRate)/int64(time.Second)
}

func abs64(v int64) int64 {
	if v < 0 {
		return -v
	}
	return v
}
