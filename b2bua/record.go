package b2bua

import (
	"time"

	"github.com/sbc-project/sbc/media"
)

// CallRecord is what the B2BUA knows about one call attempt: the raw
// material of its CDR. The B2BUA fills it as the call progresses and hands
// copies to the Observer; it never shares one value between goroutines.
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
	Cause      string    // why it ended: normal_clearing, cancelled, media_timeout, ...
	Side       string    // who ended it: a, b or sbc
	ACodec     string    // codec negotiated on leg A, e.g. "opus/48000/2"; "" if none
	BCodec     string    // codec negotiated on leg B
	Media      media.Stats
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
