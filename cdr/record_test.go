package cdr

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sbc-project/sbc/b2bua/outcome"
)

// t0 is a fixed start time with sub-millisecond digits, to check the
// truncation.
var t0 = time.Date(2026, 11, 21, 10, 15, 0, 123_456_789, time.UTC)

// answeredCall is a complete answered call: rang after 1.5 s, answered
// after 4 s, ended after 64.25 s.
func answeredCall(id string) outcome.CallRecord {
	return outcome.CallRecord{
		ID: id, ACallID: "a-" + id, BCallID: "b-" + id,
		FromURI: "sip:alice@example.com", ToURI: "sip:+15551234@example.com", SrcAddr: "127.0.0.2:5060",
		ATransport: "wss", Trunk: "carrier1",
		Start: t0, Ring: t0.Add(1500 * time.Millisecond), Answer: t0.Add(4 * time.Second), End: t0.Add(64250 * time.Millisecond),
		SIPCode: 200, Cause: "caller_bye", Side: "a", ACodec: "opus/48000/2", BCodec: "PCMU/8000",
		Media: outcome.Media{
			AtoB: outcome.Flow{Packets: 3000, Bytes: 480000, Lost: 3, JitterMs: 2.71828, MOS: 4.312},
			BtoA: outcome.Flow{Packets: 2990, Bytes: 478400, Lost: 0, JitterMs: 0.5, MOS: 4.4},
		},
	}
}

// failedCall is a call that ended at end without answer.
func failedCall(id string, code int, cause outcome.Cause, side outcome.Side, rang bool) outcome.CallRecord {
	c := outcome.CallRecord{ID: id, ACallID: "a-" + id, FromURI: "sip:alice@example.com", ToURI: "sip:bob@example.com",
		SrcAddr: "127.0.0.2:5060", ATransport: "udp", Start: t0, End: t0.Add(3 * time.Second), SIPCode: code, Cause: cause, Side: side}
	if rang {
		c.Ring = t0.Add(time.Second)
	}
	return c
}

