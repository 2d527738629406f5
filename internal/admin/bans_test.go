package admin

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
)

// TestBanProtection: an admin ban may not cover every address, and covers
// a trunk or a trusted source only when forced.
func TestBanProtection(t *testing.T) {
	opt, _, bans, _ := fullOptions()
	opt.Token = ""
	dnsDown := false
	opt.Protected = func(context.Context) ([]Protected, error) {
		if dnsDown {
			return nil, errors.New(`trunk "carrier": resolve sip.carrier.example: no such host`)
		}
		return []Protected{
			{Prefix: netip.MustParsePrefix("10.0.0.1/32"), Why: `trunk "pbx"`},
			{Prefix: netip.MustParsePrefix("2001:db8:5::7/128"), Why: `trunk "v6"`},
			{Prefix: netip.MustParsePrefix("192.0.2.0/24"), Why: "routes[1].trusted_sources (route \"from-pbx\")"},
		}, nil
	}
	base := startServer(t, opt)
	tests := []struct {
		name, body string
		want       int
		reason     string // in the error
	}{
		{"everything", `{"addr":"0.0.0.0/0"}`, 422, "would ban every source"},
		{"everything forced", `{"addr":"0.0.0.0/0","force":true}`, 422, "would ban every source"},
		{"every ipv6", `{"addr":"::/0","force":true}`, 422, "would ban every source"},
		{"every ipv4 as mapped", `{"addr":"::ffff:0.0.0.0/96"}`, 422, "would ban every source"},
		{"mapped shorter than /96", `{"addr":"::ffff:0.0.0.0/95"}`, 400, "IPv4-mapped"},
		{"trunk itself", `{"addr":"10.0.0.1"}`, 409, `covers trunk "pbx" (10.0.0.1); send "force": true`},
		{"trunk as mapped", `{"addr":"::ffff:10.0.0.1"}`, 409, `trunk "pbx"`},
		{"range with the trunk", `{"addr":"10.0.0.0/8"}`, 409, `trunk "pbx"`},
		{"half the internet", `{"addr":"0.0.0.0/1"}`, 409, `trunk "pbx"`},
		{"ipv6 range with a trunk", `{"addr":"2001:db8::/32"}`, 409, `trunk "v6"`},
		{"inside a trusted range", `{"addr":"192.0.2.77"}`, 409, "routes[1].trusted_sources"},
		{"around a trusted range", `{"addr":"192.0.0.0/16"}`, 409, "routes[1].trusted_sources"},
		{"next to the trunk", `{"addr":"10.0.0.2"}`, 201, ""},
		{"elsewhere", `{"addr":"198.51.100.0/24"}`, 201, ""},
		{"trunk forced", `{"addr":"10.0.0.0/8","force":true,"reason":"pbx hacked"}`, 201, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, doc := do(t, "POST", base+"/api/v1/bans", "", tt.body)
			if code != tt.want {
				t.Fatalf("status %d, want %d: %v", code, tt.want, doc)
			}
			if msg, _ := doc["error"].(string); tt.reason != "" && !strings.Contains(msg, tt.reason) {
				t.Errorf("error %q lacks %q", msg, tt.reason)
			}
		})
	}
	dnsDown = true
	if code, doc := do(t, "POST", base+"/api/v1/bans", "", `{"addr":"203.0.113.1"}`); code != 503 ||
		!strings.Contains(doc["error"].(string), "sip.carrier.example") {
		t.Errorf("unresolvable trunk: %d %v, want 503 naming it", code, doc)
	}
	if code, doc := do(t, "POST", base+"/api/v1/bans", "", `{"addr":"203.0.113.1","force":true}`); code != 201 {
		t.Errorf("unresolvable trunk, forced: %d %v", code, doc)
	}
	var got []string
	for _, b := range bans.List() {
		got = append(got, b.Addr)
	}
	want := map[string]bool{"10.0.0.2": true, "198.51.100.0/24": true, "10.0.0.0/8": true, "203.0.113.1": true}
	if len(got) != len(want) {
		t.Errorf("bans %v, want %v", got, want)
	}
	for _, a := range got {
		if !want[a] {
			t.Errorf("unexpected ban %s", a)
		}
	}
}

func TestBanPrefix(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.7": "192.0.2.7/32", " 192.0.2.7/24 ": "192.0.2.0/24", "::ffff:192.0.2.7": "192.0.2.7/32",
		"::ffff:192.0.2.0/120": "192.0.2.0/24", "2001:db8::1/64": "2001:db8::/64", "fe80::1%eth0": "", "example.com": "",
		"192.0.2.7/33": "",
	} {
		p, err := banPrefix(in)
		switch {
		case want == "" && err == nil:
			t.Errorf("banPrefix(%q) = %s, want an error", in, p)
		case want != "" && (err != nil || p.String() != want):
			t.Errorf("banPrefix(%q) = %s, %v; want %s", in, p, err, want)
		}
	}
}
