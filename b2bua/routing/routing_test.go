package routing

import (
	"log/slog"
	"net/netip"
	"strings"
	"testing"

	"github.com/sbc-project/sbc/internal/config"
)

// testConfig has listeners "udp" (no name: the transport), "wss-public" and
// trunks pbx (10.0.0.5), carrier ([2001:db8::5]) and backup (10.0.0.6).
func testConfig(routes ...config.Route) *config.Config {
	return &config.Config{
		SIP: config.SIP{Listeners: []config.Listener{
			{Transport: "udp", Addr: "127.0.0.1:5060"},
			{Name: "wss-public", Transport: "wss", Addr: "127.0.0.1:8443"},
		}},
		Trunks: []config.Trunk{
			{Name: "pbx", URI: "sip:10.0.0.5"},
			{Name: "carrier", URI: "sips:[2001:db8::5]"},
			{Name: "backup", URI: "sip:10.0.0.6:5080;transport=tcp"},
		},
		Routes: routes,
	}
}

func mustNew(t *testing.T, cfg *config.Config) *Table {
	t.Helper()
	tab, err := New(cfg, nil)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return tab
}

func TestRouteMatchFields(t *testing.T) {
	web := netip.MustParseAddr("192.0.2.10")
	tests := []struct {
		name  string
		match config.Match
		req   Request
		want  bool
	}{
		{"empty match holds for anything", config.Match{}, Request{}, true},
		{"listener equal", config.Match{Listener: "wss-public"}, Request{Listener: "wss-public"}, true},
		{"listener differs", config.Match{Listener: "wss-public"}, Request{Listener: "udp"}, false},
		{"listener defaulted to transport", config.Match{Listener: "udp"}, Request{Listener: "udp"}, true},
		{"listener on outbound connection", config.Match{Listener: "udp"}, Request{Listener: ""}, false},
		{"trunk by IPv4 source", config.Match{Trunk: "pbx"}, Request{Src: netip.MustParseAddr("10.0.0.5")}, true},
		{"trunk by IPv4-mapped source", config.Match{Trunk: "pbx"}, Request{Src: netip.MustParseAddr("::ffff:10.0.0.5")}, true},
		{"trunk by IPv6 source", config.Match{Trunk: "carrier"}, Request{Src: netip.MustParseAddr("2001:db8::5")}, true},
		{"trunk other source", config.Match{Trunk: "pbx"}, Request{Src: netip.MustParseAddr("10.0.0.6")}, false},
		{"trunk no source", config.Match{Trunk: "pbx"}, Request{}, false},
		{"cidr holds", config.Match{SourceCIDRs: []string{"192.0.2.0/24"}}, Request{Src: web}, true},
		{"cidr second of two", config.Match{SourceCIDRs: []string{"10.0.0.0/8", "192.0.2.0/28"}}, Request{Src: web}, true},
		{"cidr misses", config.Match{SourceCIDRs: []string{"10.0.0.0/8"}}, Request{Src: web}, false},
		{"cidr bare IP", config.Match{SourceCIDRs: []string{"192.0.2.10"}}, Request{Src: web}, true},
		{"cidr unmasked", config.Match{SourceCIDRs: []string{"192.0.2.99/24"}}, Request{Src: web}, true},
		{"cidr IPv4-mapped prefix", config.Match{SourceCIDRs: []string{"::ffff:192.0.2.0/120"}}, Request{Src: web}, true},
		{"cidr IPv6 holds", config.Match{SourceCIDRs: []string{"2001:db8:1::/48"}},
			Request{Src: netip.MustParseAddr("2001:db8:1:ff::1")}, true},
		{"cidr IPv6 misses", config.Match{SourceCIDRs: []string{"2001:db8:1::/48"}},
			Request{Src: netip.MustParseAddr("2001:db8:2::1")}, false},
		{"cidr IPv6 zoned source", config.Match{SourceCIDRs: []string{"fe80::/10"}},
			Request{Src: netip.MustParseAddr("fe80::1%eth0")}, true},
		{"cidr IPv4 range vs IPv6 source", config.Match{SourceCIDRs: []string{"0.0.0.0/0"}},
			Request{Src: netip.MustParseAddr("2001:db8::1")}, false},
		{"cidr invalid source", config.Match{SourceCIDRs: []string{"0.0.0.0/0"}}, Request{}, false},
		{"ruri_user unanchored", config.Match{RURIUser: `1\d+`}, Request{RURIUser: "+15551234"}, true},
		{"ruri_user anchored rejects", config.Match{RURIUser: `^1\d+$`}, Request{RURIUser: "+15551234"}, false},
		{"ruri_user anchored holds", config.Match{RURIUser: `^1\d+$`}, Request{RURIUser: "15551234"}, true},
		{"ruri_user empty user", config.Match{RURIUser: `^\d+$`}, Request{}, false},
		{"from_domain case-insensitive", config.Match{FromDomain: "Example.COM"}, Request{FromDomain: "example.com"}, true},
		{"from_domain differs", config.Match{FromDomain: "example.com"}, Request{FromDomain: "example.com.evil"}, false},
		{"combined all hold", config.Match{Listener: "wss-public", SourceCIDRs: []string{"192.0.2.0/24"},
			RURIUser: `^\d{4}$`, FromDomain: "web.example.com"},
			Request{Listener: "wss-public", Src: web, RURIUser: "1001", FromDomain: "WEB.example.com"}, true},
		{"combined one fails", config.Match{Listener: "wss-public", SourceCIDRs: []string{"192.0.2.0/24"},
			RURIUser: `^\d{4}$`, FromDomain: "web.example.com"},
			Request{Listener: "wss-public", Src: web, RURIUser: "10011", FromDomain: "web.example.com"}, false},
		{"combined trunk and user", config.Match{Trunk: "pbx", RURIUser: `^web`},
			Request{Src: netip.MustParseAddr("10.0.0.5"), RURIUser: "web-alice"}, true},
		{"combined trunk wrong source", config.Match{Trunk: "pbx", RURIUser: `^web`},
			Request{Src: web, RURIUser: "web-alice"}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tab := mustNew(t, testConfig(config.Route{Name: "r", Match: tc.match, Target: config.TargetEcho}))
			rt, ok := tab.Route(tc.req)
			if ok != tc.want {
				t.Fatalf("Route(%+v) ok = %v, want %v", tc.req, ok, tc.want)
			}
			if ok && rt.Name != "r" {
				t.Errorf("Route picked %q, want r", rt.Name)
			}
		})
	}
}