func TestFromCallFields(t *testing.T) {
	c := answeredCall("0123456789abcdef0123456789abcdef")
	c.TransferredFrom = "f0123456789abcdef0123456789abcde"
	c.Transcoded = true
	got, err := json.Marshal(FromCall(c, "edge-1"))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"id":"0123456789abcdef0123456789abcdef","node_id":"edge-1",` +
		`"a_call_id":"a-0123456789abcdef0123456789abcdef","b_call_id":"b-0123456789abcdef0123456789abcdef",` +
		`"from_uri":"sip:alice@example.com","to_uri":"sip:+15551234@example.com","src_addr":"127.0.0.2:5060",` +
		`"a_transport":"wss","trunk":"carrier1",` +
		`"start_time":"2026-11-21T10:15:00.123Z","ring_time":"2026-11-21T10:15:01.623Z",` +
		`"answer_time":"2026-11-21T10:15:04.123Z","end_time":"2026-11-21T10:16:04.373Z",` +
		`"setup_ms":1500,"duration_s":64.25,"billsec_s":60.25,"disposition":"ANSWERED","sip_code":200,` +
		`"hangup_cause":"caller_bye","hangup_side":"a","a_codec":"opus/48000/2","b_codec":"PCMU/8000",` +
		`"a_to_b_packets":3000,"a_to_b_bytes":480000,"a_to_b_lost":3,"a_to_b_jitter_ms":2.718,"a_to_b_mos":4.31,` +
		`"b_to_a_packets":2990,"b_to_a_bytes":478400,"b_to_a_lost":0,"b_to_a_jitter_ms":0.5,"b_to_a_mos":4.4,` +
		`"transferred_from":"f0123456789abcdef0123456789abcde","transferred_to":"","taken_over_from":"","transcoded":true}`
	if string(got) != want {
		t.Errorf("record\n got %s\nwant %s", got, want)
	}
}

func TestFromCallUnknownTimes(t *testing.T) {
	r := FromCall(failedCall("x", 404, "no_route", "sbc", false), "n")
	b, _ := json.Marshal(r)
	for _, want := range []string{`"ring_time":null`, `"answer_time":null`, `"setup_ms":3000`, `"duration_s":3,`, `"billsec_s":0,`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("%s: want %s", b, want)
		}
	}
	var back Record
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, r) {
		t.Errorf("round trip\n got %+v\nwant %+v", back, r)
	}
}

// TestDisposition holds one case per rule of the README's table.
func TestDisposition(t *testing.T) {
	tests := []struct {
		name  string
		call  outcome.CallRecord
		want  string
		setup int64
	}{
		{"answered", answeredCall("a"), outcome.Answered, 1500},
		{"caller cancel while ringing", failedCall("c", 487, "caller_cancel", "a", true), outcome.Cancelled, 1000},
		{"486 busy here", failedCall("b", 486, "rejected", "b", true), outcome.Busy, 1000},
		{"600 busy everywhere", failedCall("b", 600, "rejected", "b", false), outcome.Busy, 3000},
		{"ring timeout 408", failedCall("n", 408, "no_answer", "sbc", true), outcome.NoAnswer, 1000},
		{"480 from the callee", failedCall("n", 480, "rejected", "b", true), outcome.NoAnswer, 1000},
		{"480 no binding", failedCall("n", 480, "no_binding", "sbc", false), outcome.NoAnswer, 3000},
		{"487 without caller cancel", failedCall("n", 487, "sbc_shutdown", "sbc", true), outcome.NoAnswer, 1000},
		{"403", failedCall("r", 403, "trunk_auth_failed", "b", false), outcome.Rejected, 3000},
		{"404 no route", failedCall("r", 404, "no_route", "sbc", false), outcome.Rejected, 3000},
		{"484", failedCall("r", 484, "rejected", "b", false), outcome.Rejected, 3000},
		{"488 bad sdp", failedCall("r", 488, "bad_sdp", "b", false), outcome.Rejected, 3000},
		{"603 decline", failedCall("r", 603, "rejected", "b", true), outcome.Rejected, 1000},
		{"other 4xx", failedCall("r", 420, "rejected", "b", false), outcome.Rejected, 3000},
		{"3xx", failedCall("r", 302, "redirect", "b", false), outcome.Rejected, 3000},
		{"500", failedCall("f", 500, "rejected", "b", false), outcome.Failed, 3000},
		{"502 upstream failed", failedCall("f", 502, "upstream_failed", "b", false), outcome.Failed, 3000},
		{"503 all trunks down", failedCall("f", 503, "all_trunks_down", "sbc", false), outcome.Failed, 3000},
		{"no final response", failedCall("f", 0, "internal_error", "sbc", false), outcome.Failed, 3000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := FromCall(tt.call, "n")
			if r.Disposition != tt.want {
				t.Errorf("disposition %q, want %q", r.Disposition, tt.want)
			}
			if r.SetupMs != tt.setup {
				t.Errorf("setup_ms %d, want %d", r.SetupMs, tt.setup)
			}
			if tt.want != outcome.Answered && (r.BillsecS != 0 || !r.AnswerTime.IsZero()) {
				t.Errorf("unanswered call billed %v s, answer_time %q", r.BillsecS, r.AnswerTime)
			}
			if r.SIPCode != tt.call.SIPCode || r.HangupCause != string(tt.call.Cause) || r.HangupSide != string(tt.call.Side) {
				t.Errorf("code/cause/side %d %q %q, want them passed through", r.SIPCode, r.HangupCause, r.HangupSide)
			}
		})
	}
}

func TestRestarted(t *testing.T) {
	crash := t0.Add(30 * time.Second)
	answered := FromCall(answeredCall("a"), "n")
	answered.EndTime, answered.SIPCode = Timestamp{}, 200 // as journaled by CallAnswered
	ringing := FromCall(failedCall("r", 0, "", "", true), "n")
	ringing.EndTime = Timestamp{}
	tests := []struct {
		name      string
		in        Record
		end       time.Time
		wantEnd   time.Time
		wantDisp  string
		wantCode  int
		wantBill  float64
		wantTotal float64
	}{
		{"answered", answered, crash, crash, outcome.Answered, 200, 26, 30},
		{"ringing", ringing, crash, crash, outcome.Failed, 0, 0, 30},
		{"heartbeat older than the answer", answered, t0, t0.Add(4 * time.Second), outcome.Answered, 200, 0, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.in.restarted(tt.end)
			if r.HangupCause != string(outcome.CauseSBCRestart) || r.HangupSide != "sbc" {
				t.Errorf("cause %q side %q", r.HangupCause, r.HangupSide)
			}
			if !r.EndTime.Time().Equal(At(tt.wantEnd).Time()) {
				t.Errorf("end_time %s, want %s", r.EndTime, At(tt.wantEnd))
			}
			if r.Disposition != tt.wantDisp || r.SIPCode != tt.wantCode || r.BillsecS != tt.wantBill || r.DurationS != tt.wantTotal {
				t.Errorf("got %s %d billsec %v duration %v, want %s %d %v %v", r.Disposition, r.SIPCode, r.BillsecS,
					r.DurationS, tt.wantDisp, tt.wantCode, tt.wantBill, tt.wantTotal)
			}
		})
	}
}

// TestColumnsMatchJSON keeps the CSV/SQL column table in the JSON order.
func TestColumnsMatchJSON(t *testing.T) {
	var names []string
	rt := reflect.TypeFor[Record]()
	for i := range rt.NumField() {
		names = append(names, strings.Split(rt.Field(i).Tag.Get("json"), ",")[0])
	}
	if got := Columns(); !slices.Equal(got, names) {
		t.Errorf("Columns()\n %v\nJSON fields\n %v", got, names)
	}
	r := FromCall(answeredCall("x"), "n")
	var m map[string]any
	b, _ := json.Marshal(r)
	_ = json.Unmarshal(b, &m)
	for _, c := range columns {
		want := m[c.name]
		text := c.text(&r)
		switch v := want.(type) {
		case nil:
			if text != "" {
				t.Errorf("%s: csv %q for null", c.name, text)
			}
		case string:
			if text != v {
				t.Errorf("%s: csv %q, json %q", c.name, text, v)
			}
		case float64:
			if text != strings.TrimSuffix(strings.TrimRight(jsonNumber(v), "0"), ".") && text != jsonNumber(v) {
				t.Errorf("%s: csv %q, json %v", c.name, text, v)
			}
		}
	}
}

func jsonNumber(v float64) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestTimestampJSON(t *testing.T) {
	var ts Timestamp
	for _, bad := range []string{`1`, `"yesterday"`, `"2026-11-21"`} {
		if err := json.Unmarshal([]byte(bad), &ts); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
	if err := json.Unmarshal([]byte(`"2026-11-21T11:15:00.123456+01:00"`), &ts); err != nil {
		t.Fatal(err)
	}
	if got := ts.String(); got != "2026-11-21T10:15:00.123Z" {
		t.Errorf("got %s, want UTC with milliseconds", got)
	}
}

// TestFromCallPrintable: whatever bytes reach a call's record (a codec
// name from an SDP body, say), its text fields are UTF-8 without control
// characters, so no writer can refuse them.
func TestFromCallPrintable(t *testing.T) {
	c := answeredCall("x")
	c.ACodec = "PC\x00MU/8000"
	c.BCodec = "op\xffus/48000/2"
	c.ACallID = "a\tb\x1b[2J"
	c.FromURI = "sip:zoë@example.com"
	r := FromCall(c, "n")
	want := map[string]string{"ACodec": "PC\uFFFDMU/8000", "BCodec": "op\uFFFDus/48000/2", "ACallID": "a\uFFFDb\uFFFD[2J",
		"FromURI": "sip:zoë@example.com"}
	got := map[string]string{"ACodec": r.ACodec, "BCodec": r.BCodec, "ACallID": r.ACallID, "FromURI": r.FromURI}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
}
