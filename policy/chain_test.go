package policy

import (
	"context"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sbc-project/sbc/security"
)

// rejects records Deps.Reject calls.
type rejects struct {
	mu  sync.Mutex
	got []string
}

func (r *rejects) add(stage, cause string) {
	r.mu.Lock()
	r.got = append(r.got, stage+"/"+cause)
	r.mu.Unlock()
}

func newTestChain(t *testing.T, cfg Spec, clk *clock) (*Chain, *rejects, *records) {
	t.Helper()
	rj, logs := &rejects{}, &records{}
	c, err := New(cfg, Deps{Log: slog.New(logs), Bans: memBans(t), Reject: rj.add, Now: clk.now,
		IsSelf: func(s string) bool { return s == "203.0.113.5:5060" }})
	if err != nil {
		t.Fatal(err)
	}
	return c, rj, logs
}

func TestChainEarly(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name   string
		chain  []string
		reqs   []func(r *Request)
		want   []string // outcome per request, with the stage
		counts []string // Reject calls
	}{
		{"scanner refused then banned", StageOrder,
			[]func(*Request){func(r *Request) { r.UserAgent = "friendly-scanner" }, func(r *Request) {}},
			[]string{"blacklist drop:scanner_ua", "blacklist drop:banned"},
			[]string{"blacklist/scanner_ua", "blacklist/banned"}},
		{"clean request passes", StageOrder,
			[]func(*Request){func(r *Request) {}}, []string{" pass"}, nil},
		{"blacklist before sanity", StageOrder,
			[]func(*Request){func(r *Request) { r.UserAgent = "sipvicious"; r.FromTag = "" }},
			[]string{"blacklist drop:scanner_ua"}, []string{"blacklist/scanner_ua"}},
		{"order is fixed whatever the list says", []string{StageSanity, StageBlacklist},
			[]func(*Request){func(r *Request) { r.UserAgent = "sipvicious"; r.FromTag = "" }},
			[]string{"blacklist drop:scanner_ua"}, []string{"blacklist/scanner_ua"}},
		{"blacklist left out", []string{StageSanity},
			[]func(*Request){func(r *Request) { r.UserAgent = "sipvicious"; r.FromTag = "" }},
			[]string{"sanity 400:no_from_tag"}, []string{"sanity/no_from_tag"}},
		{"loop", StageOrder,
			[]func(*Request){func(r *Request) { r.Vias = []string{"203.0.113.5:5060"} }},
			[]string{"sanity 482:loop"}, []string{"sanity/loop"}},
		{"ack is never answered", StageOrder,
			[]func(*Request){func(r *Request) { r.Method = "ACK"; r.Vias = []string{"203.0.113.5:5060"} }},
			[]string{"sanity drop:loop"}, []string{"sanity/loop"}},
		{"no stages", []string{},
			[]func(*Request){func(r *Request) { r.UserAgent = "sipvicious"; r.FromTag = "" }},
			[]string{" pass"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testPolicy()
			cfg.Stages = tt.chain
			c, rj, _ := newTestChain(t, cfg, newClock())
			for i, modify := range tt.reqs {
				r := req("192.0.2.1", "INVITE")
				modify(r)
				d := c.Early(ctx, r)
				if got := d.Stage + " " + outcome(d); got != tt.want[i] {
					t.Errorf("request %d: %q, want %q", i, got, tt.want[i])
				}
			}
			if !slices.Equal(rj.got, tt.counts) {
				t.Errorf("Reject calls %q, want %q", rj.got, tt.counts)
			}
		})
	}
}

