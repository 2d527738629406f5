package cdr

import (
	"bytes"
	"fmt"
	"math"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/sbc-project/sbc/b2bua/outcome"
)

// TimeLayout is how record timestamps are written: RFC 3339 in UTC with
// milliseconds.
const TimeLayout = "2006-01-02T15:04:05.000Z07:00"

// Timestamp is an instant in UTC at millisecond precision. The zero value
// means unknown: JSON null, an empty CSV field, SQL NULL.
type Timestamp struct{ t time.Time }

// At returns t in UTC, truncated to the millisecond; the zero time stays
// unknown.
func At(t time.Time) Timestamp {
	if t.IsZero() {
		return Timestamp{}
	}
	return Timestamp{t.UTC().Truncate(time.Millisecond).Round(0)}
}

// Time returns the instant; the zero time when unknown.
func (ts Timestamp) Time() time.Time { return ts.t }

// IsZero reports whether the instant is unknown.
func (ts Timestamp) IsZero() bool { return ts.t.IsZero() }

// String formats the instant with TimeLayout; "" when unknown.
func (ts Timestamp) String() string {
	if ts.t.IsZero() {
		return ""
	}
	return ts.t.Format(TimeLayout)
}

// MarshalJSON writes a TimeLayout string or null.
func (ts Timestamp) MarshalJSON() ([]byte, error) {
	if ts.t.IsZero() {
		return []byte("null"), nil
	}
	return []byte(`"` + ts.String() + `"`), nil
}

// UnmarshalJSON reads what MarshalJSON writes (any RFC 3339 time).
func (ts *Timestamp) UnmarshalJSON(b []byte) error {
	if bytes.Equal(b, []byte("null")) {
		*ts = Timestamp{}
		return nil
	}
	if len(b) < 2 || b[0] != '"' || b[len(b)-1] != '"' {
		return fmt.Errorf("timestamp %s: want an RFC 3339 string or null", b)
	}
	t, err := time.Parse(time.RFC3339Nano, string(b[1:len(b)-1]))
	if err != nil {
		return fmt.Errorf("timestamp: %w", err)
	}
	*ts = At(t)
	return nil
}

// Record is one call detail record: one per call attempt, answered or not.
// The JSON names are the contract (README "CDRs"); CSV headers and
// PostgreSQL columns use the same names in the same order (Columns).
//
// Media counters are per direction: a_to_b_* describe the RTP received from
// side A (the caller) and relayed to side B, b_to_a_* the reverse. lost,
// jitter_ms and mos are measured on what the SBC received from the source
// side.
type Record struct {
	ID          string    `json:"id"`           // unique per call attempt (32 hex digits)
	NodeID      string    `json:"node_id"`      // the SBC node that handled the call
	ACallID     string    `json:"a_call_id"`    // Call-ID of the caller's leg
	BCallID     string    `json:"b_call_id"`    // Call-ID of the last B-leg attempt; "" if none
	FromURI     string    `json:"from_uri"`     // the caller's From URI
	ToURI       string    `json:"to_uri"`       // the caller's To URI
	SrcAddr     string    `json:"src_addr"`     // ip:port the INVITE came from
	ATransport  string    `json:"a_transport"`  // udp, tcp, tls, ws or wss
	Trunk       string    `json:"trunk"`        // trunk of the last B-leg attempt; "" if none
	StartTime   Timestamp `json:"start_time"`   // INVITE received
	RingTime    Timestamp `json:"ring_time"`    // first 18x relayed to the caller
	AnswerTime  Timestamp `json:"answer_time"`  // 2xx sent to the caller
	EndTime     Timestamp `json:"end_time"`     // the call ended
	SetupMs     int64     `json:"setup_ms"`     // start to ring, else answer, else end
	DurationS   float64   `json:"duration_s"`   // end - start, seconds
	BillsecS    float64   `json:"billsec_s"`    // end - answer, seconds; 0 if not answered
	Disposition string    `json:"disposition"`  // outcome.Answered, NoAnswer, Busy, Failed, Cancelled or Rejected
	SIPCode     int       `json:"sip_code"`     // final response to the caller; 0 if none
	HangupCause string    `json:"hangup_cause"` // why it ended: an outcome.Cause
	HangupSide  string    `json:"hangup_side"`  // who ended it: an outcome.Side (a, b or sbc)
	ACodec      string    `json:"a_codec"`      // codec on the caller's leg, e.g. opus/48000/2
	BCodec      string    `json:"b_codec"`      // codec on the callee's leg

	AToBPackets  uint64  `json:"a_to_b_packets"`   // RTP packets from A relayed to B
	AToBBytes    uint64  `json:"a_to_b_bytes"`     // their UDP payload bytes
	AToBLost     int64   `json:"a_to_b_lost"`      // packets lost on the way from A
	AToBJitterMs float64 `json:"a_to_b_jitter_ms"` // interarrival jitter of A's RTP
	AToBMOS      float64 `json:"a_to_b_mos"`       // E-model MOS of A's RTP; 0 if none
	BToAPackets  uint64  `json:"b_to_a_packets"`   // the same from B to A
	BToABytes    uint64  `json:"b_to_a_bytes"`
	BToALost     int64   `json:"b_to_a_lost"`
	BToAJitterMs float64 `json:"b_to_a_jitter_ms"`
	BToAMOS      float64 `json:"b_to_a_mos"`

	// Call transfer (REFER): the id of the record this call goes on from,
	// and of the record that goes on from this one; "" when none.
	TransferredFrom string `json:"transferred_from"`
	TransferredTo   string `json:"transferred_to"`

	// TakenOverFrom is the node a call went on from after that node died
	// or handed it over (issue 19); "" when none.
	TakenOverFrom string `json:"taken_over_from"`

	// Transcoded is true when the SBC transcoded the call's audio
	// (a_codec and b_codec then differ; issue 21).
	Transcoded bool `json:"transcoded"`
}

