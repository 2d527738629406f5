package cdr

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

// TestAppendJSONIsMarshal: the hand-written encoder gives exactly what
// encoding/json gives, for records with every kind of text (HTML
// characters, control characters, invalid UTF-8, U+2028), floats from
// tiny to huge and negative, and unknown and known timestamps; and
// refuses NaN and infinities as Marshal does.
func TestAppendJSONIsMarshal(t *testing.T) {
	texts := []string{"", "alice", `"quoted" \back\`, "<b>&amp;</b>", "\x00\x01\x1f\x7f", "tab\there\nnew\rret\b\f",
		"ünïcødé ☎", "bad \xff\xfe utf8", "line\u2028sep\u2029", "sip:+12125551234@example.com;user=phone", "\xe2\x82"}
	floats := []float64{0, math.Copysign(0, -1), 1, -1, 0.5, 1.25, 123.456, 1e-7, 1.5e-9, 9.99e20, 1e21, 3e25, -2.5e-8, 4.4, 0.001, 1234567.891}
	r := rand.New(rand.NewPCG(1, 2))
	text := func() string { return texts[r.IntN(len(texts))] }
	num := func() float64 { return floats[r.IntN(len(floats))] }
	ts := func() Timestamp {
		if r.IntN(3) == 0 {
			return Timestamp{}
		}
		return At(time.Unix(r.Int64N(2e9), r.Int64N(1e9)))
	}
	for i := range 2000 {
		rec := Record{ID: text(), NodeID: text(), ACallID: text(), BCallID: text(), FromURI: text(), ToURI: text(),
			SrcAddr: text(), ATransport: text(), Trunk: text(), StartTime: ts(), RingTime: ts(), AnswerTime: ts(), EndTime: ts(),
			SetupMs: r.Int64N(1e6) - 5e5, DurationS: num(), BillsecS: num(), Disposition: text(), SIPCode: r.IntN(700),
			HangupCause: text(), HangupSide: text(), ACodec: text(), BCodec: text(),
			AToBPackets: r.Uint64(), AToBBytes: r.Uint64(), AToBLost: r.Int64() - math.MaxInt64/2, AToBJitterMs: num(), AToBMOS: num(),
			BToAPackets: r.Uint64(), BToABytes: r.Uint64(), BToALost: -r.Int64(), BToAJitterMs: num(), BToAMOS: num(),
			TransferredFrom: text(), TransferredTo: text(), TakenOverFrom: text()}
		want, err := json.Marshal(&rec)
		if err != nil {
			t.Fatal(err)
		}
		got, err := rec.appendJSON([]byte("prefix"))
		if err != nil || string(got) != "prefix"+string(want) {
			t.Fatalf("record %d:\n got %s (%v)\nwant prefix%s", i, got, err, want)
		}
	}
	for _, bad := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		rec := Record{ID: "x", BToAMOS: bad}
		if _, err := json.Marshal(&rec); err == nil {
			t.Fatal("Marshal took a NaN or infinity")
		}
		if _, err := rec.appendJSON(nil); err == nil {
			t.Fatalf("appendJSON took %v", bad)
		}
	}
}

// TestAppendTimeIsFormat: appendTime writes what AppendFormat writes with
// TimeLayout, for UTC instants across the years it formats itself and
// beyond, and for instants in other zones.
func TestAppendTimeIsFormat(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	zone := time.FixedZone("x", -(3*3600 + 30*60))
	first, last := time.Date(-2, 1, 1, 0, 0, 0, 0, time.UTC).Unix(), time.Date(10002, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
	cases := []time.Time{time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC),
		time.Date(2026, 12, 6, 23, 59, 59, 1e6, time.UTC), time.Unix(0, 0).UTC(), time.Date(2026, 2, 28, 9, 5, 7, 5e8, zone)}
	for range 20000 {
		cases = append(cases, time.Unix(first+r.Int64N(last-first), r.Int64N(1e9)).UTC())
	}
	for i := range 2000 {
		cases = append(cases, time.Unix(r.Int64N(4e9), int64(i)).In(zone), At(time.Unix(r.Int64N(4e9), r.Int64N(1e9))).t)
	}
	for _, c := range cases {
		if got, want := appendTime([]byte("x"), c), c.AppendFormat([]byte("x"), TimeLayout); string(got) != string(want) {
			t.Fatalf("%v: got %s, want %s", c, got, want)
		}
	}
}

// FuzzAppendJSON holds the encoder to encoding/json on arbitrary text and
// numbers.
func FuzzAppendJSON(f *testing.F) {
	f.Add("alice", "<&>", 1.5, int64(3))
	f.Add("\xff\u2028\x00", "", 1e-7, int64(-1))
	f.Fuzz(func(t *testing.T, a, b string, x float64, n int64) {
		rec := Record{ID: a, FromURI: b, ToURI: a + b, DurationS: x, AToBJitterMs: -x, SetupMs: n, AToBLost: n}
		want, werr := json.Marshal(&rec)
		got, gerr := rec.appendJSON(nil)
		if (werr == nil) != (gerr == nil) {
			t.Fatalf("Marshal error %v, appendJSON error %v", werr, gerr)
		}
		if werr == nil && string(got) != string(want) {
			t.Fatalf("\n got %s\nwant %s", got, want)
		}
	})
}

// BenchmarkAppendJSON: one record, the way the journal encodes it.
func BenchmarkAppendJSON(b *testing.B) {
	rec := Record{ID: "7467e3529b15fd1c214adb3a77d8bfd3", NodeID: "bench-1", ACallID: "1-29976@127.0.0.1",
		BCallID: "80996afa225f598eee6cf126", FromURI: "sip:sipp@127.0.0.1:5060", ToURI: "sip:service@127.0.0.1:26060",
		SrcAddr: "127.0.0.1:5060", ATransport: "udp", Trunk: "uas", StartTime: At(time.Now()), AnswerTime: At(time.Now()),
		EndTime: At(time.Now()), DurationS: 1.234, Disposition: "answered", SIPCode: 200, HangupCause: "normal", HangupSide: "a",
		ACodec: "PCMU/8000", BCodec: "PCMU/8000", AToBJitterMs: 1.25, AToBMOS: 4.4}
	b.Run("encoding/json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = json.Marshal(&rec)
		}
	})
	b.Run("appendJSON", func(b *testing.B) {
		b.ReportAllocs()
		buf := make([]byte, 0, 1024)
		for b.Loop() {
			buf, _ = rec.appendJSON(buf[:0])
		}
	})
}