func TestChainRateLimitedSourceIsBanned(t *testing.T) {
	cfg := testPolicy()
	cfg.RateLimit.Requests = Bucket{Rate: 1, Burst: 1}
	cfg.Bans.RateLimited = 3
	c, rj, _ := newTestChain(t, cfg, newClock())
	var got []string
	for range 5 {
		got = append(got, outcome(c.Early(context.Background(), req("192.0.2.1", "OPTIONS"))))
	}
	want := []string{"pass", "503:rate_requests", "503:rate_requests", "503:rate_requests", "drop:banned"}
	if !slices.Equal(got, want) {
		t.Errorf("outcomes %q, want %q (rejects %q)", got, want, rj.got)
	}
	if _, ok := c.Bans().Banned(ip("192.0.2.1"), true); !ok {
		t.Error("source not in the ban store")
	}
}

func TestChainReport(t *testing.T) {
	cfg := testPolicy()
	cfg.Bans.AuthFailures, cfg.Bans.NotFound = 2, 3
	cfg.Bans.ExemptCIDRs = []string{"198.51.100.0/24"}
	c, _, _ := newTestChain(t, cfg, newClock())
	for _, s := range []string{"192.0.2.1", "192.0.2.1", "198.51.100.1", "198.51.100.1", "198.51.100.1"} {
		c.Report(ip(s), "udp", EventAuthFailure)
	}
	for _, s := range []string{"192.0.2.2", "192.0.2.2", "::ffff:192.0.2.2"} {
		c.Report(ip(s), "udp", EventNotFound)
	}
	for s, want := range map[string]bool{"192.0.2.1": true, "192.0.2.2": true, "198.51.100.1": false} {
		if _, ok := c.Bans().Banned(ip(s), true); ok != want {
			t.Errorf("%s banned = %v, want %v", s, ok, want)
		}
	}
	if d := c.Early(context.Background(), req("192.0.2.1", "REGISTER")); d.Cause != causeBanned {
		t.Errorf("request from a banned source: %+v, want dropped as banned", d)
	}
}

func TestChainLogLimited(t *testing.T) {
	cfg := testPolicy()
	cfg.LogInterval = 10 * time.Second
	clk := newClock()
	c, rj, logs := newTestChain(t, cfg, clk)
	c.bans.Add("192.0.2.0/24", "test", 0) // every source dropped by blacklist
	flood := func(src string, n int) {
		for range n {
			c.Early(context.Background(), req(src, "INVITE"))
		}
	}
	flood("192.0.2.1", 50)
	if n := logs.count("request refused"); n != 1 {
		t.Fatalf("%d log lines for 50 refusals in one interval, want 1", n)
	}
	flood("192.0.2.2", 5)
	if n := logs.count("request refused"); n != 2 {
		t.Fatalf("%d log lines after a second source, want 2", n)
	}
	clk.add(10 * time.Second)
	flood("192.0.2.1", 1)
	if n := logs.count("request refused"); n != 3 {
		t.Fatalf("%d log lines after the interval, want 3", n)
	}
	last := logs.attrs[len(logs.attrs)-1]
	if last["suppressed"] != int64(49) || last["stage"] != "blacklist" || last["cause"] != "banned" {
		t.Errorf("last line %v, want suppressed 49, stage blacklist, cause banned", last)
	}
	if len(rj.got) != 56 {
		t.Errorf("%d refusals counted, want every one (56)", len(rj.got))
	}
}

func TestChainLate(t *testing.T) {
	cfg := testPolicy()
	c, rj, _ := newTestChain(t, cfg, newClock())
	if d := c.Late(context.Background(), req("192.0.2.1", "INVITE")); d.Action != Continue && d.Stage == "" {
		t.Errorf("Late decision %+v has no stage", d)
	}
	if got := c.MaxDuration(); got != cfg.Admission.MaxDuration {
		t.Errorf("MaxDuration = %s, want %s", got, cfg.Admission.MaxDuration)
	}

	// A stage after admission refuses: what admission counted is given back.
	released := 0
	c.late = []named{
		{StageAdmission, StageFunc(func(_ context.Context, r *Request) Decision {
			r.Admitted = func() { released++ }
			return Pass
		})},
		{StageDialRules, StageFunc(func(context.Context, *Request) Decision {
			return Decision{Action: Answer, Code: 403, Reason: "Forbidden", Cause: "premium"}
		})},
	}
	r := req("192.0.2.1", "INVITE")
	d := c.Late(context.Background(), r)
	if d.Stage != StageDialRules || d.Cause != "premium" || released != 1 || r.Admitted != nil {
		t.Errorf("decision %+v, released %d, Admitted nil %v; want dial_rules/premium, 1, true", d, released, r.Admitted == nil)
	}
	if !slices.Contains(rj.got, "dial_rules/premium") {
		t.Errorf("Reject calls %q, want dial_rules/premium", rj.got)
	}
}

