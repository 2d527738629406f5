package e2e

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
)

// TLS trunks by host name (issue 13, point 10): the SBC verifies a trunk's
// certificate against the host of the trunk URI with the trunk's own CA
// bundle, presents its client certificate when asked, and a trunk that
// fails verification gets no call: the caller gets 503, the CDR says why,
// and the OPTIONS prober marks the trunk down.

func TestSecurityTLSTrunk(t *testing.T) {
	pki := newTLSTrunkPKI(t)
	tests := []struct {
		name       string
		cert       tls.Certificate // the UAS's
		mutual     bool            // the UAS requires a client certificate from pki.clients
		host       string          // host of the trunk URI
		clientCert bool            // the trunk has the SBC's client certificate
		fail       string          // what the probe error says; "" when the call goes through
	}{
		{name: "dns name", cert: pki.ca.Issue(t, "pbx", "localhost"), host: "localhost"},
		{name: "ip literal", cert: pki.ca.Issue(t, "pbx", "127.0.0.1"), host: "127.0.0.1"},
		{name: "certificate for another name", cert: pki.ca.Issue(t, "pbx", "pbx.example"), host: "localhost",
			fail: "valid for pbx.example, not localhost"},
		{name: "untrusted ca", cert: pki.rogue.Issue(t, "pbx", "localhost"), host: "localhost", fail: "unknown authority"},
		{name: "mutual tls", cert: pki.ca.Issue(t, "pbx", "localhost"), host: "localhost", mutual: true, clientCert: true},
		{name: "mutual tls without a client certificate", cert: pki.ca.Issue(t, "pbx", "localhost"), host: "localhost",
			mutual: true, fail: "client certificate"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			conf := &tls.Config{Certificates: []tls.Certificate{tc.cert}}
			if tc.mutual {
				conf.ClientAuth, conf.ClientCAs = tls.RequireAndVerifyClientCert, pki.clients.Pool()
			}
			uas := startTLSUAS(t, conf)
			sinks := newCDRSinks(t, "")
			trunkTLS := config.TrunkTLS{CAFile: pki.caFile}
			if tc.clientCert {
				trunkTLS.CertFile, trunkTLS.KeyFile = pki.certFile, pki.keyFile
			}
			// Calls go to trunk "calls", never probed; trunk "probed" is the
			// same UAS under OPTIONS probes.
			sbc := startSBC(t, sbcOptions{
				trunks: []trunkSpec{{name: "calls", addr: tc.host, port: uas.port, transport: "tls"},
					{name: "probed", addr: tc.host, port: uas.port, transport: "tls", options: 200 * time.Millisecond}},
				mutate: func(c *config.Config) {
					sinks.apply(c)
					c.SIP.Listeners = append(c.SIP.Listeners, config.Listener{Name: "tls", Transport: "tls", Addr: "127.0.0.1:0"})
					c.Trunks[0].TLS, c.Trunks[1].TLS = trunkTLS, trunkTLS
					// REGISTERs from the WebSocket are relayed to the trunk.
					all := c.Routes[1]
					all.Trunks = []string{"calls"}
					reg := config.Route{Name: "reg", Match: config.Match{Listener: "ws"}, Target: config.TargetTrunks, Trunks: []string{"calls"}}
					c.Routes = []config.Route{c.Routes[0], reg, all}
				},
			})
			probed, _ := sbc.app.Routes().Trunk("probed")
			waitFor(t, 10*time.Second, "a probe of trunk probed", func() bool { return !probed.State().LastProbe.IsZero() })

			ua := dialUA(t, "UDP", sbc.udp.String())
			call := ua.invite("1000", "")
			res := ua.expectFinal()
			if tc.fail != "" {
				tlsRefused(t, tc.fail, res, uas, probed.State())
				call.ackFailure(sipmsg.ToTag(res))
			} else {
				if res.StatusCode() != 200 {
					t.Fatalf("call through the TLS trunk: %d %s", res.StatusCode(), res.Reason())
				}
				call.answered(res)
				call.ack()
				call.bye()
				ua.expect(200)
				waitFor(t, 5*time.Second, "INVITE, ACK and BYE at the trunk", func() bool {
					return strings.Join(uas.methods(), " ") == "INVITE ACK BYE"
				})
				tlsAccepted(t, tc.host, tc.mutual, uas, probed.State())
			}
			// A relayed REGISTER goes the same way, or nowhere.
			web := dialUA(t, "WS", sbc.ws.String())
			reg := web.register("alice", "secret", 300)
			switch {
			case tc.fail == "" && reg.StatusCode() != 200:
				t.Errorf("REGISTER relayed to the TLS trunk: %d %s, want 200", reg.StatusCode(), reg.Reason())
			case tc.fail == "" && !slices.Contains(uas.methods(), "REGISTER"):
				t.Errorf("the trunk got %v, no REGISTER", uas.methods())
			case tc.fail != "" && (reg.StatusCode() != 503 || len(uas.methods()) > 0):
				t.Errorf("REGISTER toward the unverified trunk: %d %s, trunk got %v; want 503 and nothing sent",
					reg.StatusCode(), reg.Reason(), uas.methods())
			}
			if tc.fail == "" {
				tlsAccepted(t, tc.host, tc.mutual, uas, probed.State())
			}
			sbc.waitIdleProbing(t, true)
			if err := sbc.app.Close(); err != nil {
				t.Fatal(err)
			}
			recs := sinks.records(t)
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
func tlsAccepted(t *testing.T, host string, mutual bool, uas *tlsUAS, probe routing.TrunkState) {
	t.Helper()
	sni, client := uas.seen()
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
func tlsRefused(t *testing.T, reason string, res sip.Response, uas *tlsUAS, probe routing.TrunkState) {
	t.Helper()
	if res.StatusCode() != 503 || !strings.Contains(sipmsg.Header(res, "Warning"), "TLS") {
		t.Errorf("caller got %d %s (Warning %q), want 503 with a Warning about TLS", res.StatusCode(), res.Reason(),
			sipmsg.Header(res, "Warning"))
	}
	if m := uas.methods(); len(m) > 0 {
		t.Errorf("the unverified trunk received %v", m)
	}
	if probe.Up || !strings.Contains(probe.LastError, reason) {
		t.Errorf("probed trunk: up=%v error %q, want down saying %q", probe.Up, probe.LastError, reason)
	}
}
