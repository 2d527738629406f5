package cdr

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"
)

// randomRecord is a record with every kind of number and timestamp
// appendJSON writes, and with every kind of text, or (plain) only text it
// writes without escapes.
func randomRecord(r *rand.Rand, plain bool) Record {
	texts := []string{"", "alice", `"quoted" \back\`, "<b>&amp;</b>", "\x00\x01\x1f\x7f", "tab\there", "ünïcødé ☎",
		"bad \xff\xfe utf8", "line\u2028sep", "sip:+12125551234@example.com;user=phone", "7467e3529b15fd1c214adb3a77d8bfd3"}
	floats := []float64{0, math.Copysign(0, -1), 1, -1, 0.5, 123.456, 1e-7, 1.5e-9, 9.99e20, 1e21, 3e25, -2.5e-8, 4.4, 1234567.891}
	if plain {
		texts = []string{"", "alice", "ünïcødé ☎", "sip:+12125551234@example.com;user=phone", "7467e3529b15fd1c214adb3a77d8bfd3"}
	}
	text := func() string { return texts[r.IntN(len(texts))] }
	num := func() float64 { return floats[r.IntN(len(floats))] }
	ts := func() Timestamp {
		switch r.IntN(4) {
		case 0:
			return Timestamp{}
		case 1: // the years appendTime writes itself, edges included
			return At(time.Date(r.IntN(10000), time.Month(1+r.IntN(12)), 1+r.IntN(31), r.IntN(24), r.IntN(60), r.IntN(60), r.IntN(1e9), time.UTC))
		}
		return At(time.Unix(r.Int64N(4e9), r.Int64N(1e9)))
	}
	return Record{ID: text(), NodeID: text(), ACallID: text(), BCallID: text(), FromURI: text(), ToURI: text(),
		SrcAddr: text(), ATransport: text(), Trunk: text(), StartTime: ts(), RingTime: ts(), AnswerTime: ts(), EndTime: ts(),
		SetupMs: r.Int64N(1e6) - 5e5, DurationS: num(), BillsecS: num(), Disposition: text(), SIPCode: r.IntN(700),
		HangupCause: text(), HangupSide: text(), ACodec: text(), BCodec: text(),
		AToBPackets: r.Uint64(), AToBBytes: r.Uint64(), AToBLost: r.Int64() - math.MaxInt64/2, AToBJitterMs: num(), AToBMOS: num(),
		BToAPackets: r.Uint64(), BToABytes: r.Uint64(), BToALost: -r.Int64(), BToAJitterMs: num(), BToAMOS: num(),
		TransferredFrom: text(), TransferredTo: text(), TakenOverFrom: text()}
}

// sameAsUnmarshal fails t unless decode gives what json.Unmarshal gives
// for b (both the record and whether it is an error), and decodeJSON
// takes b only if json.Unmarshal does, with the same record.
func sameAsUnmarshal(t *testing.T, b []byte) (fast bool) {
	t.Helper()
	var want, got, quick Record
	werr := json.Unmarshal(b, &want)
	gerr := got.decode(b)
	if (werr == nil) != (gerr == nil) || (werr == nil && !reflect.DeepEqual(got, want)) {
		t.Fatalf("%q:\n decode %+v (%v)\nUnmarshal %+v (%v)", b, got, gerr, want, werr)
	}
	if !quick.decodeJSON(b) {
		return false
	}
	if werr != nil || !reflect.DeepEqual(quick, want) {
		t.Fatalf("%q: decodeJSON took it as %+v; Unmarshal: %+v (%v)", b, quick, want, werr)
	}
	return true
}

// TestDecodeJSONIsUnmarshal: the journal's records (appendJSON's output)
// decode to what encoding/json gives, through the fast path when their
// text needs no escapes; anything else (escapes, white space, another
// order, bad numbers or dates) falls back to encoding/json and gives the
// same result or error.
func TestDecodeJSONIsUnmarshal(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	fast := 0
	for i := range 3000 {
		rec := randomRecord(r, i%2 == 0)
		b, err := rec.appendJSON(nil)
		if err != nil {
			t.Fatal(err)
		}
		if sameAsUnmarshal(t, b) {
			fast++
		}
		if !strings.Contains(string(b), `\`) && !sameAsUnmarshal(t, b) {
			t.Fatalf("%s: no escape, yet not taken by decodeJSON", b)
		}
	}
	if fast < 1500 {
		t.Fatalf("only %d of 3000 records took the fast path", fast)
	}
	rec := Record{ID: "x", SetupMs: 5, SIPCode: 200, DurationS: 1.5, StartTime: At(time.Date(2026, 12, 7, 1, 2, 3, 4e6, time.UTC))}
	good, _ := rec.appendJSON(nil)
	if !sameAsUnmarshal(t, good) {
		t.Fatalf("%s: not taken", good)
	}
	for name, edit := range map[string][2]string{
		"leading zero":      {`"setup_ms":5`, `"setup_ms":05`},
		"fraction in int":   {`"sip_code":200`, `"sip_code":200.0`},
		"exponent in int":   {`"sip_code":200`, `"sip_code":2e2`},
		"negative uint":     {`"a_to_b_packets":0`, `"a_to_b_packets":-0`},
		"uint overflow":     {`"a_to_b_packets":0`, `"a_to_b_packets":18446744073709551616`},
		"float exponent":    {`"duration_s":1.5`, `"duration_s":15e-1`},
		"float huge":        {`"duration_s":1.5`, `"duration_s":1e999`},
		"float plus":        {`"duration_s":1.5`, `"duration_s":+1.5`},
		"float dot":         {`"duration_s":1.5`, `"duration_s":1.`},
		"null string":       {`"trunk":""`, `"trunk":null`},
		"escape":            {`"id":"x"`, `"id":"\u0078"`},
		"space":             {`"id":"x"`, `"id": "x"`},
		"order":             {`{"id":"x","node_id":""`, `{"node_id":"","id":"x"`},
		"day 31 of April":   {`2026-12-07`, `2026-04-31`},
		"29 Feb 2026":       {`2026-12-07`, `2026-02-29`},
		"29 Feb 2024":       {`2026-12-07`, `2024-02-29`},
		"month 13":          {`2026-12-07`, `2026-13-07`},
		"hour 24":           {`T01:02:03`, `T24:02:03`},
		"second 60":         {`T01:02:03`, `T01:02:60`},
		"other zone":        {`03.004Z`, `03.004+01:00`},
		"nanoseconds":       {`03.004Z`, `03.004567Z`},
		"null time":         {`"ring_time":null`, `"ring_time":"2026-12-07T01:02:03.004Z"`},
		"trailing":          {`"transcoded":false}`, `"transcoded":false} `},
		"unknown field":     {`"transcoded":false}`, `"transcoded":false,"x":1}`},
		"bool cut":          {`"transcoded":false}`, `"transcoded":fals}`},
		"bool string":       {`"transcoded":false}`, `"transcoded":"false"}`},
		"raw control":       {`"id":"x"`, "\"id\":\"x\x01\""},
		"invalid utf8":      {`"id":"x"`, "\"id\":\"x\xff\""},
		"unterminated":      {`"taken_over_from":""`, `"taken_over_from":"`},
		"digit in date":     {`2026-12-07`, `2026-1x-07`},
		"minus alone":       {`"setup_ms":5`, `"setup_ms":-`},
		"negative setup ms": {`"setup_ms":5`, `"setup_ms":-5`},
	} {
		b := strings.Replace(string(good), edit[0], edit[1], 1)
		if b == string(good) {
			t.Fatalf("%s: %q not in %s", name, edit[0], good)
		}
		t.Run(name, func(t *testing.T) { sameAsUnmarshal(t, []byte(b)) })
	}
}