func TestRouteOrder(t *testing.T) {
	tab := mustNew(t, testConfig(
		config.Route{Name: "from-pbx", Match: config.Match{Trunk: "pbx"}, Target: config.TargetRegistered},
		config.Route{Name: "emergency", Match: config.Match{RURIUser: `^911$`}, Target: config.TargetTrunks,
			Trunks: []string{"carrier"}},
		config.Route{Name: "web-out", Match: config.Match{Listener: "wss-public"}, Target: config.TargetTrunks,
			Trunks: []string{"pbx", "backup"}},
		config.Route{Name: "echo", Match: config.Match{RURIUser: `^echo$`}, Target: config.TargetEcho},
	))
	tests := []struct {
		name string
		req  Request
		want string // "" for no match
	}{
		{"first route wins over later", Request{Src: netip.MustParseAddr("10.0.0.5"), Listener: "wss-public", RURIUser: "911"}, "from-pbx"},
		{"second before third", Request{Listener: "wss-public", RURIUser: "911"}, "emergency"},
		{"third", Request{Listener: "wss-public", RURIUser: "echo"}, "web-out"},
		{"last", Request{Listener: "udp", RURIUser: "echo"}, "echo"},
		{"no match", Request{Listener: "udp", RURIUser: "1001"}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rt, ok := tab.Route(tc.req)
			switch {
			case tc.want == "" && ok:
				t.Fatalf("Route(%+v) = %q, want no match", tc.req, rt.Name)
			case tc.want != "" && !ok:
				t.Fatalf("Route(%+v) found nothing, want %q", tc.req, tc.want)
			case ok && rt.Name != tc.want:
				t.Fatalf("Route(%+v) = %q, want %q", tc.req, rt.Name, tc.want)
			}
		})
	}
	if rt, _ := tab.Route(Request{Listener: "wss-public"}); len(rt.Trunks) != 2 || rt.Trunks[0].Name != "pbx" ||
		rt.Trunks[1].Name != "backup" || rt.Target != config.TargetTrunks {
		t.Errorf("web-out = %+v, want target trunks [pbx backup]", rt)
	}
}

