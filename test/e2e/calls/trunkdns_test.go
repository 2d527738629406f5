package calls

import (
	"context"
	"crypto/tls"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sbc-project/sbc/b2bua/routing/dnsres/dnstest"
	"github.com/sbc-project/sbc/b2bua/sipmsg"
	"github.com/sbc-project/sbc/internal/config"
	"github.com/sbc-project/sbc/test/e2e"
	"github.com/sbc-project/sbc/test/sipptest"
)

// Addresses of the DNS tests.
var (
	dnsServerIP = e2e.IP(53)
	deadIP      = e2e.IP(20) // priority 10: answers 503
	liveIP      = e2e.IP(21) // priority 20: answers
	spreadIP1   = e2e.IP(23)
	spreadIP2   = e2e.IP(24)
	dnsCallerIP = e2e.IP(22)
)

// TestTrunkSRV: a trunk named by a DNS name only (sip:carrier.test) is
// located by RFC 3263 through the test's DNS server: NAPTR picks UDP, SRV
// gives a target at priority 10 that answers 503 and one at priority 20
// that answers, and the call lands on the second within the one attempt.
// Then two targets of equal priority and weight share 20 calls.
func TestTrunkSRV(t *testing.T) {
	e2e.NeedSIPp(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dead := sipptest.Start(ctx, t, sipptest.Options{Scenario: sipptest.ScenarioPath("uas_503.xml"), LocalIP: deadIP, Timeout: 30 * time.Second})
	live := sipptest.Start(ctx, t, sipptest.Options{Scenario: sipptest.ScenarioPath("call_caller_bye_uas.xml"), LocalIP: liveIP, Timeout: 30 * time.Second})
	const spreadCalls = 20
	spread := []*sipptest.Proc{
		sipptest.Start(ctx, t, sipptest.Options{Scenario: sipptest.ScenarioPath("call_caller_bye_uas.xml"), LocalIP: spreadIP1,
			Calls: sipptest.Unlimited, Timeout: 30 * time.Second}),
		sipptest.Start(ctx, t, sipptest.Options{Scenario: sipptest.ScenarioPath("call_caller_bye_uas.xml"), LocalIP: spreadIP2,
			Calls: sipptest.Unlimited, Timeout: 30 * time.Second}),
	}
	srv := dnstest.Start(t, dnsServerIP)
	port := func(p *sipptest.Proc) string { return strconv.Itoa(int(p.Addr().Port())) }
	srv.Set(t,
		`carrier.test. 60 IN NAPTR 10 10 "s" "SIP+D2U" "" _sip._udp.carrier.test.`,
		"_sip._udp.carrier.test. 60 IN SRV 20 0 "+port(live)+" b.carrier.test.",
		"_sip._udp.carrier.test. 60 IN SRV 10 0 "+port(dead)+" a.carrier.test.",
		"a.carrier.test. 60 IN A "+deadIP,
		"b.carrier.test. 60 IN A "+liveIP,
		"_sip._udp.spread.test. 60 IN SRV 10 50 "+port(spread[0])+" s1.spread.test.",
		"_sip._udp.spread.test. 60 IN SRV 10 50 "+port(spread[1])+" s2.spread.test.",
		"s1.spread.test. 60 IN A "+spreadIP1,
		"s2.spread.test. 60 IN A "+spreadIP2,
	)
	sbc := e2e.StartSBC(t, e2e.SBCOptions{Mutate: func(c *config.Config) {
		c.DNS.Servers = []string{srv.Addr}
		c.Trunks = []config.Trunk{
			{Name: "carrier", URI: "sip:carrier.test", FailureThreshold: 1, OptionsTimeout: time.Second},
			{Name: "spread", URI: "sip:spread.test;transport=udp", FailureThreshold: 1, OptionsTimeout: time.Second},
		}
		c.Routes = []config.Route{
			{Name: "spread", Match: config.Match{RURIUser: "^spread$"}, Target: config.TargetTrunks, Trunks: []string{"spread"},
				TrustedSources: []string{e2e.Subnet()}},
			{Name: "carrier", Target: config.TargetTrunks, Trunks: []string{"carrier"}, TrustedSources: []string{e2e.Subnet()}},
		}
	}})
	uac := sipptest.Start(ctx, t, sipptest.Options{Scenario: sipptest.ScenarioPath("call_caller_bye_uac.xml"),
		LocalIP: dnsCallerIP, Remote: sbc.UDP.String(), Timeout: 20 * time.Second, Args: []string{"-s", "bob", "-d", "200"}})
	if err := uac.Wait().Check(1); err != nil {
		t.Errorf("call through the SRV targets: %v", err)
	}
	if err := dead.Wait().Check(1); err != nil {
		t.Errorf("priority 10 target: %v", err)
	}
	if err := live.Wait().Check(1); err != nil {
		t.Errorf("priority 20 target: %v", err)
	}
	if srv.Queries("carrier.test", dns.TypeNAPTR) == 0 || srv.Queries("_sip._udp.carrier.test", dns.TypeSRV) == 0 {
		t.Error("the trunk was not located through NAPTR and SRV")
	}

	many := sipptest.Start(ctx, t, sipptest.Options{Scenario: sipptest.ScenarioPath("call_caller_bye_uac.xml"),
		LocalIP: dnsCallerIP, Remote: sbc.UDP.String(), Calls: spreadCalls, Rate: 20, Timeout: 25 * time.Second,
		Args: []string{"-s", "spread", "-d", "100"}})
	if err := many.Wait().Check(spreadCalls); err != nil {
		t.Fatalf("calls to equal-weight targets: %v", err)
	}
	sbc.WaitIdle(t)
	total := 0
	for i, p := range spread {
		n := p.Stop().Stats.Successful
		total += n
		// Each target gets a call with probability 1 - 2^-19 at 50/50.
		if n == 0 {
			t.Errorf("equal-weight target %d got none of %d calls", i+1, spreadCalls)
		}
	}
	if total != spreadCalls {
		t.Errorf("targets answered %d calls, want %d", total, spreadCalls)
	}
}

// TestTrunkSRVTLS: a sips: trunk located through SRV is verified against
// the domain of its URI, never the SRV target (RFC 5922 section 4): a
// certificate for carrier.test passes with SNI carrier.test, one for the
// SRV target's name only is refused.
func TestTrunkSRVTLS(t *testing.T) {
	pki := e2e.NewTLSTrunkPKI(t)
	tests := []struct {
		name string
		cert tls.Certificate
		ok   bool
	}{
		{"certificate for the URI's domain", pki.CA.Issue(t, "carrier", "carrier.test"), true},
		{"certificate for the SRV target only", pki.CA.Issue(t, "edge", "edge.provider.test"), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			uas := e2e.StartTLSUAS(t, &tls.Config{Certificates: []tls.Certificate{tc.cert}})
			srv := dnstest.Start(t, dnsServerIP)
			srv.Set(t,
				"_sips._tcp.carrier.test. 60 IN SRV 10 0 "+strconv.Itoa(uas.Port)+" edge.provider.test.",
				"edge.provider.test. 60 IN A 127.0.0.1",
			)
			sbc := e2e.StartSBC(t, e2e.SBCOptions{Mutate: func(c *config.Config) {
				c.DNS.Servers = []string{srv.Addr}
				c.SIP.Listeners = append(c.SIP.Listeners, config.Listener{Name: "tls", Transport: "tls", Addr: "127.0.0.1:0"})
				c.Trunks = []config.Trunk{{Name: "carrier", URI: "sips:carrier.test", FailureThreshold: 1, OptionsTimeout: time.Second,
					TLS: config.TrunkTLS{CAFile: pki.CAFile}}}
				c.Routes = []config.Route{{Name: "out", Target: config.TargetTrunks, Trunks: []string{"carrier"},
					TrustedSources: []string{"127.0.0.0/8"}}}
			}})
			ua := e2e.DialUA(t, "UDP", sbc.UDP.String())
			call := ua.Invite("1000", "")
			res := ua.ExpectFinal()
			sni, _ := uas.Seen()
			if !tc.ok {
				if res.StatusCode() != 503 || len(uas.Methods()) > 0 {
					t.Fatalf("call to a trunk whose certificate names only the SRV target: %d %s, trunk got %v; want 503 and nothing sent",
						res.StatusCode(), res.Reason(), uas.Methods())
				}
				call.AckFailure(sipmsg.ToTag(res))
				return
			}
			if res.StatusCode() != 200 {
				t.Fatalf("call through the SRV-located TLS trunk: %d %s", res.StatusCode(), res.Reason())
			}
			call.Answered(res)
			call.Ack()
			call.Bye()
			ua.Expect(200)
			if len(sni) == 0 || slices.ContainsFunc(sni, func(s string) bool { return s != "carrier.test" }) {
				t.Errorf("SNI %v, want carrier.test", sni)
			}
			sbc.WaitIdle(t)
		})
	}
}
