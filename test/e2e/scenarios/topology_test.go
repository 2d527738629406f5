package scenarios

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sbc-project/sbc/internal/config"
	"github.com/sbc-project/sbc/test/e2e"
)

var (
	reTag    = regexp.MustCompile(`(?i);tag=([^;>\s,]+)`)
	reBranch = regexp.MustCompile(`(?i);branch=([^;>\s,]+)`)
	reOrigin = regexp.MustCompile(`(?m)^o=(\S+ \S+)`)
)

// identifiers returns every Call-ID, tag, branch and SDP origin in a log.
func identifiers(log string) map[string]string {
	ids := map[string]string{}
	for name, re := range map[string]*regexp.Regexp{"Call-ID": e2e.ReCallID, "tag": reTag, "branch": reBranch, "o=": reOrigin} {
		for _, m := range re.FindAllStringSubmatch(log, -1) {
			ids[m[1]] = name
		}
	}
	return ids
}

// TestTopologyHiding places a call from a WebSocket client through the SBC
// to SIPp and checks that neither far end sees any address, port, Call-ID,
// tag, branch or stripped header of the other.
func TestTopologyHiding(t *testing.T) {
	e2e.NeedSIPp(t)
	for _, kind := range []string{"WS", "UDP"} {
		t.Run(kind, func(t *testing.T) {
			port, wait := e2e.StartUAS(t, 1, "u1")
			sbc := e2e.StartSBC(t, e2e.SBCOptions{Trunks: []e2e.TrunkSpec{{Name: "pbx", Addr: e2e.PBXIP(), Port: port}}})
			addr := sbc.WS.String()
			if kind == "UDP" {
				addr = sbc.UDP.String()
			}
			ua := e2e.DialUA(t, kind, addr)
			// The caller is a trusted source here (the harness trusts
			// loopback), so a P-Asserted-Identity of its own would pass as
			// the trust domain's assertion (security_identity_test.go); a
			// P-Preferred-Identity never does.
			call := ua.Invite("1000", "X-Secret-Route: internal-42\nP-Preferred-Identity: <sip:ceo@caller.example>\nRecord-Route: <sip:10.9.8.7;lr>\n")
			call.Answered(ua.Expect(200))
			call.Ack()
			time.Sleep(100 * time.Millisecond)
			call.Bye()
			ua.Expect(200)
			uasLog := wait()
			uaLog := strings.Join(ua.Received, "\n----\n")
			sbc.WaitIdle(t)

			if !strings.Contains(uasLog, "INVITE") || !strings.Contains(uasLog, "BYE") {
				t.Fatalf("uas log incomplete:\n%s", uasLog)
			}
			uaHost := ua.Host
			mustNotContain(t, "uas saw", uasLog, map[string]string{
				uaHost:            "caller's Via/Contact host",
				e2e.CallerIP():    "caller's address",
				"caller.example":  "caller's domain",
				"SecretPhone":     "caller's User-Agent",
				"X-Secret-Route":  "non-whitelisted header",
				"internal-42":     "non-whitelisted header value",
				"10.9.8.7":        "caller-side Record-Route",
				"49170":           "caller's media port",
				"alice 289084452": "caller's SDP origin",
			})
			mustNotContain(t, "caller saw", uaLog, map[string]string{
				e2e.PBXIP():          "callee's address",
				":" + e2e.Itoa(port): "callee's SIP port",
			})
			for id, what := range identifiers(uaLog) {
				if strings.Contains(uasLog, id) {
					t.Errorf("uas saw the caller-side %s %q", what, id)
				}
			}
			for id, what := range identifiers(uasLog) {
				if strings.Contains(uaLog, id) {
					t.Errorf("caller saw the callee-side %s %q", what, id)
				}
			}
		})
	}
}

func mustNotContain(t *testing.T, who, log string, needles map[string]string) {
	t.Helper()
	for n, what := range needles {
		if strings.Contains(log, n) {
			t.Errorf("%s %s (%q)", who, what, n)
		}
	}
}

// TestHeaderWhitelist shows the capture above would catch a header: one on
// the global whitelist and one passed per trunk do reach the callee, and
// the rest still does not. The trusted caller's P-Asserted-Identity
// reaches it too, as the trust domain's assertion (no whitelist may name
// identity headers any more).
func TestHeaderWhitelist(t *testing.T) {
	e2e.NeedSIPp(t)
	port, wait := e2e.StartUAS(t, 1, "u1")
	sbc := e2e.StartSBC(t, e2e.SBCOptions{
		Trunks: []e2e.TrunkSpec{{Name: "pbx", Addr: e2e.PBXIP(), Port: port}},
		Mutate: func(c *config.Config) {
			c.SIP.HeaderWhitelist = []string{"X-Account"}
			c.Trunks[0].PassHeaders = []string{"X-Carrier-Ref"}
		},
	})
	ua := e2e.DialUA(t, "UDP", sbc.UDP.String())
	call := ua.Invite("1000", "X-Account: acct-7\nX-Carrier-Ref: ref-9\nP-Asserted-Identity: <sip:+15551234@caller.example>\nX-Secret-Route: internal-42\n")
	call.Answered(ua.Expect(200))
	call.Ack()
	call.Bye()
	ua.Expect(200)
	uasLog := wait()
	sbc.WaitIdle(t)
	for _, want := range []string{"X-Account: acct-7", "X-Carrier-Ref: ref-9", "P-Asserted-Identity: <sip:+15551234@caller.example>"} {
		if !strings.Contains(uasLog, want) {
			t.Errorf("callee did not get whitelisted %q", want)
		}
	}
	if strings.Contains(uasLog, "internal-42") {
		t.Error("callee got a header that is not whitelisted")
	}
}
