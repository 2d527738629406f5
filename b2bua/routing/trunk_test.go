package routing

import (
	"context"
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

var (
	errProbe = errors.New("options timed out")
	timeZero time.Time
)

func mustTrunk(t *testing.T, c TrunkSpec) *Trunk {
	t.Helper()
	tr, err := newTrunk(c)
	if err != nil {
		t.Fatalf("newTrunk(%+v): %v", c, err)
	}
	return tr
}

func TestTrunkAddress(t *testing.T) {
	tests := []struct {
		name                          string
		uri                           string
		scheme, user, host, transport string
		port                          uint16
	}{
		{"host only", "sip:pbx.example.com", "sip", "", "pbx.example.com", "udp", 5060},
		{"user port transport", "sip:trunk1@10.0.0.5:5080;transport=tcp", "sip", "trunk1", "10.0.0.5", "tcp", 5080},
		{"sips defaults to tls and 5061", "sips:carrier.example.net", "sips", "", "carrier.example.net", "tls", 5061},
		{"sips transport tcp means tls", "sips:carrier.example.net;transport=tcp", "sips", "", "carrier.example.net", "tls", 5061},
		{"sip transport tls defaults to 5061", "sip:10.1.1.1;transport=TLS", "sip", "", "10.1.1.1", "tls", 5061},
		{"bracketed IPv6 with port", "sip:[::1]:5070", "sip", "", "::1", "udp", 5070},
		{"bracketed IPv6 no port", "sip:[2001:db8::1];transport=tcp", "sip", "", "2001:db8::1", "tcp", 5060},
		{"scheme case and other params ignored", "SIP:pbx;lr;user=phone", "sip", "", "pbx", "udp", 5060},
		{"user with user parameter", "sip:+15551234;npdi@gw.example.com:5062", "sip", "+15551234;npdi", "gw.example.com", "udp", 5062},
		{"trailing dot", "sip:pbx.example.com.", "sip", "", "pbx.example.com.", "udp", 5060},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr := mustTrunk(t, TrunkSpec{Name: "t", URI: tc.uri})
			if tr.Scheme != tc.scheme || tr.User != tc.user || tr.Host != tc.host || tr.Transport != tc.transport || tr.Port != tc.port {
				t.Errorf("trunk %q = %s:%s@%s:%d %s, want %s:%s@%s:%d %s", tc.uri, tr.Scheme, tr.User, tr.Host, tr.Port,
					tr.Transport, tc.scheme, tc.user, tc.host, tc.port, tc.transport)
			}
		})
	}
}

