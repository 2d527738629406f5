package security

import (
	"crypto/tls"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ghettovoice/gosip/sip"

	"github.com/sbc-project/sbc/b2bua/outcome"
	"github.com/sbc-project/sbc/b2bua/routing"
	"github.com/sbc-project/sbc/b2bua/sipmsg"
	"github.com/sbc-project/sbc/internal/config"
	"github.com/sbc-project/sbc/test/e2e"
)

// TLS trunks by host name (issue 13, point 10): the SBC verifies a trunk's
// certificate against the host of the trunk URI with the trunk's own CA
// bundle, presents its client certificate when asked, and a trunk that
// fails verification gets no call: the caller gets 503, the CDR says why,
// and the OPTIONS prober marks the trunk down.

func TestSecurityTLSTrunk(t *testing.T) {
	pki := e2e.NewTLSTrunkPKI(t)
	tests := []struct {
		name       string
		cert       tls.Certificate // the UAS's
		mutual     bool            // the UAS requires a client certificate from pki.clients
		host       string          // host of the trunk URI
		clientCert bool            // the trunk has the SBC's client certificate
		fail       string          // what the probe error says; "" when the call goes through
	}{
		{name: "dns name", cert: pki.CA.Issue(t, "pbx", "localhost"), host: "localhost"},
		{name: "ip literal", cert: pki.CA.Issue(t, "pbx", "127.0.0.1"), host: "127.0.0.1"},
		{name: "certificate for another name", cert: pki.CA.Issue(t, "pbx", "pbx.example"), host: "localhost",
			fail: "valid for pbx.example, not localhost"},
		{name: "untrusted ca", cert: pki.Rogue.Issue(t, "pbx", "localhost"), host: "localhost", fail: "unknown authority"},
		{name: "mutual tls", cert: pki.CA.Issue(t, "pbx", "localhost"), host: "localhost", mutual: true, clientCert: true},
		{name: "mutual tls without a client certificate", cert: pki.CA.Issue(t, "pbx", "localhost"), host: "localhost",
			mutual: true, fail: "client certificate"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			conf := &tls.Config{Certificates: []tls.Certificate{tc.cert}}
			if tc.mutual {
				conf.ClientAuth, conf.ClientCAs = tls.RequireAndVerifyClientCert, pki.Clients.Pool()
			}
			uas := e2e.StartTLSUAS(t, conf)
			sinks := e2e.NewCDRSinks(t, "")
			trunkTLS := config.TrunkTLS{CAFile: pki.CAFile}
			if tc.clientCert {
				trunkTLS.CertFile, trunkTLS.KeyFile = pki.CertFile, pki.KeyFile
			}
			// Calls go to trunk "calls", never probed; trunk "probed" is the
			// same UAS under OPTIONS probes.
			sbc := e2e.StartSBC(t, e2e.SBCOptions{
				Trunks: []e2e.TrunkSpec{{Name: "calls", Addr: tc.host, Port: uas.Port, Transport: "tls"},
					{Name: "probed", Addr: tc.host, Port: uas.Port, Transport: "tls", Options: 200 * time.Millisecond}},
				Mutate: func(c *config.Config) {
					sinks.Apply(c)
					c.SIP.Listeners = append(c.SIP.Listeners, config.Listener{Name: "tls", Transport: "tls", Addr: "127.0.0.1:0"})
					c.Trunks[0].TLS, c.Trunks[1].TLS = trunkTLS, trunkTLS
					// REGISTERs from the WebSocket are relayed to the trunk.
					all := c.Routes[1]
					all.Trunks = []string{"calls"}
					reg := config.Route{Name: "reg", Match: config.Match{Listener: "ws"}, Target: config.TargetTrunks, Trunks: []string{"calls"}}
					c.Routes = []config.Route{c.Routes[0], reg, all}
				},
			})
			probed, _ := sbc.App.Routes().Trunk("probed")
			e2e.WaitFor(t, 10*time.Second, "a probe of trunk probed", func() bool { return !probed.State().LastProbe.IsZero() })

			ua := e2e.DialUA(t, "UDP", sbc.UDP.String())
			call := ua.Invite("1000", "")
			res := ua.ExpectFinal()
			if tc.fail != "" {
				tlsRefused(t, tc.fail, res, uas, probed.State())
				call.AckFailure(sipmsg.ToTag(res))
			} else {
				if res.StatusCode() != 200 {
					t.Fatalf("call through the TLS trunk: %d %s", res.StatusCode(), res.Reason())
				}
				call.Answered(res)
				call.Ack()
				call.Bye()
				ua.Expect(200)
				e2e.WaitFor(t, 5*time.Second, "INVITE, ACK and BYE at the trunk", func() bool {
					return strings.Join(uas.Methods(), " ") == "INVITE ACK BYE"
				})
				tlsAccepted(t, tc.host, tc.mutual, uas, probed.State())
			}
			// A relayed REGISTER goes the same way, or nowhere.
			web := e2e.DialUA(t, "WS", sbc.WS.String())
			reg := web.Register("alice", "secret", 300)
			switch {
			case tc.fail == "" && reg.StatusCode() != 200:
				t.Errorf("REGISTER relayed to the TLS trunk: %d %s, want 200", reg.StatusCode(), reg.Reason())
			case tc.fail == "" && !slices.Contains(uas.Methods(), "REGISTER"):
				t.Errorf("the trunk got %v, no REGISTER", uas.Methods())
			case tc.fail != "" && (reg.StatusCode() != 503 || len(uas.Methods()) > 0):
				t.Errorf("REGISTER toward the unverified trunk: %d %s, trunk got %v; want 503 and nothing sent",
					reg.StatusCode(), reg.Reason(), uas.Methods())
			}
			if tc.fail == "" {
				tlsAccepted(t, tc.host, tc.mutual, uas, probed.State())
			}
			sbc.WaitIdleProbing(t, true)
			if err := sbc.App.Close(); err != nil {
				t.Fatal(err)
			}
			recs := sinks.Records(t)
			wantCause := "caller_bye"
			if tc.fail != "" {
				wantCause = "trunk_tls_failed"
			}
			if len(recs) != 1 || recs[0].HangupCause != wantCause || recs[0].Trunk != "calls" {
				t.Fatalf("CDRs %+v, want one with hangup_cause %s for trunk calls", recs, wantCause)
			}
			if tc.fail != "" && (recs[0].Disposition != outcome.Failed || recs[0].HangupSide != "sbc" || recs[0].SIPCode != 503) {
				t.Fatalf("CDR %+v: want FAILED 503 by the sbc", recs[0])
			}
		})
	}
}

