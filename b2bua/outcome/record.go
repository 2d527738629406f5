package outcome

import "time"

// CallRecord is what the B2BUA knows about one call attempt: the raw
// material of its CDR and of the call metrics. The B2BUA fills it as the
// call progresses and hands copies to the Observer; it never shares one
// value between goroutines.
type CallRecord struct {
	ID         string    // unique per call attempt (random, 32 hex digits)
	ACallID    string    // Call-ID of leg A (the caller's)
	BCallID    string    // Call-ID of the last B-leg attempt; "" if none was sent
	FromURI    string    // A's From URI
	ToURI      string    // A's To URI
	SrcAddr    string    // ip:port the INVITE came from
	ATransport string    // udp, tcp, tls, ws or wss
	Trunk      string    // trunk of the last B-leg attempt ("echo" for the echo destination); "" if none
	Start      time.Time // INVITE received
	Ring       time.Time // first 18x relayed to A; zero if none
	Answer     time.Time // 2xx sent to A; zero if not answered
	End        time.Time // call ended (final failure sent, or both legs closed)
	SIPCode    int       // final code sent to A (200 for answered calls)
	Cause      Cause     // why it ended; zero until it has
	Side       Side      // who ended it; zero until it has
	ACodec     string    // codec negotiated on leg A, e.g. "opus/48000/2"; "" if none
	BCodec     string    // codec negotiated on leg B
	Media      Media
	// TransferredFrom is the ID of the record of the call this one goes
	// on from after a transfer; TransferredTo the ID of the record that
	// goes on from this one ("" when none).
	TransferredFrom, TransferredTo string
	// TakenOverFrom is the node the call went on from after that node
	// died or handed it over (issue 19); "" for a call of this node's own.
	TakenOverFrom string
	// Transcoded is true when the call's audio was transcoded (ACodec
	// and BCodec differ).
	Transcoded bool
}

// Media is what a record keeps of a call's media counters: per
// direction, what the SBC received from one side and relayed to the
// other. The record has a type of its own rather than the media engine's
// counters so that its readers (CDR writers, metrics) do not depend on
// the media engine.
type Media struct {
	AtoB, BtoA Flow // received from A (the caller), received from B (the callee)
}

// Flow is the media received from one side of a call.
type Flow struct {
	Packets, Bytes uint64 // RTP relayed; bytes are UDP payload bytes
	// Lost, JitterMs and MOS describe the RTP received from the side:
	// packets lost (RFC 3550 A.3), interarrival jitter in ms (A.8) and an
	// E-model MOS estimate; 0 when nothing was received.
	Lost          int64
	JitterMs, MOS float64
	SRTPFailed    uint64 // SDES-SRTP packets that failed authentication or were replays
	// Refused are the packets the side's port refused (media latching),
	// by reason: not RTP or RTCP, a payload type not negotiated, SDES-SRTP
	// that did not authenticate, valid media from a source the latch
	// rules keep out.
	RefusedJunk, RefusedPT, RefusedAuth, RefusedSource uint64
}

// Observer receives a call's record at its milestones. CallStarted and
// CallAnswered may be used to journal calls in progress; CallEnded is
// called exactly once per call attempt, on the call's goroutine, before
// the call releases its dialogs and is forgotten, and must have made the
// record durable when it returns. Implementations must be safe for
// concurrent use (calls run in parallel).
type Observer interface {
	CallStarted(r CallRecord)
	CallAnswered(r CallRecord)
	CallEnded(r CallRecord)
}
