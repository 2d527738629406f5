package scenarios

import (
	"context"
	"testing"
	"time"

	"github.com/sbc-project/sbc/b2bua/sipmsg"
	"github.com/sbc-project/sbc/internal/config"

	"github.com/sbc-project/sbc/test/e2e"
	"github.com/sbc-project/sbc/test/sipptest"
)

// sippCall runs one UAC scenario against the SBC with one UAS scenario
// behind it (as the trunk "pbx"), over UDP or TCP on both sides, and
// checks that both complete and the SBC is left idle.
type sippCase struct {
	name        string
	uac, uas    string
	uacArgs     []string
	uasArgs     []string
	ringTimeout time.Duration
}

func TestSIPpScenarios(t *testing.T) {
	cases := []sippCase{
		{name: "caller hangs up", uac: "call_caller_bye_uac.xml", uas: "call_caller_bye_uas.xml", uacArgs: []string{"-d", "500"}},
		{name: "callee hangs up", uac: "call_callee_bye_uac.xml", uas: "call_callee_bye_uas.xml", uasArgs: []string{"-d", "500"}},
		{name: "cancel", uac: "cancel_uac.xml", uas: "cancel_uas.xml", uacArgs: []string{"-d", "300"}},
		{name: "busy", uac: "busy_486_uac.xml", uas: "busy_486_uas.xml"},
		{name: "no answer", uac: "no_answer_uac.xml", uas: "no_answer_uas.xml", ringTimeout: 2 * time.Second},
		{name: "early media", uac: "early_media_uac.xml", uas: "early_media_uas.xml", uacArgs: []string{"-d", "300"}},
		{name: "hold and resume", uac: "reinvite_hold_uac.xml", uas: "reinvite_hold_uas.xml", uacArgs: []string{"-d", "300"}},
	}
	for _, tp := range []string{sipptest.UDP, sipptest.TCP} {
		for _, tc := range cases {
			t.Run(transportName(tp)+"/"+tc.name, func(t *testing.T) {
				sipptest.Require(t)
				ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
				defer cancel()
				uas := sipptest.Start(ctx, t, sipptest.Options{Scenario: sipptest.ScenarioPath(tc.uas), LocalIP: e2e.PBXIP(), Transport: tp,
					Args: tc.uasArgs, Timeout: 30 * time.Second})
				sbc := e2e.StartSBC(t, e2e.SBCOptions{RingTimeout: tc.ringTimeout,
					Trunks: []e2e.TrunkSpec{{Name: "pbx", Addr: uas.Addr().Addr().String(), Port: int(uas.Addr().Port()), Transport: transportName(tp)}}})
				uac := sipptest.Start(ctx, t, sipptest.Options{Scenario: sipptest.ScenarioPath(tc.uac), LocalIP: e2e.CallerIP(), Transport: tp,
					Remote: sbc.UDP.String(), Args: append([]string{"-s", "1000"}, tc.uacArgs...), Timeout: 30 * time.Second})
				if err := uac.Wait().Check(1); err != nil {
					t.Error(err)
				}
				if err := uas.Wait().Check(1); err != nil {
					t.Error(err)
				}
				sbc.WaitIdle(t)
			})
		}
	}
}

