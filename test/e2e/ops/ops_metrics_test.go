package ops

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/sbc-project/sbc/b2bua/sipmsg"
	"github.com/sbc-project/sbc/internal/config"
	"github.com/sbc-project/sbc/test/e2e"
	"github.com/sbc-project/sbc/test/sipptest"
)

// TestMetricsAfterCalls scrapes /metrics after scripted calls and checks
// the counters against what was placed: SIPp calls through a trunk, a
// call to the echo destination with RTP both ways, and a call refused
// for want of a registered user.
func TestMetricsAfterCalls(t *testing.T) {
	sipptest.Require(t)
	const n = 10
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	uas := sipptest.Start(ctx, t, sipptest.Options{Scenario: sipptest.ScenarioPath("call_caller_bye_uas.xml"),
		LocalIP: e2e.PBXIP(), Calls: n, Timeout: 45 * time.Second})
	sbc := e2e.StartSBC(t, e2e.SBCOptions{
		Trunks: []e2e.TrunkSpec{{Name: "pbx", Addr: uas.Addr().Addr().String(), Port: int(uas.Addr().Port())}},
		Mutate: func(c *config.Config) {
			e2e.WithAdmin("")(c)
			ghost := config.Route{Name: "ghost", Match: config.Match{RURIUser: "^ghost$"}, Target: config.TargetRegistered}
			c.Routes = append([]config.Route{ghost}, c.Routes...)
		}})
	api := sbc.Admin(t, "")
	uac := sipptest.Start(ctx, t, sipptest.Options{Scenario: sipptest.ScenarioPath("call_caller_bye_uac.xml"),
		LocalIP: e2e.CallerIP(), Remote: sbc.UDP.String(), Calls: n, Rate: 20, Timeout: 45 * time.Second, Args: []string{"-s", "1000", "-d", "200"}})

	echoCallWithRTP(t, sbc, 5)
	ua := e2e.DialUA(t, "UDP", sbc.UDP.String())
	ghost := ua.Invite("ghost", "")
	res := ua.Expect(480)
	ghost.AckFailure(sipmsg.ToTag(res))

	if err := uac.Wait().Check(n); err != nil {
		t.Fatal(err)
	}
	if err := uas.Wait().Check(n); err != nil {
		t.Fatal(err)
	}
	sbc.WaitCallsIdle(t)

	m := api.Metrics()
	exact := map[string]float64{
		`sbc_calls_started_total{transport="udp"}`:                        n + 2,
		`sbc_calls_answered_total{trunk="pbx"}`:                           n,
		`sbc_calls_answered_total{trunk="echo"}`:                          1,
		`sbc_calls_ended_total{cause="caller_bye",side="a",trunk="pbx"}`:  n,
		`sbc_calls_ended_total{cause="caller_bye",side="a",trunk="echo"}`: 1,
		`sbc_calls_ended_total{cause="no_binding",side="sbc",trunk=""}`:   1,
		`sbc_calls_failed_total{cause="no_binding",trunk=""}`:             1,
		`sbc_call_setup_seconds_count{trunk="pbx"}`:                       n,
		`sbc_call_setup_seconds_count{trunk="echo"}`:                      1,
		`sbc_call_billsec_seconds_count{trunk="pbx"}`:                     n,
		`sbc_calls_active`:                                                     0,
		`sbc_media_sessions`:                                                   0,
		`sbc_media_packets_total{side="a"}`:                                    5,
		`sbc_media_packets_total{side="b"}`:                                    5,
		`sbc_media_bytes_total{side="a"}`:                                      5 * 172,
		`sbc_media_bytes_total{side="b"}`:                                      5 * 172,
		`sbc_media_jitter_milliseconds_count{side="a"}`:                        1,
		`sbc_media_srtp_failures_total{side="a"}`:                              0,
		`sbc_trunk_up{trunk="pbx"}`:                                            1,
		`sbc_cdr_records_total`:                                                n + 2,
		`sbc_cdr_spool_failing`:                                                0,
		`sbc_cdr_dropped_total`:                                                0,
		`sbc_cdr_writer_errors_total{writer="jsonl"}`:                          0,
		`sbc_sip_responses_total{class="4xx",direction="out",method="INVITE"}`: 1,
		`sbc_sip_requests_total{direction="in",method="BYE"}`:                  n + 1,
		`sbc_sip_requests_total{direction="out",method="BYE"}`:                 n + 1,
		`sbc_sip_responses_total{class="2xx",direction="out",method="BYE"}`:    n + 1,
		`sbc_sip_responses_total{class="2xx",direction="in",method="BYE"}`:     n + 1,
		`sbc_sip_bad_messages_total`:                                           0,
		`sbc_sip_connections{transport="ws"}`:                                  0,
		`sbc_registrations`:                                                    0,
		`sbc_draining`:                                                         0,
	}
	// Retransmissions over UDP may add to these.
	atLeast := map[string]float64{
		`sbc_sip_requests_total{direction="in",method="INVITE"}`:               n + 2,
		`sbc_sip_requests_total{direction="out",method="INVITE"}`:              n + 1,
		`sbc_sip_responses_total{class="1xx",direction="out",method="INVITE"}`: n, // the callee's 180; 100 only after 200 ms without it
		`sbc_sip_responses_total{class="2xx",direction="in",method="INVITE"}`:  n + 1,
		`sbc_sip_responses_total{class="2xx",direction="out",method="INVITE"}`: n + 1,
		`sbc_sip_requests_total{direction="in",method="ACK"}`:                  n + 2,
	}
	absent := []string{
		`sbc_calls_failed_total{cause="caller_bye",trunk="pbx"}`, // answered calls do not fail
		`sbc_trunk_transitions_total{state="down",trunk="pbx"}`,
		`sbc_config_reloads_total{result="error"}`,
	}
	present := []string{
		`sbc_cdr_writer_queue_depth{writer="jsonl"}`, `sbc_sip_transactions`, `sbc_config_last_reload_success_timestamp_seconds`,
		`sbc_hep_packets_total{result="sent"}`, `sbc_sip_transport_dropped_total{reason="oversize"}`,
	}
	for series, want := range exact {
		if got, ok := m[series]; !ok || got != want {
			t.Errorf("%s = %v (present %v), want %v", series, got, ok, want)
		}
	}
	for series, want := range atLeast {
		if got, ok := m[series]; !ok || got < want {
			t.Errorf("%s = %v (present %v), want at least %v", series, got, ok, want)
		}
	}
	for _, series := range absent {
		if got, ok := m[series]; ok {
			t.Errorf("%s = %v, want absent", series, got)
		}
	}
	for _, series := range present {
		if _, ok := m[series]; !ok {
			t.Errorf("%s absent", series)
		}
	}
}

