package routing

import (
	"net/netip"
	"testing"
	"time"

	"github.com/sbc-project/sbc/b2bua/routing/dnsres"
	"github.com/sbc-project/sbc/b2bua/routing/dnsres/dnstest"
	"github.com/sbc-project/sbc/b2bua/transport"
)

// TestTargetsSRV: a DNS-named trunk is located through SRV; each target
// keeps the URI's host as the TLS name (RFC 5922), never the SRV target,
// and its addresses count as the trunk's sources.
func TestTargetsSRV(t *testing.T) {
	srv := dnstest.Start(t, "127.0.5.53")
	srv.Set(t,
		"_sips._tcp.carrier.test. 60 IN SRV 10 0 5071 edge1.other.test.",
		"_sips._tcp.carrier.test. 60 IN SRV 20 0 5072 edge2.other.test.",
		"edge1.other.test. 60 IN A 127.0.5.31",
		"edge2.other.test. 60 IN A 127.0.5.32",
	)
	res, err := dnsres.New(dnsres.Config{Servers: []string{srv.Addr}, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	tab, err := New(TableSpec{Resolver: res, Trunks: []TrunkSpec{{Name: "carrier", URI: "sips:carrier.test"}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	tr, _ := tab.Trunk("carrier")
	got, err := tr.Targets(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"127.0.5.31:5071", "127.0.5.32:5072"}
	if len(got) != len(want) {
		t.Fatalf("Targets = %v, want %v", got, want)
	}
	for i, g := range got {
		if g.Addr.String() != want[i] || g.Kind != transport.TLS || g.Host != "carrier.test" || g.TLS == nil {
			t.Errorf("target %d = %+v, want %s over TLS verified as carrier.test", i, g, want[i])
		}
	}
	if first, err := tr.Target(t.Context()); err != nil || first.Addr != got[0].Addr {
		t.Errorf("Target = %v, %v; want the first of Targets", first, err)
	}
	if _, ok := tab.TrunkBySource(netip.MustParseAddr("127.0.5.32")); !ok {
		t.Error("an SRV target's address does not count as the trunk's")
	}
}

// TestMatchRegisteredContact: a call to the Contact the SBC registers at
// a trunk matches the routes of that trunk, from any source; other users
// from elsewhere do not.
func TestMatchRegisteredContact(t *testing.T) {
	tab, err := New(TableSpec{
		Trunks: []TrunkSpec{{Name: "carrier", URI: "sip:127.0.5.40",
			Register: &RegisterSpec{Username: "u", Password: "p", Expires: time.Minute, ContactUser: "acct-in"}}},
		Routes: []RouteSpec{
			{Name: "from-carrier", Match: MatchSpec{Trunk: "carrier"}, Target: TargetEcho},
			{Name: "rest", Target: TargetRegistered},
		},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	elsewhere := netip.MustParseAddr("127.0.5.41")
	tests := []struct {
		name string
		req  Request
		want string
	}{
		{"registered contact from elsewhere", Request{Src: elsewhere, RURIUser: "acct-in"}, "from-carrier"},
		{"trunk's own address", Request{Src: netip.MustParseAddr("127.0.5.40"), RURIUser: "x"}, "from-carrier"},
		{"another user from elsewhere", Request{Src: elsewhere, RURIUser: "acct-in2"}, "rest"},
		{"no user", Request{Src: elsewhere}, "rest"},
	}
	for _, tc := range tests {
		if r, ok := tab.Route(tc.req); !ok || r.Name != tc.want {
			t.Errorf("%s: route %v, want %s", tc.name, r, tc.want)
		}
	}
}

func TestRegisterSpecChecked(t *testing.T) {
	tests := []struct {
		name string
		spec RegisterSpec
	}{
		{"no password", RegisterSpec{Username: "u", Expires: time.Minute, ContactUser: "c"}},
		{"no contact user", RegisterSpec{Username: "u", Password: "p", Expires: time.Minute}},
		{"no expiry", RegisterSpec{Username: "u", Password: "p", ContactUser: "c"}},
		{"bad registrar", RegisterSpec{Username: "u", Password: "p", Expires: time.Minute, ContactUser: "c", Registrar: "http://x"}},
	}
	for _, tc := range tests {
		spec := tc.spec
		if _, err := New(TableSpec{Trunks: []TrunkSpec{{Name: "t", URI: "sip:127.0.5.40", Register: &spec}}}, nil); err == nil {
			t.Errorf("%s: accepted", tc.name)
		}
	}
}