// TestSIPpFailover: the first trunk fails (503, silence, or marked down by
// OPTIONS) and the call completes on the second.
func TestSIPpFailover(t *testing.T) {
	tests := []struct {
		name  string
		first string // "503", "silent" or "options-down"
	}{
		{"first answers 503", "503"},
		{"first never answers", "silent"},
		{"first marked down by OPTIONS", "options-down"},
	}
	for _, tp := range []string{sipptest.UDP, sipptest.TCP} {
		for _, tt := range tests {
			t.Run(transportName(tp)+"/"+tt.name, func(t *testing.T) {
				sipptest.Require(t)
				if tp == sipptest.TCP && tt.first != "503" {
					// A dead TCP peer refuses the connection at once; that
					// path is the same as 503 for failover.
					tt.first = "503"
				}
				ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
				defer cancel()
				second := sipptest.Start(ctx, t, sipptest.Options{Scenario: sipptest.ScenarioPath("call_caller_bye_uas.xml"),
					LocalIP: e2e.PBXIP(), Transport: tp, Timeout: 30 * time.Second})
				first := e2e.TrunkSpec{Name: "first", Addr: e2e.PBXIP(), Transport: transportName(tp)}
				var firstProc *sipptest.Proc
				switch tt.first {
				case "503":
					firstProc = sipptest.Start(ctx, t, sipptest.Options{Scenario: sipptest.ScenarioPath("uas_503.xml"),
						LocalIP: e2e.PBXIP(), Transport: tp, Timeout: 30 * time.Second})
					first.Port = int(firstProc.Addr().Port())
				case "silent":
					first.Port = e2e.FreeUDPPort(t, e2e.PBXIP())
				case "options-down":
					first.Port = e2e.FreeUDPPort(t, e2e.PBXIP())
					first.Options = 200 * time.Millisecond
				}
				sbc := e2e.StartSBC(t, e2e.SBCOptions{InviteTimeout: time.Second, Trunks: []e2e.TrunkSpec{first,
					{Name: "second", Addr: e2e.PBXIP(), Port: int(second.Addr().Port()), Transport: transportName(tp)}}})
				if tt.first == "options-down" {
					e2e.WaitFor(t, 5*time.Second, "first trunk marked down", func() bool {
						tr, _ := sbc.App.Routes().Trunk("first")
						return !tr.Up()
					})
				}
				uac := sipptest.Start(ctx, t, sipptest.Options{Scenario: sipptest.ScenarioPath("call_caller_bye_uac.xml"),
					LocalIP: e2e.CallerIP(), Transport: tp, Remote: sbc.UDP.String(), Args: []string{"-s", "1000", "-d", "300"}, Timeout: 30 * time.Second})
				if err := uac.Wait().Check(1); err != nil {
					t.Error(err)
				}
				if err := second.Wait().Check(1); err != nil {
					t.Error(err)
				}
				if firstProc != nil {
					if err := firstProc.Wait().Check(1); err != nil {
						t.Error(err)
					}
				}
				sbc.WaitIdleProbing(t, tt.first == "options-down")
			})
		}
	}
}

func transportName(tp string) string {
	if tp == sipptest.TCP {
		return "tcp"
	}
	return "udp"
}

// TestTrunkKeepalive: OPTIONS probes mark a silent trunk down and bring it
// back up once a SIP stack answers on its address.
func TestTrunkKeepalive(t *testing.T) {
	sipptest.Require(t)
	port := e2e.FreeUDPPort(t, e2e.PBXIP())
	sbc := e2e.StartSBC(t, e2e.SBCOptions{Trunks: []e2e.TrunkSpec{{Name: "pbx", Addr: e2e.PBXIP(), Port: port, Options: 200 * time.Millisecond}},
		Mutate: func(c *config.Config) { c.SIP.RetryAfter = 45 * time.Second }})
	tr, _ := sbc.App.Routes().Trunk("pbx")
	e2e.WaitFor(t, 5*time.Second, "trunk down", func() bool { return !tr.Up() })

	// With every trunk down a call gets 503 with Retry-After at once.
	ua := e2e.DialUA(t, "UDP", sbc.UDP.String())
	ua.Invite("1000", "")
	res := ua.Expect(503)
	if ra := sipmsg.Header(res, "Retry-After"); ra != "45" {
		t.Errorf("503 Retry-After %q, want the configured 45", ra)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	opts := sipptest.Start(ctx, t, sipptest.Options{Scenario: sipptest.ScenarioPath("options_uas.xml"),
		LocalIP: e2e.PBXIP(), LocalPort: port, Calls: sipptest.Unlimited, Timeout: 20 * time.Second})
	e2e.WaitFor(t, 5*time.Second, "trunk up", func() bool { return tr.Up() })
	opts.Stop()
	sbc.WaitIdleProbing(t, true)
}