// FromCall builds the record of a call from what the B2BUA knows, with the
// derived fields (setup_ms, duration_s, billsec_s, disposition) computed
// from it. Timestamps are truncated to the millisecond first, so that the
// derived fields agree exactly with the timestamps written. Text fields
// are made printable (see printable): every writer can store them.
func FromCall(c outcome.CallRecord, nodeID string) Record {
	var r Record
	fromCall(&r, &c, nodeID)
	return r
}

// fromCall is FromCall into r, which it overwrites. The recorder builds
// each call's records with it three times per call, on the call's
// goroutine: through pointers, so that neither the call nor the record
// is copied from frame to frame (the copies made that path the deepest
// of a call's stack, and growing the stack there was 3 % of the SBC's
// CPU at 800 calls/s).
func fromCall(r *Record, c *outcome.CallRecord, nodeID string) {
	// Field by field: a composite literal is built in a temporary on the
	// stack first.
	*r = Record{}
	r.ID, r.NodeID, r.ACallID, r.BCallID = c.ID, nodeID, c.ACallID, c.BCallID
	r.FromURI, r.ToURI, r.SrcAddr, r.ATransport, r.Trunk = c.FromURI, c.ToURI, c.SrcAddr, c.ATransport, c.Trunk
	r.StartTime, r.RingTime, r.AnswerTime, r.EndTime = At(c.Start), At(c.Ring), At(c.Answer), At(c.End)
	r.SIPCode, r.HangupCause, r.HangupSide = c.SIPCode, string(c.Cause), string(c.Side)
	r.ACodec, r.BCodec = c.ACodec, c.BCodec
	a, b := &c.Media.AtoB, &c.Media.BtoA
	r.AToBPackets, r.AToBBytes, r.AToBLost = a.Packets, a.Bytes, a.Lost
	r.AToBJitterMs, r.AToBMOS = round(a.JitterMs, 3), round(a.MOS, 2)
	r.BToAPackets, r.BToABytes, r.BToALost = b.Packets, b.Bytes, b.Lost
	r.BToAJitterMs, r.BToAMOS = round(b.JitterMs, 3), round(b.MOS, 2)
	r.TransferredFrom, r.TransferredTo = c.TransferredFrom, c.TransferredTo
	r.TakenOverFrom = c.TakenOverFrom
	r.Transcoded = c.Transcoded
	r.clean()
	r.derive()
}

// clean makes every text field printable.
func (r *Record) clean() {
	for _, f := range []*string{&r.ID, &r.NodeID, &r.ACallID, &r.BCallID, &r.FromURI, &r.ToURI, &r.SrcAddr,
		&r.ATransport, &r.Trunk, &r.HangupCause, &r.HangupSide, &r.ACodec, &r.BCodec, &r.TransferredFrom, &r.TransferredTo,
		&r.TakenOverFrom} {
		*f = printable(*f)
	}
}

// printable returns s as UTF-8 text without control characters: each
// invalid byte and each control character (HTAB too: a field is one line)
// becomes U+FFFD. The SIP parser already refuses them in the headers a
// record keeps (Call-ID, From, To); this covers what reaches a record
// from elsewhere, such as codec names from an SDP body. PostgreSQL cannot
// store a NUL, and a CSV reader should not meet one.
func printable(s string) string {
	if utf8.ValidString(s) && strings.IndexFunc(s, isControl) < 0 {
		return s
	}
	return strings.Map(func(r rune) rune {
		if isControl(r) {
			return utf8.RuneError
		}
		return r // strings.Map turns invalid bytes into utf8.RuneError (U+FFFD)
	}, s)
}

// isControl reports the C0 control characters and DEL.
func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// restarted turns the last known state of a call in progress into its
// final record: ended at end by the SBC's restart.
func (r Record) restarted(end time.Time) Record {
	ts := At(end)
	for _, known := range []Timestamp{r.StartTime, r.RingTime, r.AnswerTime} {
		if known.t.After(ts.t) {
			ts = known // the clock went back, or the heartbeat lagged
		}
	}
	r.EndTime = ts
	r.HangupCause, r.HangupSide = string(outcome.CauseSBCRestart), string(outcome.SideSBC)
	if r.AnswerTime.IsZero() {
		r.SIPCode = 0 // no final response went to the caller
	} else {
		r.SIPCode = 200
	}
	r.derive()
	return r
}

// derive computes setup_ms, duration_s, billsec_s and disposition from the
// other fields. Unknown instants give 0.
func (r *Record) derive() {
	first := r.RingTime
	if first.IsZero() || (!r.AnswerTime.IsZero() && r.AnswerTime.t.Before(first.t)) {
		first = r.AnswerTime
	}
	if first.IsZero() {
		first = r.EndTime // neither rang nor answered: the time to the failure
	}
	r.SetupMs = between(r.StartTime, first).Milliseconds()
	r.DurationS = between(r.StartTime, r.EndTime).Seconds()
	r.BillsecS = between(r.AnswerTime, r.EndTime).Seconds()
	r.Disposition = outcome.Classify(outcome.Cause(r.HangupCause), r.SIPCode, !r.AnswerTime.IsZero()).Disposition
}

// between is b - a, or 0 when either is unknown or b is before a.
func between(a, b Timestamp) time.Duration {
	if a.IsZero() || b.IsZero() || b.t.Before(a.t) {
		return 0
	}
	return b.t.Sub(a.t)
}

// round rounds v to n decimal places, so that JSON, CSV and SQL show the
// same value.
func round(v float64, n int) float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0
	}
	p := math.Pow10(n)
	return math.Round(v*p) / p
}
