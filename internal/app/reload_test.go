package app

import (
	"errors"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/sbc-project/sbc/b2bua/transport/tlstest"
	"github.com/sbc-project/sbc/internal/config"
)

// testConfig is a config that binds only free loopback ports and writes
// nothing.
func testConfig() *config.Config {
	c := config.Default()
	c.SIP.Listeners = []config.Listener{{Name: "udp", Transport: "udp", Addr: "127.0.0.1:0"}}
	c.Media.RTPPorts = "40000-49999"
	c.Admin.Addr = ""
	c.CDR = nil
	c.Policy.Bans.File = "" // bans in memory: tests leave no ./bans.json
	return c
}

func TestReload(t *testing.T) {
	var mu sync.Mutex
	next := testConfig()
	var loadErr error
	level := new(slog.LevelVar)
	a, err := New(testConfig(), slog.New(slog.DiscardHandler), Options{Level: level, Load: func() (*config.Config, error) {
		mu.Lock()
		defer mu.Unlock()
		c := *next
		return &c, loadErr
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	var hooked []string
	a.OnReload([]string{"policy"}, func(old, next *config.Config) { hooked = append(hooked, next.Policy.Blacklist.CIDRs...) })
	first := a.Routes()

	mu.Lock()
	next.Log.Level = "debug"
	next.Log.Trace = []string{"alice"}
	next.Trunks = []config.Trunk{{Name: "pbx", URI: "sip:127.0.0.1:5999", OptionsTimeout: time.Second, FailureThreshold: 1}}
	next.Routes = append(next.Routes, config.Route{Name: "out", Target: config.TargetTrunks, Trunks: []string{"pbx"}})
	next.SIP.InviteTimeout = 5 * time.Second
	next.Policy.Blacklist.CIDRs = []string{"192.0.2.1"}
	next.SIP.Listeners = append(next.SIP.Listeners, config.Listener{Name: "tcp", Transport: "tcp", Addr: "127.0.0.1:0"})
	mu.Unlock()
	res, err := a.Reload()
	if err != nil {
		t.Fatal(err)
	}
	wantApplied := []string{"log.level", "log.trace", "trunks", "routes", "policy.blacklist.cidrs"}
	for _, k := range wantApplied {
		if !slices.Contains(res.Applied, k) {
			t.Errorf("applied %q lacks %s", res.Applied, k)
		}
	}
	if !slices.Equal(res.RestartRequired, []string{"sip.listeners", "sip.invite_timeout"}) {
		t.Errorf("restart required %q", res.RestartRequired)
	}
	if a.Routes() == first || len(a.Routes().Trunks()) != 1 {
		t.Error("route table not replaced")
	}
	if level.Level() != slog.LevelDebug || !a.traces.Traced("alice") || !slices.Equal(hooked, []string{"192.0.2.1"}) {
		t.Errorf("level %v, traces %v, hook %v", level.Level(), a.traces.List(), hooked)
	}
	if a.Config().Log.Level != "debug" {
		t.Error("config in force not replaced")
	}
	if c := a.checkListeners(); !c.OK {
		t.Errorf("a reload that adds a listener made the listeners check fail: %+v", c)
	}

	// A refused reload changes nothing.
	mu.Lock()
	loadErr = errors.New("routes[0].target: \"x\": want one of trunks, registered, echo")
	next.Log.Level = "error"
	mu.Unlock()
	table := a.Routes()
	if _, err := a.Reload(); err == nil {
		t.Fatal("reload of a bad config succeeded")
	}
	if a.Routes() != table || level.Level() != slog.LevelDebug || a.Config().Log.Level != "debug" {
		t.Error("a refused reload changed something")
	}
}

func TestReloadWithoutSource(t *testing.T) {
	a, err := New(testConfig(), slog.New(slog.DiscardHandler), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if _, err := a.Reload(); !errors.Is(err, errNoSource) {
		t.Errorf("Reload = %v, want errNoSource", err)
	}
}

func TestDrainWithoutCalls(t *testing.T) {
	c := testConfig()
	c.Admin.DrainTimeout = 5 * time.Second
	a, err := New(c, slog.New(slog.DiscardHandler), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if rd := a.Ready(); !rd.Ready {
		t.Errorf("not ready at start: %+v", rd)
	}
	st := a.Drain()
	if !st.Draining || st.ActiveCalls != 0 || !a.server.Draining() {
		t.Errorf("drain status %+v", st)
	}
	if again := a.Drain(); again.Deadline != st.Deadline {
		t.Error("a second Drain restarted the drain")
	}
	select {
	case <-a.Drained():
	case <-time.After(3 * time.Second):
		t.Fatal("not drained")
	}
	if rd := a.Ready(); rd.Ready {
		t.Errorf("ready while draining: %+v", rd)
	}
}

// TestReloadRereadsTrunkTLS: a reload reads the trunks' TLS files again,
// so a renewed client certificate is used without a restart.
func TestReloadRereadsTrunkTLS(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "ca")
	caFile := ca.WriteCA(t, dir, "ca.pem")
	certFile, keyFile := tlstest.WritePair(t, dir, "sbc", ca.Issue(t, "sbc.example"))
	c := testConfig()
	c.Trunks = []config.Trunk{{Name: "carrier", URI: "sip:carrier.example;transport=tls", FailureThreshold: 1,
		TLS: config.TrunkTLS{CAFile: caFile, CertFile: certFile, KeyFile: keyFile}}}
	a, err := New(c, slog.New(slog.DiscardHandler), Options{Load: func() (*config.Config, error) { cc := *c; return &cc, nil }})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	serial := func() string {
		tr, _ := a.Routes().Trunk("carrier")
		return tr.TLS.Certificates[0].Leaf.SerialNumber.String()
	}
	before := serial()
	tlstest.WritePair(t, dir, "sbc", ca.Issue(t, "sbc.example")) // renewed in place
	res, err := a.Reload()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(res.Applied, "trunks[].tls (files re-read)") || serial() == before {
		t.Fatalf("applied %q, certificate serial %s (was %s): want the renewed certificate", res.Applied, serial(), before)
	}
}