// echoCallWithRTP calls the echo destination from a caller with its own
// RTP socket, sends packets RTP packets of 172 bytes and reads each one
// back, then hangs up.
func echoCallWithRTP(t *testing.T, sbc *e2e.SBC, packets int) {
	t.Helper()
	rtp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(e2e.CallerIP())})
	if err != nil {
		t.Fatal(err)
	}
	defer rtp.Close()
	port := rtp.LocalAddr().(*net.UDPAddr).Port
	sdp := fmt.Sprintf("v=0\no=web 1 1 IN IP4 %s\ns=-\nc=IN IP4 %[1]s\nt=0 0\nm=audio %d RTP/AVP 0\na=rtpmap:0 PCMU/8000\na=sendrecv\n", e2e.CallerIP(), port)
	caller := e2e.NewSIPClient(t, "UDP", sbc.UDP.String())
	d := caller.Invite("echo", sdp)
	res := d.Await(1, 10*time.Second, nil)
	if res.StatusCode() != 200 {
		t.Fatalf("echo call answered %d", res.StatusCode())
	}
	d.Established(res)
	d.Ack()
	info, err := e2e.ParseSDPInfo(res.Body())
	if err != nil {
		t.Fatal(err)
	}
	pkt := make([]byte, 172)
	pkt[0] = 0x80
	buf := make([]byte, 1500)
	for i := range packets {
		pkt[3] = byte(i)
		pkt[7] = byte(i * 160)
		if _, err := rtp.WriteToUDP(pkt, info.Addr); err != nil {
			t.Fatal(err)
		}
		_ = rtp.SetReadDeadline(time.Now().Add(2 * time.Second))
		if _, _, err := rtp.ReadFromUDP(buf); err != nil {
			t.Fatalf("rtp packet %d not echoed: %v", i, err)
		}
	}
	d.Bye()
}