func TestChainWithoutAdmission(t *testing.T) {
	cfg := testPolicy()
	cfg.Stages = []string{StageBlacklist}
	c, _, _ := newTestChain(t, cfg, newClock())
	if got := c.MaxDuration(); got != 0 {
		t.Errorf("MaxDuration = %s without admission, want 0", got)
	}
}

func TestNewErrors(t *testing.T) {
	tests := []struct {
		name   string
		modify func(p *Spec)
		want   string
	}{
		{"unknown stage", func(p *Spec) { p.Stages = []string{"blacklist", "firewall"} }, "policy.chain[1]"},
		{"bad cidr", func(p *Spec) { p.Blacklist.CIDRs = []string{"x"} }, "policy.blacklist.cidrs[0]"},
		{"bad pattern", func(p *Spec) { p.Blacklist.UserAgents = []string{"("} }, "policy.blacklist.user_agents"},
		{"bad rate exempt", func(p *Spec) { p.RateLimit.ExemptCIDRs = []string{"x"} }, "policy.rate_limit.exempt_cidrs"},
		{"bad ban exempt", func(p *Spec) { p.Bans.ExemptCIDRs = []string{"x"} }, "policy.bans.exempt_cidrs"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testPolicy()
			tt.modify(&cfg)
			if _, err := New(cfg, Deps{}); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New error %v, want one naming %s", err, tt.want)
			}
		})
	}
}

func TestChainDefaultsConcurrent(t *testing.T) {
	c, err := New(testPolicy(), Deps{})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 500 {
				a := netip.AddrFrom4([4]byte{10, 0, byte(g), byte(i)})
				r := req(a.String(), "INVITE")
				if i%7 == 0 {
					r.UserAgent = "friendly-scanner"
				}
				c.Early(context.Background(), r)
				c.Report(a, "udp", EventNotFound)
			}
		})
	}
	wg.Wait()
	if len(c.Bans().List()) == 0 {
		t.Error("no scanner banned")
	}
}

func TestChainBannedBeforeParse(t *testing.T) {
	bans, err := security.OpenBans("", nil)
	if err != nil {
		t.Fatal(err)
	}
	var counted []string
	cfg := DefaultSpec()
	c, err := New(cfg, Deps{Bans: bans, Reject: func(stage, cause string) { counted = append(counted, stage+"/"+cause) }})
	if err != nil {
		t.Fatal(err)
	}
	if c.Banned(ip("192.0.2.7"), "udp") {
		t.Fatal("banned before any ban")
	}
	if err := bans.Add("192.0.2.0/24", "test", time.Hour); err != nil {
		t.Fatal(err)
	}
	if !c.Banned(ip("192.0.2.7"), "udp") || !c.Banned(netip.MustParseAddr("::ffff:192.0.2.8"), "ws") {
		t.Error("a banned source is not reported")
	}
	if len(counted) != 2 || counted[0] != "blacklist/banned" {
		t.Errorf("counted %v, want two blacklist/banned", counted)
	}
	cfg.Stages = []string{StageRateLimit}
	c, err = New(cfg, Deps{Bans: bans})
	if err != nil {
		t.Fatal(err)
	}
	if c.Banned(ip("192.0.2.7"), "udp") {
		t.Error("bans honoured with the blacklist stage off")
	}
}