// tlsAccepted checks what the UAS saw of a call that went through.
func tlsAccepted(t *testing.T, host string, mutual bool, uas *e2e.TLSUAS, probe routing.TrunkState) {
	t.Helper()
	sni, client := uas.Seen()
	wantSNI := host
	if _, err := netip.ParseAddr(host); err == nil {
		wantSNI = "" // no SNI for an IP address (RFC 6066 section 3)
	}
	for _, name := range sni {
		if name != wantSNI {
			t.Errorf("the trunk was asked for server name %q, want %q", name, wantSNI)
		}
	}
	if mutual && (len(client) == 0 || client[0] != "sbc.example") {
		t.Errorf("the trunk saw client certificates %q, want sbc.example", client)
	}
	if !probe.Up || probe.LastError != "" {
		t.Errorf("probed trunk: up=%v error %q, want up", probe.Up, probe.LastError)
	}
}

// tlsRefused checks a call refused because the trunk failed verification.
func tlsRefused(t *testing.T, reason string, res sip.Response, uas *e2e.TLSUAS, probe routing.TrunkState) {
	t.Helper()
	if res.StatusCode() != 503 || !strings.Contains(sipmsg.Header(res, "Warning"), "TLS") {
		t.Errorf("caller got %d %s (Warning %q), want 503 with a Warning about TLS", res.StatusCode(), res.Reason(),
			sipmsg.Header(res, "Warning"))
	}
	if m := uas.Methods(); len(m) > 0 {
		t.Errorf("the unverified trunk received %v", m)
	}
	if probe.Up || !strings.Contains(probe.LastError, reason) {
		t.Errorf("probed trunk: up=%v error %q, want down saying %q", probe.Up, probe.LastError, reason)
	}
}
