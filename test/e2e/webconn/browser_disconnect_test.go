package webconn

import (
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/sbc-project/sbc/b2bua/outcome"
	"github.com/sbc-project/sbc/internal/config"
	"github.com/sbc-project/sbc/test/browser"
	"github.com/sbc-project/sbc/test/e2e"
)

// browserMediaTimeout is media.timeout in the network-gone case: a
// browser that went silent without closing its connection is only found
// out by its missing media.
const browserMediaTimeout = 2 * time.Second

// TestBrowserDisconnect: a browser that goes away mid-call, without a
// BYE, has its call ended within seconds: the B-leg (the echo) gets its
// BYE and the CDR says who and why.
//
//   - page closed: the page goes, its WebSocket closes (the page may or
//     may not send BYE on its way out);
//   - browser killed: Chromium dies (SIGKILL): the kernel closes its
//     sockets, nothing else is sent;
//   - network gone: Chromium freezes (SIGSTOP): no FIN, no media, nothing;
//     media.timeout ends the call.
func TestBrowserDisconnect(t *testing.T) {
	tests := []struct {
		name   string
		last   browser.Step   // the browser's last step after the call is up
		signal syscall.Signal // sent to Chromium when the "gone" mark shows
		causes []string       // acceptable hangup_cause
		side   string         // hangup_side
		within time.Duration  // bound from going away to the B-leg's end
		mutate func(*config.Config)
	}{
		{name: "page closed", last: browser.Do("close"), causes: []string{"connection_lost", "caller_bye"}, side: "a",
			within: 5 * time.Second},
		{name: "browser killed", last: browser.Do("sleep", "ms", 30000), signal: syscall.SIGKILL,
			causes: []string{"connection_lost"}, side: "a", within: 5 * time.Second},
		{name: "network gone", last: browser.Do("sleep", "ms", 30000), signal: syscall.SIGSTOP,
			causes: []string{"media_timeout"}, side: "sbc", within: browserMediaTimeout + 5*time.Second,
			mutate: func(c *config.Config) { c.Media.Timeout = browserMediaTimeout }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sinks := e2e.NewCDRSinks(t, "")
			sbc := e2e.StartSBC(t, e2e.SBCOptions{Mutate: func(c *config.Config) {
				sinks.Apply(c)
				if tt.mutate != nil {
					tt.mutate(c)
				}
			}})
			goAhead := filepath.Join(t.TempDir(), "go")
			steps := append(e2e.EchoCallSteps(), browser.Do("mark", "name", "up"), browser.Do("waitFile", "path", goAhead), tt.last)
			run := browser.Start(t, e2e.NewScenario(t, browser.Phone{Name: "web", URL: e2e.PhoneURL(sbc.WSS, true, e2e.Autoconnect), Steps: steps}))
			run.WaitEvent("web", "mark", "up", 30*time.Second)
			if sbc.App.Echo().Calls() != 1 {
				t.Fatalf("%d echo calls up, want 1", sbc.App.Echo().Calls())
			}
			gone := time.Now()
			if err := os.WriteFile(goAhead, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			if tt.signal != 0 {
				if n := run.Signal(tt.signal); n == 0 {
					t.Fatal("no Chromium process found under the driver")
				}
				if tt.signal == syscall.SIGSTOP {
					defer run.Signal(syscall.SIGKILL)
				}
			}
			e2e.WaitFor(t, tt.within, "the B-leg to end", func() bool { return sbc.App.Echo().Calls() == 0 })
			t.Logf("%s: B-leg ended %v after the browser went", tt.name, time.Since(gone).Round(time.Millisecond))
			// The call itself may wait out its BYE to a silent browser
			// (Timer F) before it writes the CDR.
			sbc.WaitCallsIdle(t)
			r := e2e.OnlyRecord(t, sbc, sinks)
			if !slices.Contains(tt.causes, r.HangupCause) || r.HangupSide != tt.side || r.Disposition != outcome.Answered ||
				r.AToBPackets == 0 || r.BToAPackets == 0 {
				t.Errorf("cdr: cause %q side %q disposition %q media %d/%d; want cause in %v, side %q, answered with media",
					r.HangupCause, r.HangupSide, r.Disposition, r.AToBPackets, r.BToAPackets, tt.causes, tt.side)
			}
		})
	}
}

// TestBrowserICERestart: the web phone restarts ICE mid-call (a re-INVITE
// with new ICE credentials): the call stays up and the audio keeps coming.
func TestBrowserICERestart(t *testing.T) {
	sinks := e2e.NewCDRSinks(t, "")
	sbc := e2e.StartSBC(t, e2e.SBCOptions{Mutate: sinks.Apply})
	steps := append(e2e.EchoCallSteps(),
		browser.Do("iceRestart"),
		browser.Do("audio", "packets", 100, "more", true, "label", "after"),
		browser.Do("wait", "call", "in-call"),
		browser.Do("mark", "name", "restarted"),
		browser.Do("sleep", "ms", 300),
	)
	run := browser.Start(t, e2e.NewScenario(t, browser.Phone{Name: "web", URL: e2e.PhoneURL(sbc.WSS, true, e2e.Autoconnect),
		Steps: append(steps, e2e.HangupSteps()...)}))
	run.WaitEvent("web", "mark", "restarted", 45*time.Second)
	if calls, echo := sbc.App.Server().ActiveCalls(), sbc.App.Echo().Calls(); calls != 1 || echo != 1 {
		t.Errorf("after the ICE restart: %d calls, %d echo calls; want 1 and 1", calls, echo)
	}
	res := run.MustPass()["web"]
	before, after := res.Stats(t, "echo"), res.Stats(t, "after")
	e2e.CheckAudio(t, "after the ICE restart", after)
	if after.PacketsReceived <= before.PacketsReceived || after.TotalAudioEnergy <= before.TotalAudioEnergy {
		t.Errorf("audio stopped at the ICE restart: before %+v, after %+v", before, after)
	}
	sbc.WaitCallsIdle(t)
	r := e2e.OnlyRecord(t, sbc, sinks)
	if r.HangupCause != "caller_bye" || r.Disposition != outcome.Answered {
		t.Errorf("cdr: cause %q disposition %q; want caller_bye, answered", r.HangupCause, r.Disposition)
	}
}
