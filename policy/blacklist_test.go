package policy

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/sbc-project/sbc/security"
)

func TestBlacklist(t *testing.T) {
	cfg := BlacklistSpec{
		CIDRs:      []string{"192.0.2.66", "198.51.100.0/24", "2001:db8:bad::/48"},
		UserAgents: DefaultScannerAgents,
		URIs:       []string{`^sip:100@`, `evil\.example`},
	}
	tests := []struct {
		name   string
		action string
		modify func(r *Request)
		want   Decision
		hits   int
	}{
		{"clean", ActionDrop, func(r *Request) {}, Pass, 0},
		{"banned", ActionReject, func(r *Request) { r.Src = netip.MustParseAddrPort("203.0.113.9:5060") },
			Decision{Action: Drop, Cause: causeBanned}, 0},
		{"banned mapped", ActionReject, func(r *Request) { r.Src = netip.MustParseAddrPort("[::ffff:203.0.113.9]:5060") },
			Decision{Action: Drop, Cause: causeBanned}, 0},
		{"banned on tcp", ActionReject, func(r *Request) { r.Src, r.Transport = netip.MustParseAddrPort("203.0.113.9:5060"), "tcp" },
			Decision{Action: Drop, Cause: causeBanned}, 0},
		{"udp ban on udp", ActionReject, func(r *Request) { r.Src = netip.MustParseAddrPort("203.0.113.10:5060") },
			Decision{Action: Drop, Cause: causeBanned}, 0},
		{"udp ban not on ws", ActionReject, func(r *Request) { r.Src, r.Transport = netip.MustParseAddrPort("203.0.113.10:5060"), "ws" }, Pass, 0},
		{"cidr ip drop", ActionDrop, func(r *Request) { r.Src = netip.MustParseAddrPort("192.0.2.66:5060") },
			Decision{Action: Drop, Cause: causeCIDR}, 0},
		{"cidr prefix reject", ActionReject, func(r *Request) { r.Src = netip.MustParseAddrPort("198.51.100.200:5060") },
			Decision{Action: Answer, Code: 403, Reason: "Forbidden", Cause: causeCIDR}, 0},
		{"cidr ipv6", ActionDrop, func(r *Request) { r.Src = netip.MustParseAddrPort("[2001:db8:bad:1::7]:5060") },
			Decision{Action: Drop, Cause: causeCIDR}, 0},
		{"ipv6 outside", ActionDrop, func(r *Request) { r.Src = netip.MustParseAddrPort("[2001:db8:bae::7]:5060") }, Pass, 0},
		{"friendly-scanner", ActionDrop, func(r *Request) { r.UserAgent = "friendly-scanner" },
			Decision{Action: Drop, Cause: causeScannerUA}, 1},
		{"sipvicious upper case", ActionReject, func(r *Request) { r.UserAgent = "SIPVicious 0.3.4" },
			Decision{Action: Answer, Code: 403, Reason: "Forbidden", Cause: causeScannerUA}, 1},
		{"VaxSIPUserAgent", ActionDrop, func(r *Request) { r.UserAgent = "VaxSIPUserAgent/3.1" },
			Decision{Action: Drop, Cause: causeScannerUA}, 1},
		{"sipcli", ActionDrop, func(r *Request) { r.UserAgent = "sipcli/v1.8" },
			Decision{Action: Drop, Cause: causeScannerUA}, 1},
		{"request-uri", ActionDrop, func(r *Request) { r.RURI = "sip:100@sbc.example" },
			Decision{Action: Drop, Cause: causeURI}, 1},
		{"from", ActionDrop, func(r *Request) { r.From = "sip:x@EVIL.example" },
			Decision{Action: Drop, Cause: causeURI}, 1},
		{"to", ActionDrop, func(r *Request) { r.To = "sip:y@evil.example" },
			Decision{Action: Drop, Cause: causeURI}, 1},
		{"uri pattern anchored", ActionDrop, func(r *Request) { r.RURI = "sip:1000@sbc.example;x=sip:100@" }, Pass, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bans := memBans(t)
			if err := bans.Add("203.0.113.9", "test", time.Hour); err != nil {
				t.Fatal(err)
			}
			if !bans.Ban(netip.MustParseAddr("203.0.113.10"), "udp scanner", time.Hour, security.Evidence{Scope: security.ScopeUDP, Events: 1}) {
				t.Fatal("Ban = false")
			}
			c := cfg
			c.Action = tt.action
			hits := 0
			b, err := newBlacklist(c, bans, func(src netip.Addr, transport, reason string) {
				hits++
				if reason == "" || !src.Is4() || transport != "udp" {
					t.Errorf("hit(%v, %q, %q), want an unmapped source, its transport and a reason", src, transport, reason)
				}
			})
			if err != nil {
				t.Fatal(err)
			}
			r := req("192.0.2.1", "INVITE")
			tt.modify(r)
			if got := b.Check(context.Background(), r); !sameDecision(got, tt.want) {
				t.Errorf("Check = %+v, want %+v", got, tt.want)
			}
			if hits != tt.hits {
				t.Errorf("%d ban hits, want %d", hits, tt.hits)
			}
		})
	}
}

func sameDecision(a, b Decision) bool {
	return a.Action == b.Action && a.Code == b.Code && a.Reason == b.Reason &&
		a.RetryAfter == b.RetryAfter && a.Cause == b.Cause && a.Stage == b.Stage
}

func TestBlacklistBadConfig(t *testing.T) {
	for _, cfg := range []BlacklistSpec{
		{CIDRs: []string{"192.0.2.0/33"}},
		{UserAgents: []string{"(x"}},
		{URIs: []string{"[a"}},
	} {
		if _, err := newBlacklist(cfg, memBans(t), func(netip.Addr, string, string) {}); err == nil {
			t.Errorf("newBlacklist(%+v) succeeded", cfg)
		}
	}
}
