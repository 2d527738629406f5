package b2bua

import (
	"net/netip"
	"testing"
)

func TestPublicHost(t *testing.T) {
	v4, v6 := netip.MustParseAddr("192.0.2.7"), netip.MustParseAddr("2001:db8::7")
	dual := []string{"203.0.113.5", "2001:db8::5"}
	tests := []struct {
		name       string
		hosts      []string
		dst, local netip.Addr
		want       string
	}{
		{"none", nil, v4, netip.Addr{}, ""},
		{"one name for every peer", []string{"sbc.example.com"}, v6, netip.Addr{}, "sbc.example.com"},
		{"v4 peer gets the v4 address", dual, v4, netip.Addr{}, "203.0.113.5"},
		{"v6 peer gets the v6 address", dual, v6, netip.Addr{}, "2001:db8::5"},
		{"mapped v4 peer gets the v4 address", dual, netip.MustParseAddr("::ffff:192.0.2.7"), netip.Addr{}, "203.0.113.5"},
		{"unknown peer: the listener's family", dual, netip.Addr{}, netip.IPv6Loopback(), "2001:db8::5"},
		{"single v6 address for a v4 peer", []string{"2001:db8::5"}, v4, netip.Addr{}, "2001:db8::5"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := publicHost(tc.hosts, tc.dst, tc.local); got != tc.want {
				t.Fatalf("publicHost(%q, %s, %s) = %q, want %q", tc.hosts, tc.dst, tc.local, got, tc.want)
			}
		})
	}
}
