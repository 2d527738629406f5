package routing

import (
	"log/slog"
	"net/netip"
	"strings"
	"testing"
)

// testConfig has listeners "udp" and "wss-public" and trunks pbx
// (10.0.0.5), carrier ([2001:db8::5]) and backup (10.0.0.6).
func testConfig(routes ...RouteSpec) TableSpec {
	return TableSpec{
		Listeners: []string{"udp", "wss-public"},
		Trunks: []TrunkSpec{
			{Name: "pbx", URI: "sip:10.0.0.5"},
			{Name: "carrier", URI: "sips:[2001:db8::5]"},
			{Name: "backup", URI: "sip:10.0.0.6:5080;transport=tcp"},
		},
		Routes: routes,
	}
}

func mustNew(t *testing.T, cfg TableSpec) *Table {
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
		match MatchSpec
		req   Request
		want  bool
	}{
		{"empty match holds for anything", MatchSpec{}, Request{}, true},
		{"listener equal", MatchSpec{Listener: "wss-public"}, Request{Listener: "wss-public"}, true},
		{"listener differs", MatchSpec{Listener: "wss-public"}, Request{Listener: "udp"}, false},
		{"second listener", MatchSpec{Listener: "udp"}, Request{Listener: "udp"}, true},
		{"listener on outbound connection", MatchSpec{Listener: "udp"}, Request{Listener: ""}, false},
		{"trunk by IPv4 source", MatchSpec{Trunk: "pbx"}, Request{Src: netip.MustParseAddr("10.0.0.5")}, true},
		{"trunk by IPv4-mapped source", MatchSpec{Trunk: "pbx"}, Request{Src: netip.MustParseAddr("::ffff:10.0.0.5")}, true},
		{"trunk by IPv6 source", MatchSpec{Trunk: "carrier"}, Request{Src: netip.MustParseAddr("2001:db8::5")}, true},
		{"trunk other source", MatchSpec{Trunk: "pbx"}, Request{Src: netip.MustParseAddr("10.0.0.6")}, false},
		{"trunk no source", MatchSpec{Trunk: "pbx"}, Request{}, false},
		{"cidr holds", MatchSpec{SourceCIDRs: []string{"192.0.2.0/24"}}, Request{Src: web}, true},
		{"cidr second of two", MatchSpec{SourceCIDRs: []string{"10.0.0.0/8", "192.0.2.0/28"}}, Request{Src: web}, true},
		{"cidr misses", MatchSpec{SourceCIDRs: []string{"10.0.0.0/8"}}, Request{Src: web}, false},
		{"cidr bare IP", MatchSpec{SourceCIDRs: []string{"192.0.2.10"}}, Request{Src: web}, true},
		{"cidr unmasked", MatchSpec{SourceCIDRs: []string{"192.0.2.99/24"}}, Request{Src: web}, true},
		{"cidr IPv4-mapped prefix", MatchSpec{SourceCIDRs: []string{"::ffff:192.0.2.0/120"}}, Request{Src: web}, true},
		{"cidr IPv6 holds", MatchSpec{SourceCIDRs: []string{"2001:db8:1::/48"}},
			Request{Src: netip.MustParseAddr("2001:db8:1:ff::1")}, true},
		{"cidr IPv6 misses", MatchSpec{SourceCIDRs: []string{"2001:db8:1::/48"}},
			Request{Src: netip.MustParseAddr("2001:db8:2::1")}, false},
		{"cidr IPv6 zoned source", MatchSpec{SourceCIDRs: []string{"fe80::/10"}},
			Request{Src: netip.MustParseAddr("fe80::1%eth0")}, true},
		{"cidr IPv4 range vs IPv6 source", MatchSpec{SourceCIDRs: []string{"0.0.0.0/0"}},
			Request{Src: netip.MustParseAddr("2001:db8::1")}, false},
		{"cidr invalid source", MatchSpec{SourceCIDRs: []string{"0.0.0.0/0"}}, Request{}, false},
		{"ruri_user unanchored", MatchSpec{RURIUser: `1\d+`}, Request{RURIUser: "+15551234"}, true},
		{"ruri_user anchored rejects", MatchSpec{RURIUser: `^1\d+$`}, Request{RURIUser: "+15551234"}, false},
		{"ruri_user anchored holds", MatchSpec{RURIUser: `^1\d+$`}, Request{RURIUser: "15551234"}, true},
		{"ruri_user empty user", MatchSpec{RURIUser: `^\d+$`}, Request{}, false},
		{"from_domain case-insensitive", MatchSpec{FromDomain: "Example.COM"}, Request{FromDomain: "example.com"}, true},
		{"from_domain differs", MatchSpec{FromDomain: "example.com"}, Request{FromDomain: "example.com.evil"}, false},
		{"combined all hold", MatchSpec{Listener: "wss-public", SourceCIDRs: []string{"192.0.2.0/24"},
			RURIUser: `^\d{4}$`, FromDomain: "web.example.com"},
			Request{Listener: "wss-public", Src: web, RURIUser: "1001", FromDomain: "WEB.example.com"}, true},
		{"combined one fails", MatchSpec{Listener: "wss-public", SourceCIDRs: []string{"192.0.2.0/24"},
			RURIUser: `^\d{4}$`, FromDomain: "web.example.com"},
			Request{Listener: "wss-public", Src: web, RURIUser: "10011", FromDomain: "web.example.com"}, false},
		{"combined trunk and user", MatchSpec{Trunk: "pbx", RURIUser: `^web`},
			Request{Src: netip.MustParseAddr("10.0.0.5"), RURIUser: "web-alice"}, true},
		{"combined trunk wrong source", MatchSpec{Trunk: "pbx", RURIUser: `^web`},
			Request{Src: web, RURIUser: "web-alice"}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tab := mustNew(t, testConfig(RouteSpec{Name: "r", Match: tc.match, Target: TargetEcho}))
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
		RouteSpec{Name: "from-pbx", Match: MatchSpec{Trunk: "pbx"}, Target: TargetRegistered},
		RouteSpec{Name: "emergency", Match: MatchSpec{RURIUser: `^911$`}, Target: TargetTrunks,
			Trunks: []string{"carrier"}},
		RouteSpec{Name: "web-out", Match: MatchSpec{Listener: "wss-public"}, Target: TargetTrunks,
			Trunks: []string{"pbx", "backup"}},
		RouteSpec{Name: "echo", Match: MatchSpec{RURIUser: `^echo$`}, Target: TargetEcho},
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
		rt.Trunks[1].Name != "backup" || rt.Target != TargetTrunks {
		t.Errorf("web-out = %+v, want target trunks [pbx backup]", rt)
	}
}

func TestNewRouteErrors(t *testing.T) {
	tests := []struct {
		name    string
		route   RouteSpec
		wantErr string
	}{
		{"unknown target", RouteSpec{Name: "r1", Target: "voicemail"}, `target "voicemail"`},
		{"empty target", RouteSpec{Name: "r1"}, `target ""`},
		{"trunks target without trunks", RouteSpec{Name: "r1", Target: TargetTrunks}, "no trunks"},
		{"unknown route trunk", RouteSpec{Name: "r1", Target: TargetTrunks, Trunks: []string{"pbx", "nope"}}, `"nope" names no trunk`},
		{"trunk listed twice", RouteSpec{Name: "r1", Target: TargetTrunks, Trunks: []string{"pbx", "pbx"}}, "twice"},
		{"trunks with echo target", RouteSpec{Name: "r1", Target: TargetEcho, Trunks: []string{"pbx"}}, "target is echo"},
		{"unknown listener", RouteSpec{Name: "r1", Target: TargetEcho, Match: MatchSpec{Listener: "tcp"}}, `listener "tcp"`},
		{"unknown match trunk", RouteSpec{Name: "r1", Target: TargetEcho, Match: MatchSpec{Trunk: "ghost"}}, `trunk "ghost"`},
		{"bad cidr", RouteSpec{Name: "r1", Target: TargetEcho, Match: MatchSpec{SourceCIDRs: []string{"10.0.0.0/33"}}}, "source_cidrs[0]"},
		{"bad ip", RouteSpec{Name: "r1", Target: TargetEcho, Match: MatchSpec{SourceCIDRs: []string{"10.0.0.0/8", "bogus"}}}, "source_cidrs[1]"},
		{"bad regexp", RouteSpec{Name: "r1", Target: TargetEcho, Match: MatchSpec{RURIUser: "(["}}, "ruri_user"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(testConfig(RouteSpec{Name: "ok", Target: TargetEcho}, tc.route), nil)
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
		trunks  []TrunkSpec
		wantErr string
	}{
		{"empty name", []TrunkSpec{{URI: "sip:pbx"}}, `trunks[0] "": empty name`},
		{"duplicate name", []TrunkSpec{{Name: "a", URI: "sip:pbx"}, {Name: "a", URI: "sip:pbx2"}}, `trunks[1] "a"`},
		{"negative interval", []TrunkSpec{{Name: "a", URI: "sip:pbx", OptionsInterval: -1}}, "options_interval"},
		{"probing without timeout", []TrunkSpec{{Name: "a", URI: "sip:pbx", OptionsInterval: 1, FailureThreshold: 1}}, "options_timeout"},
		{"probing without threshold", []TrunkSpec{{Name: "a", URI: "sip:pbx", OptionsInterval: 1, OptionsTimeout: 1}}, "failure_threshold"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(TableSpec{Trunks: tc.trunks}, nil)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("New error = %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestTrunkLookups(t *testing.T) {
	cfg := testConfig()
	cfg.Trunks = append(cfg.Trunks, TrunkSpec{Name: "pbx-tcp", URI: "sip:10.0.0.5;transport=tcp"})
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
	cfg := testConfig(RouteSpec{Name: "out", Target: TargetTrunks, Trunks: []string{"backup", "pbx", "carrier"}})
	for i := range cfg.Trunks {
		cfg.Trunks[i].OptionsInterval = 1
		cfg.Trunks[i].OptionsTimeout = 1
		cfg.Trunks[i].FailureThreshold = 1
	}
	cfg.Trunks = append(cfg.Trunks, TrunkSpec{Name: "unprobed", URI: "sip:10.0.0.9", FailureThreshold: 1})
	cfg.Routes = append(cfg.Routes, RouteSpec{Name: "unprobed", Target: TargetTrunks, Trunks: []string{"unprobed"}})
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
		r := &Route{Name: "echo", Target: TargetEcho}
		if got := r.Candidates(); len(got) != 0 {
			t.Errorf("Candidates() = %v, want none", got)
		}
	})
}

func TestRouteTrusts(t *testing.T) {
	cfg := TableSpec{Routes: []RouteSpec{{Name: "pbx", Target: TargetEcho, TrustedSources: []string{"192.0.2.0/28", "2001:db8::1"}}}}
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
	bad := TableSpec{Routes: []RouteSpec{{Name: "x", Target: TargetEcho, TrustedSources: []string{"nope"}}}}
	if _, err := New(bad, slog.New(slog.DiscardHandler)); err == nil {
		t.Error("a bad trusted source was accepted")
	}
}