func TestNewRouteErrors(t *testing.T) {
	tests := []struct {
		name    string
		route   config.Route
		wantErr string
	}{
		{"unknown target", config.Route{Name: "r1", Target: "voicemail"}, `target "voicemail"`},
		{"empty target", config.Route{Name: "r1"}, `target ""`},
		{"trunks target without trunks", config.Route{Name: "r1", Target: config.TargetTrunks}, "no trunks"},
		{"unknown route trunk", config.Route{Name: "r1", Target: config.TargetTrunks, Trunks: []string{"pbx", "nope"}}, `"nope" names no trunk`},
		{"trunk listed twice", config.Route{Name: "r1", Target: config.TargetTrunks, Trunks: []string{"pbx", "pbx"}}, "twice"},
		{"trunks with echo target", config.Route{Name: "r1", Target: config.TargetEcho, Trunks: []string{"pbx"}}, "target is echo"},
		{"unknown listener", config.Route{Name: "r1", Target: config.TargetEcho, Match: config.Match{Listener: "tcp"}}, `listener "tcp"`},
		{"unknown match trunk", config.Route{Name: "r1", Target: config.TargetEcho, Match: config.Match{Trunk: "ghost"}}, `trunk "ghost"`},
		{"bad cidr", config.Route{Name: "r1", Target: config.TargetEcho, Match: config.Match{SourceCIDRs: []string{"10.0.0.0/33"}}}, "source_cidrs[0]"},
		{"bad ip", config.Route{Name: "r1", Target: config.TargetEcho, Match: config.Match{SourceCIDRs: []string{"10.0.0.0/8", "bogus"}}}, "source_cidrs[1]"},
		{"bad regexp", config.Route{Name: "r1", Target: config.TargetEcho, Match: config.Match{RURIUser: "(["}}, "ruri_user"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(testConfig(config.Route{Name: "ok", Target: config.TargetEcho}, tc.route), nil)
			if err == nil {
				t.Fatal("New accepted the route")
			}
			for _, want := range []string{`routes[1] "r1"`, tc.wantErr} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("New error %q does not contain %q", err, want)
				}
			}
		})
	}
}

