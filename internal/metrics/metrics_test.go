package metrics

import (
	"io"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sbc-project/sbc/b2bua/outcome"
)

func newMetrics(t *testing.T, src Sources) *Metrics {
	t.Helper()
	m, err := New(src)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestCallMetrics(t *testing.T) {
	m := newMetrics(t, Sources{})
	t0 := time.Unix(1700000000, 0)
	m.CallStarted("udp")
	m.CallStarted("udp")
	m.CallStarted("wss")
	m.CallAnswered("pbx")
	m.CallEnded(Call{Trunk: "pbx", Cause: "caller_bye", Side: "a", Answered: true,
		Start: t0, Ring: t0.Add(300 * time.Millisecond), Answer: t0.Add(2 * time.Second), End: t0.Add(62 * time.Second),
		FromA: outcome.Flow{Packets: 100, Bytes: 17200, Lost: 2, JitterMs: 3, MOS: 4.3, RefusedJunk: 3, RefusedSource: 2},
		FromB: outcome.Flow{Packets: 90, Bytes: 15480, SRTPFailed: 1, JitterMs: 12, MOS: 4.1}})
	m.CallEnded(Call{Trunk: "pbx", Cause: "rejected", Side: "b", Start: t0, End: t0.Add(time.Second)})
	m.CallEnded(Call{Cause: "dtls_timeout", Side: "sbc", Start: t0, End: t0.Add(10 * time.Second)})

	checks := []struct {
		name string
		got  float64
		want float64
	}{
		{"started udp", testutil.ToFloat64(m.callsStarted.WithLabelValues("udp")), 2},
		{"started wss", testutil.ToFloat64(m.callsStarted.WithLabelValues("wss")), 1},
		{"answered pbx", testutil.ToFloat64(m.callsAnswered.WithLabelValues("pbx")), 1},
		{"ended caller_bye", testutil.ToFloat64(m.callsEnded.WithLabelValues("caller_bye", "a", "pbx")), 1},
		{"failed rejected", testutil.ToFloat64(m.callsFailed.WithLabelValues("rejected", "pbx")), 1},
		{"failed dtls", testutil.ToFloat64(m.callsFailed.WithLabelValues("dtls_timeout", "")), 1},
		{"dtls failures", testutil.ToFloat64(m.dtlsFailures.WithLabelValues("dtls_timeout")), 1},
		{"packets a", testutil.ToFloat64(m.mediaPackets.WithLabelValues("a")), 100},
		{"bytes b", testutil.ToFloat64(m.mediaBytes.WithLabelValues("b")), 15480},
		{"lost a", testutil.ToFloat64(m.mediaLost.WithLabelValues("a")), 2},
		{"srtp b", testutil.ToFloat64(m.srtpFailures.WithLabelValues("b")), 1},
		{"refused junk a", testutil.ToFloat64(m.mediaRefused.WithLabelValues("a", "junk")), 3},
		{"refused source a", testutil.ToFloat64(m.mediaRefused.WithLabelValues("a", "source")), 2},
		{"refused pt a", testutil.ToFloat64(m.mediaRefused.WithLabelValues("a", "payload_type")), 0},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	text := scrapeText(t, m)
	for _, want := range []string{
		`sbc_call_setup_seconds_count{trunk="pbx"} 1`,
		`sbc_call_setup_seconds_sum{trunk="pbx"} 0.3`,
		`sbc_call_billsec_seconds_sum{trunk="pbx"} 60`,
		`sbc_media_jitter_milliseconds_count{side="a"} 1`,
		`sbc_media_mos_bucket{side="b",le="4.2"} 1`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("scrape lacks %q", want)
		}
	}
}

func TestSIPMessages(t *testing.T) {
	m := newMetrics(t, Sources{})
	tests := []struct {
		dir, method string
		code        int
	}{
		{In, "INVITE", 0},
		{Out, "INVITE", 0},
		{Out, "invite", 180},
		{Out, "INVITE", 200},
		{In, "BYE", 481},
		{In, "XYZZY", 0}, // unknown methods share one label value
		{In, "FOO", 0},
		{In, "INVITE", 999},
	}
	for _, tt := range tests {
		m.SIPMessage(tt.dir, tt.method, tt.code)
	}
	checks := []struct {
		name string
		got  float64
		want float64
	}{
		{"in invite", testutil.ToFloat64(m.sipRequests.WithLabelValues(In, "INVITE")), 1},
		{"out invite", testutil.ToFloat64(m.sipRequests.WithLabelValues(Out, "INVITE")), 1},
		{"out 1xx", testutil.ToFloat64(m.sipResponses.WithLabelValues(Out, "INVITE", "1xx")), 1},
		{"out 2xx", testutil.ToFloat64(m.sipResponses.WithLabelValues(Out, "INVITE", "2xx")), 1},
		{"in 4xx bye", testutil.ToFloat64(m.sipResponses.WithLabelValues(In, "BYE", "4xx")), 1},
		{"other method", testutil.ToFloat64(m.sipRequests.WithLabelValues(In, "other")), 2},
		{"bad class", testutil.ToFloat64(m.sipResponses.WithLabelValues(In, "INVITE", "other")), 1},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	if n := testutil.CollectAndCount(m.sipRequests); n != 3 {
		t.Errorf("%d request series, want 3", n)
	}
}

func TestOpsMetrics(t *testing.T) {
	m := newMetrics(t, Sources{})
	m.PolicyRejected("ratelimit", "too_many_requests")
	m.PolicyRejected("ratelimit", "too_many_requests")
	m.TrunkChanged("pbx", false)
	m.TrunkChanged("pbx", true)
	m.Reloaded(true)
	m.Reloaded(false)
	m.SetDraining(true)
	checks := []struct {
		name string
		got  float64
		want float64
	}{
		{"policy", testutil.ToFloat64(m.policyRejections.WithLabelValues("ratelimit", "too_many_requests")), 2},
		{"trunk down", testutil.ToFloat64(m.trunkTransitions.WithLabelValues("pbx", "down")), 1},
		{"trunk up", testutil.ToFloat64(m.trunkTransitions.WithLabelValues("pbx", "up")), 1},
		{"reload ok", testutil.ToFloat64(m.reloads.WithLabelValues("ok")), 1},
		{"reload error", testutil.ToFloat64(m.reloads.WithLabelValues("error")), 1},
		{"draining", testutil.ToFloat64(m.draining), 1},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	if testutil.ToFloat64(m.lastReload) < float64(time.Now().Add(-time.Minute).Unix()) {
		t.Error("last reload time not set")
	}
}

func TestInvalidLabelDoesNotPanic(t *testing.T) {
	m := newMetrics(t, Sources{})
	m.CallAnswered("bad\xff")
	m.PolicyRejected("x", "\xfe")
	if n := testutil.CollectAndCount(m.callsAnswered); n != 0 {
		t.Errorf("%d series for an invalid label", n)
	}
}

func TestNilMetrics(t *testing.T) {
	var m *Metrics
	m.CallStarted("udp")
	m.CallAnswered("x")
	m.CallEnded(Call{})
	m.SIPMessage(In, "INVITE", 0)
	m.PolicyRejected("a", "b")
	m.TrunkChanged("x", true)
	m.Reloaded(true)
	m.SetDraining(true)
	if m.Registry() != nil {
		t.Error("nil Metrics has a registry")
	}
}

func TestScrapeSources(t *testing.T) {
	src := Sources{
		ActiveCalls:   func() int { return 3 },
		Transactions:  func() int { return 7 },
		MediaSessions: func() int { return 2 },
		MediaRelayed:  func() MediaRelayed { return MediaRelayed{RTP: 40000, RTCP: 12} },
		Registrations: func() int { return 5 },
		Server:        func() ServerStats { return ServerStats{BadMessages: 4, NoDialog: 1} },
		Transport: func() TransportStats {
			return TransportStats{SendErrors: 2, Dropped: map[string]uint64{"oversize": 1},
				Open: map[string]int{"ws": 4, "wss": 6, "tcp": 0}}
		},
		Trunks: func() []TrunkState { return []TrunkState{{Name: "pbx", Up: true}, {Name: "carrier", Up: false}} },
		CDR: func() CDRStats {
			return CDRStats{Recorded: 10, SpoolErrors: 1, SpoolFailing: true, Backlog: 2, Dropped: 0,
				Writers: []CDRWriterStats{{Name: "jsonl", Delivered: 9, Pending: 1, Failures: 3, Failing: true, Quarantined: 2}}}
		},
		HEP:         func() HEPStats { return HEPStats{Sent: 8, Dropped: 1} },
		Transcoding: func() TranscodingStats { return TranscodingStats{Active: 2, Total: 17} },
		Bans:        func() BanStats { return BanStats{Active: 6, Policy: 5, Admin: 2} },
		WebRTC:      func() map[string]uint64 { return map[string]uint64{"not_ready": 3, "rtp_in": 900} },
		Overload: func() OverloadStats {
			return OverloadStats{Overloaded: true, Shed: 0.5, StandingDelay: 30 * time.Millisecond, Refused: 12,
				WaitBounds: []float64{0.01, 0.1}, WaitCounts: []uint64{5, 3, 2}, WaitSum: 2 * time.Second}
		},
	}
	text := scrapeText(t, newMetrics(t, src))
	for _, want := range []string{
		"sbc_calls_active 3", "sbc_sip_transactions 7", "sbc_media_sessions 2", "sbc_registrations 5",
		`sbc_media_relayed_packets_total{kind="rtp"} 40000`, `sbc_media_relayed_packets_total{kind="rtcp"} 12`,
		"sbc_sip_bad_messages_total 4", "sbc_sip_no_dialog_total 1", "sbc_sip_send_errors_total 2",
		`sbc_sip_transport_dropped_total{reason="oversize"} 1`,
		`sbc_sip_connections{transport="ws"} 4`, `sbc_sip_connections{transport="wss"} 6`,
		`sbc_trunk_up{trunk="pbx"} 1`, `sbc_trunk_up{trunk="carrier"} 0`,
		"sbc_cdr_records_total 10", "sbc_cdr_spool_errors_total 1", "sbc_cdr_spool_failing 1", "sbc_cdr_backlog 2",
		"sbc_cdr_dropped_total 0",
		`sbc_cdr_writer_delivered_total{writer="jsonl"} 9`, `sbc_cdr_writer_queue_depth{writer="jsonl"} 1`,
		`sbc_cdr_writer_errors_total{writer="jsonl"} 3`, `sbc_cdr_writer_failing{writer="jsonl"} 1`,
		`sbc_cdr_quarantined_total{writer="jsonl"} 2`,
		`sbc_hep_packets_total{result="sent"} 8`, `sbc_hep_packets_total{result="dropped"} 1`,
		"sbc_overloaded 1", "sbc_overload_shed_ratio 0.5", "sbc_sip_standing_delay_seconds 0.03",
		"sbc_overload_refused_total 12",
		"sbc_transcoded_calls 2", "sbc_transcoded_calls_total 17",
		`sbc_sip_queue_delay_seconds_bucket{le="0.01"} 5`, `sbc_sip_queue_delay_seconds_bucket{le="0.1"} 8`,
		`sbc_sip_queue_delay_seconds_bucket{le="+Inf"} 10`, "sbc_sip_queue_delay_seconds_sum 2",
		"sbc_sip_queue_delay_seconds_count 10",
		"sbc_bans 6", `sbc_bans_added_total{origin="policy"} 5`, `sbc_bans_added_total{origin="admin"} 2`,
		`sbc_webrtc_packets_total{kind="not_ready"} 3`, `sbc_webrtc_packets_total{kind="rtp_in"} 900`,
		"go_goroutines", "process_start_time_seconds",
	} {
		if !strings.Contains(text, want+"\n") && !strings.Contains(text, want+" ") {
			t.Errorf("scrape lacks %q", want)
		}
	}
}

func TestScrapeWithoutSources(t *testing.T) {
	text := scrapeText(t, newMetrics(t, Sources{}))
	if strings.Contains(text, "sbc_calls_active") || strings.Contains(text, "sbc_trunk_up") {
		t.Errorf("metrics of unset sources appear:\n%s", text)
	}
}

func TestConcurrentUse(t *testing.T) {
	m := newMetrics(t, Sources{ActiveCalls: func() int { return 1 }})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 100 {
				m.CallStarted("udp")
				m.SIPMessage(In, "INVITE", 100)
				m.CallEnded(Call{Cause: "caller_bye", Side: "a"})
			}
		})
	}
	wg.Go(func() {
		for range 10 {
			rec := httptest.NewRecorder()
			m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
			if rec.Code != 200 {
				t.Errorf("scrape status %d", rec.Code)
			}
		}
	})
	wg.Wait()
	if got := testutil.ToFloat64(m.callsStarted.WithLabelValues("udp")); got != 400 {
		t.Errorf("started %v, want 400", got)
	}
}

func scrapeText(t *testing.T, m *Metrics) string {
	t.Helper()
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	res, err := srv.Client().Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != 200 {
		t.Fatalf("scrape status %d: %s", res.StatusCode, b)
	}
	return string(b)
}

// BenchmarkSIPMessage counts the messages of a call (requests and
// responses both ways), as the SBC does for every message:
//
//	go test -run '^$' -bench SIPMessage -benchmem ./internal/metrics/
func BenchmarkSIPMessage(b *testing.B) {
	m, err := New(Sources{})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		m.SIPMessage(In, "INVITE", 0)
		m.SIPMessage(Out, "INVITE", 100)
		m.SIPMessage(Out, "INVITE", 200)
		m.SIPMessage(In, "ACK", 0)
		m.SIPMessage(In, "BYE", 0)
		m.SIPMessage(Out, "BYE", 200)
	}
}
