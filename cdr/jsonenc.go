package cdr

import (
	"fmt"
	"math"
	"strconv"
	"time"
	"unicode/utf8"
)

// appendJSON appends r as encoding/json's Marshal writes it, byte for
// byte (TestAppendJSONIsMarshal), without reflection: a record is encoded
// three times per call (journal frames at start, answer and end) and once
// per JSON-lines writer, and encoding/json's reflection was 7 % of the
// SBC's CPU at 300 calls/s. A NaN or infinite float is refused, as
// Marshal refuses it.
func (r *Record) appendJSON(b []byte) ([]byte, error) {
	b = append(b, '{')
	b = jsonField(b, "id", true)
	b = jsonString(b, r.ID)
	b = jsonString(jsonField(b, "node_id", false), r.NodeID)
	b = jsonString(jsonField(b, "a_call_id", false), r.ACallID)
	b = jsonString(jsonField(b, "b_call_id", false), r.BCallID)
	b = jsonString(jsonField(b, "from_uri", false), r.FromURI)
	b = jsonString(jsonField(b, "to_uri", false), r.ToURI)
	b = jsonString(jsonField(b, "src_addr", false), r.SrcAddr)
	b = jsonString(jsonField(b, "a_transport", false), r.ATransport)
	b = jsonString(jsonField(b, "trunk", false), r.Trunk)
	b = jsonTime(jsonField(b, "start_time", false), r.StartTime)
	b = jsonTime(jsonField(b, "ring_time", false), r.RingTime)
	b = jsonTime(jsonField(b, "answer_time", false), r.AnswerTime)
	b = jsonTime(jsonField(b, "end_time", false), r.EndTime)
	b = strconv.AppendInt(jsonField(b, "setup_ms", false), r.SetupMs, 10)
	var err error
	floats := func(name string, f float64) {
		if err == nil {
			b, err = jsonFloat(jsonField(b, name, false), f)
		}
	}
	floats("duration_s", r.DurationS)
	floats("billsec_s", r.BillsecS)
	b = jsonString(jsonField(b, "disposition", false), r.Disposition)
	b = strconv.AppendInt(jsonField(b, "sip_code", false), int64(r.SIPCode), 10)
	b = jsonString(jsonField(b, "hangup_cause", false), r.HangupCause)
	b = jsonString(jsonField(b, "hangup_side", false), r.HangupSide)
	b = jsonString(jsonField(b, "a_codec", false), r.ACodec)
	b = jsonString(jsonField(b, "b_codec", false), r.BCodec)
	b = strconv.AppendUint(jsonField(b, "a_to_b_packets", false), r.AToBPackets, 10)
	b = strconv.AppendUint(jsonField(b, "a_to_b_bytes", false), r.AToBBytes, 10)
	b = strconv.AppendInt(jsonField(b, "a_to_b_lost", false), r.AToBLost, 10)
	floats("a_to_b_jitter_ms", r.AToBJitterMs)
	floats("a_to_b_mos", r.AToBMOS)
	b = strconv.AppendUint(jsonField(b, "b_to_a_packets", false), r.BToAPackets, 10)
	b = strconv.AppendUint(jsonField(b, "b_to_a_bytes", false), r.BToABytes, 10)
	b = strconv.AppendInt(jsonField(b, "b_to_a_lost", false), r.BToALost, 10)
	floats("b_to_a_jitter_ms", r.BToAJitterMs)
	floats("b_to_a_mos", r.BToAMOS)
	b = jsonString(jsonField(b, "transferred_from", false), r.TransferredFrom)
	b = jsonString(jsonField(b, "transferred_to", false), r.TransferredTo)
	b = jsonString(jsonField(b, "taken_over_from", false), r.TakenOverFrom)
	b = strconv.AppendBool(jsonField(b, "transcoded", false), r.Transcoded)
	if err != nil {
		return b, fmt.Errorf("encode record %s: %w", r.ID, err)
	}
	return append(b, '}'), nil
}

func jsonField(b []byte, name string, first bool) []byte {
	if !first {
		b = append(b, ',')
	}
	b = append(b, '"')
	b = append(b, name...)
	return append(b, '"', ':')
}

func jsonTime(b []byte, ts Timestamp) []byte {
	if ts.IsZero() {
		return append(b, "null"...)
	}
	b = append(b, '"')
	b = appendTime(b, ts.t)
	return append(b, '"')
}

// appendTime appends t as t.AppendFormat(b, TimeLayout) does, byte for
// byte (TestAppendTimeIsFormat); a UTC instant of the years 0-9999, as
// every Timestamp is, without parsing the layout: AppendFormat was 1 %
// of the SBC's CPU at 800 calls/s (four times per record, three records
// per call).
func appendTime(b []byte, t time.Time) []byte {
	year, month, day := t.Date()
	if t.Location() != time.UTC || year < 0 || year > 9999 {
		return t.AppendFormat(b, TimeLayout)
	}
	hour, minute, sec := t.Clock()
	b = appendDigits(b, year, 4)
	b = appendDigits(append(b, '-'), int(month), 2)
	b = appendDigits(append(b, '-'), day, 2)
	b = appendDigits(append(b, 'T'), hour, 2)
	b = appendDigits(append(b, ':'), minute, 2)
	b = appendDigits(append(b, ':'), sec, 2)
	b = appendDigits(append(b, '.'), t.Nanosecond()/1e6, 3)
	return append(b, 'Z')
}

// appendDigits appends v, 0 <= v < 10^n, as n decimal digits.
func appendDigits(b []byte, v, n int) []byte {
	for i := n - 1; i >= 0; i-- {
		d := v
		for range i {
			d /= 10
		}
		b = append(b, byte('0'+d%10))
	}
	return b
}

// jsonFloat is encoding/json's float64 encoding: the shortest decimal,
// exponent form below 1e-6 and from 1e21, "e-07" written "e-7".
func jsonFloat(b []byte, f float64) ([]byte, error) {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return b, fmt.Errorf("json: unsupported value: %s", strconv.FormatFloat(f, 'g', -1, 64))
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b, nil
}

const hexDigits = "0123456789abcdef"

// jsonString is encoding/json's string encoding with HTML escaping (its
// default): '<', '>' and '&' as \u003c..., control characters escaped,
// invalid UTF-8 as \ufffd, U+2028 and U+2029 escaped.
func jsonString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