func TestNewTrunkErrors(t *testing.T) {
	tests := []struct {
		name    string
		trunks  []config.Trunk
		wantErr string
	}{
		{"empty name", []config.Trunk{{URI: "sip:pbx"}}, `trunks[0] "": empty name`},
		{"duplicate name", []config.Trunk{{Name: "a", URI: "sip:pbx"}, {Name: "a", URI: "sip:pbx2"}}, `trunks[1] "a"`},
		{"negative interval", []config.Trunk{{Name: "a", URI: "sip:pbx", OptionsInterval: -1}}, "options_interval"},
		{"probing without timeout", []config.Trunk{{Name: "a", URI: "sip:pbx", OptionsInterval: 1, FailureThreshold: 1}}, "options_timeout"},
		{"probing without threshold", []config.Trunk{{Name: "a", URI: "sip:pbx", OptionsInterval: 1, OptionsTimeout: 1}}, "failure_threshold"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(&config.Config{Trunks: tc.trunks}, nil)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("New error = %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
	if _, err := New(nil, nil); err == nil {
		t.Error("New(nil) returned no error")
	}
}

func TestTrunkLookups(t *testing.T) {
	cfg := testConfig()
	cfg.Trunks = append(cfg.Trunks, config.Trunk{Name: "pbx-tcp", URI: "sip:10.0.0.5;transport=tcp"})
	tab := mustNew(t, cfg)
	tests := []struct {
		name string
		src  string
		want string // "" for none
	}{
		{"IPv4 literal", "10.0.0.6", "backup"},
		{"first of two trunks on one IP", "10.0.0.5", "pbx"},
		{"IPv6 literal", "2001:db8::5", "carrier"},
		{"unknown", "10.0.0.7", ""},
		{"invalid", "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var src netip.Addr
			if tc.src != "" {
				src = netip.MustParseAddr(tc.src)
			}
			got := ""
			if tr, ok := tab.TrunkBySource(src); ok {
				got = tr.Name
			}
			if got != tc.want {
				t.Fatalf("TrunkBySource(%q) = %q, want %q", tc.src, got, tc.want)
			}
		})
	}
	if tr, ok := tab.Trunk("backup"); !ok || tr.Port != 5080 || tr.Transport != "tcp" {
		t.Errorf("Trunk(backup) = %v, %v", tr, ok)
	}
	if _, ok := tab.Trunk("nope"); ok {
		t.Error("Trunk(nope) found a trunk")
	}
	names := []string{}
	for _, tr := range tab.Trunks() {
		names = append(names, tr.Name)
	}
	if got := strings.Join(names, ","); got != "pbx,carrier,backup,pbx-tcp" {
		t.Errorf("Trunks() = %s, want configured order", got)
	}
}

func TestCandidates(t *testing.T) {
	cfg := testConfig(config.Route{Name: "out", Target: config.TargetTrunks, Trunks: []string{"backup", "pbx", "carrier"}})
	for i := range cfg.Trunks {
		cfg.Trunks[i].OptionsInterval = 1
		cfg.Trunks[i].OptionsTimeout = 1
		cfg.Trunks[i].FailureThreshold = 1
	}
	cfg.Trunks = append(cfg.Trunks, config.Trunk{Name: "unprobed", URI: "sip:10.0.0.9", FailureThreshold: 1})
	cfg.Routes = append(cfg.Routes, config.Route{Name: "unprobed", Target: config.TargetTrunks, Trunks: []string{"unprobed"}})
	tab := mustNew(t, cfg)
	out := tab.Routes()[0]
	down := func(names ...string) {
		for _, tr := range tab.Trunks() {
			tr.record(nil, timeZero)
		}
		for _, n := range names {
			tr, _ := tab.Trunk(n)
			tr.record(errProbe, timeZero)
		}
	}
	tests := []struct {
		name string
		down []string
		want string
	}{
		{"all up keep order", nil, "backup,pbx,carrier"},
		{"first down", []string{"backup"}, "pbx,carrier"},
		{"middle down", []string{"pbx"}, "backup,carrier"},
		{"two down", []string{"backup", "carrier"}, "pbx"},
		{"all down", []string{"backup", "pbx", "carrier"}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			down(tc.down...)
			var names []string
			for _, tr := range out.Candidates() {
				names = append(names, tr.Name)
			}
			if got := strings.Join(names, ","); got != tc.want {
				t.Errorf("Candidates() = %q, want %q", got, tc.want)
			}
		})
	}
	t.Run("unprobed trunk is always up", func(t *testing.T) {
		tr, _ := tab.Trunk("unprobed")
		tr.record(errProbe, timeZero)
		if got := tab.Routes()[1].Candidates(); len(got) != 1 || !tr.Up() || !tr.State().Up {
			t.Errorf("unprobed trunk: Candidates() = %v, Up() = %v", got, tr.Up())
		}
	})
	t.Run("non-trunk target has none", func(t *testing.T) {
		r := &Route{Name: "echo", Target: config.TargetEcho}
		if got := r.Candidates(); len(got) != 0 {
			t.Errorf("Candidates() = %v, want none", got)
		}
	})
}

func TestNewDefaultConfig(t *testing.T) {
	tab := mustNew(t, config.Default())
	tests := []struct {
		name   string
		user   string
		wantOK bool
	}{
		{"echo user routes to echo", "echo", true},
		{"other user has no route", "alice", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rt, ok := tab.Route(Request{Listener: "wss", Src: netip.MustParseAddr("127.0.0.1"), RURIUser: tc.user})
			if ok != tc.wantOK || (ok && rt.Target != config.TargetEcho) {
				t.Errorf("Route(%q) = %+v, %v; want ok %v with target echo", tc.user, rt, ok, tc.wantOK)
			}
		})
	}
}

func TestRouteTrusts(t *testing.T) {
	cfg := &config.Config{Routes: []config.Route{{Name: "pbx", Target: config.TargetEcho, TrustedSources: []string{"192.0.2.0/28", "2001:db8::1"}}}}
	tab, err := New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	rt, _ := tab.Route(Request{})
	for _, tc := range []struct {
		src  string
		want bool
	}{
		{"192.0.2.1", true},
		{"192.0.2.16", false},
		{"2001:db8::1", true},
		{"2001:db8::2", false},
		{"::ffff:192.0.2.2", true},
	} {
		if got := rt.Trusts(netip.MustParseAddr(tc.src)); got != tc.want {
			t.Errorf("Trusts(%s) = %v, want %v", tc.src, got, tc.want)
		}
	}
	bad := &config.Config{Routes: []config.Route{{Name: "x", Target: config.TargetEcho, TrustedSources: []string{"nope"}}}}
	if _, err := New(bad, slog.New(slog.DiscardHandler)); err == nil {
		t.Error("a bad trusted source was accepted")
	}
}