func TestNewTrunkURIErrorNamesTrunk(t *testing.T) {
	spec := TableSpec{Trunks: []TrunkSpec{
		{Name: "good", URI: "sip:10.0.0.1"},
		{Name: "broken-pbx", URI: "sip:pbx:99999"},
		{Name: "broken-carrier", URI: "mailto:x@y"},
	}}
	_, err := New(spec, nil)
	if err == nil {
		t.Fatal("New accepted bad trunk URIs")
	}
	for _, want := range []string{`"broken-pbx"`, `"sip:pbx:99999"`, `"broken-carrier"`, `"mailto:x@y"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("New error %q does not mention %s", err, want)
		}
	}
	if strings.Contains(err.Error(), `"good"`) {
		t.Errorf("New error %q blames the good trunk", err)
	}
}

func TestTrunkURI(t *testing.T) {
	tests := []struct {
		name string
		uri  string
		want string
	}{
		{"udp default omitted", "sip:pbx", "sip:pbx:5060"},
		{"tcp with user", "sip:u@10.0.0.1:5080;transport=tcp", "sip:u@10.0.0.1:5080;transport=tcp"},
		{"IPv6 bracketed", "sip:[::1]:5070", "sip:[::1]:5070"},
		{"sips", "sips:carrier;transport=tcp", "sips:carrier:5061"},
		{"other parameters dropped", "sip:pbx;lr;transport=tls;user=phone", "sip:pbx:5061;transport=tls"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr := mustTrunk(t, TrunkSpec{Name: "t", URI: tc.uri, Password: "hunter2"})
			if got := tr.URI(); got != tc.want {
				t.Errorf("URI() = %q, want %q", got, tc.want)
			}
			if s := tr.String() + tr.LogValue().String(); strings.Contains(s, "hunter2") {
				t.Errorf("String/LogValue leak the password: %s", s)
			}
		})
	}
}

func TestTrunkRequestURI(t *testing.T) {
	tests := []struct {
		name, uri, user string
		want            URI
	}{
		{"user replaces the trunk's", "sip:trunk1@10.0.0.5:5080;transport=tcp;lr", "+12125550100",
			URI{Scheme: "sip", User: "+12125550100", Host: "10.0.0.5", Port: 5080, Params: []Param{{"transport", "tcp"}}}},
		{"no user, default port", "sip:pbx.example.com", "", URI{Scheme: "sip", Host: "pbx.example.com", Port: 5060}},
		{"sips needs no transport", "sips:[2001:db8::1];transport=tcp", "alice",
			URI{Scheme: "sips", User: "alice", Host: "2001:db8::1", Port: 5061}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr := mustTrunk(t, TrunkSpec{Name: "t", URI: tc.uri})
			if got := tr.RequestURI(tc.user); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("RequestURI(%q) = %+v, want %+v", tc.user, got, tc.want)
			}
		})
	}
}

func TestAddrLiteral(t *testing.T) {
	tests := []struct {
		name string
		uri  string
		want string
	}{
		{"IPv4 default port", "sip:10.0.0.5", "10.0.0.5:5060"},
		{"IPv4 tls port", "sip:10.0.0.5;transport=tls", "10.0.0.5:5061"},
		{"IPv6 port", "sip:[::1]:5070", "[::1]:5070"},
		{"IPv4-mapped IPv6 unmapped", "sip:[::ffff:10.0.0.5]:5070", "10.0.0.5:5070"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr := mustTrunk(t, TrunkSpec{Name: "t", URI: tc.uri})
			tr.lookup = func(context.Context, string) ([]netip.Addr, error) {
				t.Error("IP literal was looked up")
				return nil, errProbe
			}
			got, err := tr.Addr(t.Context())
			if err != nil {
				t.Fatalf("Addr: %v", err)
			}
			if got != netip.MustParseAddrPort(tc.want) {
				t.Errorf("Addr = %s, want %s", got, tc.want)
			}
		})
	}
}

func TestAddrResolvesLocalhost(t *testing.T) {
	tr := mustTrunk(t, TrunkSpec{Name: "local", URI: "sip:localhost:5070;transport=tcp"})
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	ap, err := tr.Addr(ctx)
	if err != nil {
		t.Fatalf("Addr: %v", err)
	}
	if !ap.Addr().IsLoopback() || ap.Port() != 5070 {
		t.Fatalf("Addr = %s, want a loopback address on port 5070", ap)
	}
	// Cached: a second call must not look up again.
	tr.lookup = func(context.Context, string) ([]netip.Addr, error) {
		return nil, errors.New("looked up again")
	}
	if again, err := tr.Addr(ctx); err != nil || again != ap {
		t.Errorf("second Addr = %s, %v; want cached %s", again, err, ap)
	}
}

func TestAddrCache(t *testing.T) {
	tr := mustTrunk(t, TrunkSpec{Name: "pbx", URI: "sip:pbx.example.com:5080"})
	now := time.Unix(1_700_000_000, 0)
	tr.now = func() time.Time { return now }
	var lookups atomic.Int32
	answer := []netip.Addr{netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("::ffff:192.0.2.1")}
	var fail error
	tr.lookup = func(_ context.Context, host string) ([]netip.Addr, error) {
		lookups.Add(1)
		if host != "pbx.example.com" {
			t.Errorf("looked up %q", host)
		}
		return answer, fail
	}
	steps := []struct {
		name        string
		advance     time.Duration
		answer      []netip.Addr
		fail        error
		want        string // "" means an error is expected
		wantLookups int32
	}{
		{"first call looks up, IPv4 preferred and unmapped", 0, answer, nil, "192.0.2.1:5080", 1},
		{"within ttl cached", 59 * time.Second, nil, errProbe, "192.0.2.1:5080", 1},
		{"after ttl looks up again", 2 * time.Second, []netip.Addr{netip.MustParseAddr("192.0.2.2")}, nil, "192.0.2.2:5080", 2},
		{"expired and failing", 61 * time.Second, nil, errProbe, "", 3},
		{"empty answer", 0, []netip.Addr{}, nil, "", 4},
		{"IPv6 only", 0, []netip.Addr{netip.MustParseAddr("2001:db8::7")}, nil, "[2001:db8::7]:5080", 5},
	}
	for _, s := range steps {
		now = now.Add(s.advance)
		answer, fail = s.answer, s.fail
		got, err := tr.Addr(t.Context())
		switch {
		case s.want == "" && err == nil:
			t.Errorf("%s: Addr = %s, want error", s.name, got)
		case s.want == "" && !strings.Contains(err.Error(), `trunk "pbx"`):
			t.Errorf("%s: error %q does not name the trunk", s.name, err)
		case s.want != "" && (err != nil || got != netip.MustParseAddrPort(s.want)):
			t.Errorf("%s: Addr = %s, %v; want %s", s.name, got, err, s.want)
		}
		if n := lookups.Load(); n != s.wantLookups {
			t.Errorf("%s: %d lookups, want %d", s.name, n, s.wantLookups)
		}
	}
}

func TestTrunkBySourceDNS(t *testing.T) {
	cfg := TableSpec{Trunks: []TrunkSpec{{Name: "carrier", URI: "sip:sbc.carrier.example"}}}
	tab := mustNew(t, cfg)
	tr, _ := tab.Trunk("carrier")
	tr.lookup = func(context.Context, string) ([]netip.Addr, error) {
		return []netip.Addr{netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")}, nil
	}
	src := netip.MustParseAddr("192.0.2.2")
	if _, ok := tab.TrunkBySource(src); ok {
		t.Fatal("unresolved DNS trunk matched a source")
	}
	if err := tab.Resolve(t.Context()); err != nil {
		t.Fatalf("Resolve: %v", err)
	}
	if got, ok := tab.TrunkBySource(src); !ok || got != tr {
		t.Fatalf("TrunkBySource(%s) = %v, %v; want carrier (any resolved address)", src, got, ok)
	}
	// A failed refresh keeps the last answer.
	tr.lookup = func(context.Context, string) ([]netip.Addr, error) { return nil, errProbe }
	if err := tab.Resolve(t.Context()); err == nil || !errors.Is(err, errProbe) {
		t.Fatalf("Resolve error = %v, want one wrapping %v", err, errProbe)
	}
	if _, ok := tab.TrunkBySource(src); !ok {
		t.Error("failed refresh dropped the last answer")
	}
}

func TestRecord(t *testing.T) {
	tests := []struct {
		name        string
		threshold   int
		results     []error
		wantUp      bool
		wantChanges int
		wantFails   int
	}{
		{"starts up", 2, nil, true, 0, 0},
		{"one failure below threshold", 2, []error{errProbe}, true, 0, 1},
		{"threshold reached", 2, []error{errProbe, errProbe}, false, 1, 2},
		{"beyond threshold changes once", 2, []error{errProbe, errProbe, errProbe}, false, 1, 3},
		{"success resets the run", 2, []error{errProbe, nil, errProbe}, true, 0, 1},
		{"one success brings it up", 2, []error{errProbe, errProbe, nil}, true, 2, 0},
		{"threshold one", 1, []error{errProbe}, false, 1, 1},
		{"down up down", 1, []error{errProbe, nil, errProbe}, false, 3, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr := mustTrunk(t, TrunkSpec{Name: "t", URI: "sip:pbx",
				OptionsInterval: time.Second, OptionsTimeout: time.Second, FailureThreshold: tc.threshold})
			changes := 0
			at := time.Unix(1_700_000_000, 0)
			for _, err := range tc.results {
				if changed, _ := tr.record(err, at); changed {
					changes++
				}
			}
			s := tr.State()
			if tr.Up() != tc.wantUp || s.Up != tc.wantUp || changes != tc.wantChanges || s.ConsecutiveFailures != tc.wantFails {
				t.Errorf("Up %v, State %+v, %d changes; want up %v, %d changes, %d failures",
					tr.Up(), s, changes, tc.wantUp, tc.wantChanges, tc.wantFails)
			}
			last := len(tc.results) - 1
			switch {
			case last < 0:
				if !s.LastProbe.IsZero() || s.LastError != "" {
					t.Errorf("State before any probe = %+v", s)
				}
			case tc.results[last] != nil && s.LastError != errProbe.Error():
				t.Errorf("LastError = %q, want %q", s.LastError, errProbe)
			case tc.results[last] == nil && s.LastError != "":
				t.Errorf("LastError = %q after a success", s.LastError)
			case !s.LastProbe.Equal(at):
				t.Errorf("LastProbe = %v, want %v", s.LastProbe, at)
			}
		})
	}
}