// FuzzDecodeJSON: whatever the bytes, decode gives what encoding/json
// gives, and the fast path takes only what encoding/json reads the same.
func FuzzDecodeJSON(f *testing.F) {
	r := rand.New(rand.NewPCG(7, 8))
	for i := range 8 {
		rec := randomRecord(r, i%2 == 0)
		b, _ := rec.appendJSON(nil)
		f.Add(b)
	}
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, b []byte) { sameAsUnmarshal(t, b) })
}

// BenchmarkDecode: a journal record read back, as every writer does.
func BenchmarkDecode(b *testing.B) {
	rec := Record{ID: "7467e3529b15fd1c214adb3a77d8bfd3", NodeID: "bench-1", ACallID: "1-29976@127.0.0.1",
		BCallID: "80996afa225f598eee6cf126", FromURI: "sip:sipp@127.0.0.1:5060", ToURI: "sip:service@127.0.0.1:26060",
		SrcAddr: "127.0.0.1:5060", ATransport: "udp", Trunk: "uas", StartTime: At(time.Now()), AnswerTime: At(time.Now()),
		EndTime: At(time.Now()), DurationS: 1.234, Disposition: "answered", SIPCode: 200, HangupCause: "normal", HangupSide: "a",
		ACodec: "PCMU/8000", BCodec: "PCMU/8000", AToBJitterMs: 1.25, AToBMOS: 4.4}
	data, _ := rec.appendJSON(nil)
	b.Run("encoding/json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var r Record
			_ = json.Unmarshal(data, &r)
		}
	})
	b.Run("decode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var r Record
			_ = r.decode(data)
		}
	})
}
