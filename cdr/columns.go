package cdr

import (
	"strconv"
	"time"
)

// column is one field of a record as the CSV and PostgreSQL writers see
// it: its name (the JSON name), its text for CSV and its value for SQL.
type column struct {
	name  string
	text  func(r *Record) string
	value func(r *Record) any
}

func str(name string, f func(r *Record) string) column {
	return column{name, f, func(r *Record) any { return f(r) }}
}

func stamp(name string, f func(r *Record) Timestamp) column {
	return column{name, func(r *Record) string { return f(r).String() }, func(r *Record) any {
		if ts := f(r); !ts.IsZero() {
			return ts.Time()
		}
		return (*time.Time)(nil)
	}}
}

func integer(name string, f func(r *Record) int64) column {
	return column{name, func(r *Record) string { return strconv.FormatInt(f(r), 10) }, func(r *Record) any { return f(r) }}
}

func counter(name string, f func(r *Record) uint64) column {
	// PostgreSQL has no unsigned type; counters never reach 2^63.
	return column{name, func(r *Record) string { return strconv.FormatUint(f(r), 10) }, func(r *Record) any { return int64(f(r)) }}
}

func boolean(name string, f func(r *Record) bool) column {
	return column{name, func(r *Record) string { return strconv.FormatBool(f(r)) }, func(r *Record) any { return f(r) }}
}

func decimal(name string, f func(r *Record) float64) column {
	return column{name, func(r *Record) string { return strconv.FormatFloat(f(r), 'f', -1, 64) }, func(r *Record) any { return f(r) }}
}

// columns lists every field in contract order. TestColumnsMatchJSON keeps
// it equal to Record's JSON names.
var columns = []column{
	str("id", func(r *Record) string { return r.ID }),
	str("node_id", func(r *Record) string { return r.NodeID }),
	str("a_call_id", func(r *Record) string { return r.ACallID }),
	str("b_call_id", func(r *Record) string { return r.BCallID }),
	str("from_uri", func(r *Record) string { return r.FromURI }),
	str("to_uri", func(r *Record) string { return r.ToURI }),
	str("src_addr", func(r *Record) string { return r.SrcAddr }),
	str("a_transport", func(r *Record) string { return r.ATransport }),
	str("trunk", func(r *Record) string { return r.Trunk }),
	stamp("start_time", func(r *Record) Timestamp { return r.StartTime }),
	stamp("ring_time", func(r *Record) Timestamp { return r.RingTime }),
	stamp("answer_time", func(r *Record) Timestamp { return r.AnswerTime }),
	stamp("end_time", func(r *Record) Timestamp { return r.EndTime }),
	integer("setup_ms", func(r *Record) int64 { return r.SetupMs }),
	decimal("duration_s", func(r *Record) float64 { return r.DurationS }),
	decimal("billsec_s", func(r *Record) float64 { return r.BillsecS }),
	str("disposition", func(r *Record) string { return r.Disposition }),
	integer("sip_code", func(r *Record) int64 { return int64(r.SIPCode) }),
	str("hangup_cause", func(r *Record) string { return r.HangupCause }),
	str("hangup_side", func(r *Record) string { return r.HangupSide }),
	str("a_codec", func(r *Record) string { return r.ACodec }),
	str("b_codec", func(r *Record) string { return r.BCodec }),
	counter("a_to_b_packets", func(r *Record) uint64 { return r.AToBPackets }),
	counter("a_to_b_bytes", func(r *Record) uint64 { return r.AToBBytes }),
	integer("a_to_b_lost", func(r *Record) int64 { return r.AToBLost }),
	decimal("a_to_b_jitter_ms", func(r *Record) float64 { return r.AToBJitterMs }),
	decimal("a_to_b_mos", func(r *Record) float64 { return r.AToBMOS }),
	counter("b_to_a_packets", func(r *Record) uint64 { return r.BToAPackets }),
	counter("b_to_a_bytes", func(r *Record) uint64 { return r.BToABytes }),
	integer("b_to_a_lost", func(r *Record) int64 { return r.BToALost }),
	decimal("b_to_a_jitter_ms", func(r *Record) float64 { return r.BToAJitterMs }),
	decimal("b_to_a_mos", func(r *Record) float64 { return r.BToAMOS }),
	str("transferred_from", func(r *Record) string { return r.TransferredFrom }),
	str("transferred_to", func(r *Record) string { return r.TransferredTo }),
	str("taken_over_from", func(r *Record) string { return r.TakenOverFrom }),
	boolean("transcoded", func(r *Record) bool { return r.Transcoded }),
}

// Columns returns the record's field names in contract order: the CSV
// header and the PostgreSQL column names.
func Columns() []string {
	names := make([]string, len(columns))
	for i, c := range columns {
		names[i] = c.name
	}
	return names
}
