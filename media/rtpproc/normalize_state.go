package rtpproc

import "time"

// NormalizerState is a Normalizer's output stream, to continue it in
// another process (issue 19): its SSRC and the last sequence number and
// timestamp it sent, with their clock rate.
type NormalizerState struct {
	OutSSRC uint32 `json:"out_ssrc"`
	Seq     uint16 `json:"seq"`
	TS      uint32 `json:"ts"`
	Clock   uint32 `json:"clock"`
	// Sent: the stream has sent a packet (else Seq and TS are the
	// random start).
	Sent bool `json:"sent,omitempty"`
	// ROC counts the wraps of Seq since the stream began: the SRTP
	// rollover counter of the output stream. Kept by the caller (Wraps).
	ROC uint32 `json:"roc,omitempty"`
}

// State returns the output stream as it is now. Safe from any goroutine.
func (n *Normalizer) State() NormalizerState {
	_, seq, ts := unpackCursor(n.cursor.Load())
	return NormalizerState{OutSSRC: n.out, Seq: seq, TS: ts, Clock: n.clock.Load(), Sent: n.lastArrival.Load() != noArrival}
}

// RestoreNormalizer returns a Normalizer that continues st's output
// stream after skip more sequence numbers and elapsed more time: the
// packets the old process may have sent after st was taken, which the
// receiver must not see again. Its first packet starts a segment, with
// the marker bit, as after any change of source; arrival (monotonic ns)
// is now.
func RestoreNormalizer(st NormalizerState, skip uint16, elapsed time.Duration, arrival int64) *Normalizer {
	clock := st.Clock
	if clock == 0 {
		clock = defaultClockRate
	}
	n := &Normalizer{out: st.OutSSRC}
	ts := st.TS + uint32(clockUnits(min(max(elapsed, 0), maxGap), clock))
	n.cursor.Store(packCursor(0, st.Seq+skip, ts))
	n.lastArrival.Store(arrival)
	n.clock.Store(clock)
	return n
}
