package policy

import (
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// f2bHit is one event for fail2ban.
type f2bHit struct {
	wait time.Duration
	src  string
	ev   Event
	tcp  bool // over a connection; false: a UDP datagram
}

// fail2banCases are runs of events and the bans they must (not) make.
var fail2banCases = []struct {
	name   string
	hits   []f2bHit
	banned []string // on every transport
	udp    []string // on UDP only
	free   []string
}{
	{"auth failures reach the threshold", []f2bHit{
		{0, "192.0.2.1", EventAuthFailure, false}, {0, "192.0.2.1", EventAuthFailure, false}, {0, "192.0.2.1", EventAuthFailure, false},
	}, nil, []string{"192.0.2.1"}, nil},
	{"below the threshold", []f2bHit{
		{0, "192.0.2.1", EventAuthFailure, false}, {0, "192.0.2.1", EventAuthFailure, false},
	}, nil, nil, []string{"192.0.2.1"}},
	{"window restarts", []f2bHit{
		{0, "192.0.2.1", EventAuthFailure, false}, {0, "192.0.2.1", EventAuthFailure, false},
		{time.Minute, "192.0.2.1", EventAuthFailure, false},
	}, nil, nil, []string{"192.0.2.1"}},
	{"kinds count apart", []f2bHit{
		{0, "192.0.2.1", EventAuthFailure, false}, {0, "192.0.2.1", EventAuthFailure, false}, {0, "192.0.2.1", EventNotFound, false},
	}, nil, nil, []string{"192.0.2.1"}},
	{"sources count apart", []f2bHit{
		{0, "192.0.2.1", EventNotFound, false}, {0, "192.0.2.2", EventNotFound, false},
	}, nil, nil, []string{"192.0.2.1", "192.0.2.2"}},
	{"not found scan", []f2bHit{
		{0, "2001:db8::1", EventNotFound, true}, {0, "2001:db8::1", EventNotFound, true},
	}, []string{"2001:db8::1"}, nil, []string{"2001:db8:0:1::2"}},
	{"ipv6 counts per /64", []f2bHit{
		{0, "2001:db8::1", EventNotFound, true}, {0, "2001:db8::ffff:2", EventNotFound, true},
	}, []string{"2001:db8::3"}, nil, []string{"2001:db8:0:1::1"}},
	{"connection evidence bans everywhere", []f2bHit{
		{0, "192.0.2.1", EventAuthFailure, true}, {0, "192.0.2.1", EventAuthFailure, true}, {0, "192.0.2.1", EventAuthFailure, true},
	}, []string{"192.0.2.1"}, nil, nil},
	{"udp and connection evidence count apart", []f2bHit{
		{0, "192.0.2.1", EventAuthFailure, false}, {0, "192.0.2.1", EventAuthFailure, false}, {0, "192.0.2.1", EventAuthFailure, true},
		{0, "192.0.2.1", EventAuthFailure, true},
	}, nil, nil, []string{"192.0.2.1"}},
	{"udp ban widened by connection evidence", []f2bHit{
		{0, "192.0.2.1", eventBlacklisted, false}, {0, "192.0.2.1", eventBlacklisted, true},
	}, []string{"192.0.2.1"}, nil, nil},
	{"threshold 0 never bans", []f2bHit{
		{0, "192.0.2.1", eventRateLimited, false}, {0, "192.0.2.1", eventRateLimited, false}, {0, "192.0.2.1", eventRateLimited, false},
	}, nil, nil, []string{"192.0.2.1"}},
	{"blacklisted bans at once", []f2bHit{{0, "192.0.2.1", eventBlacklisted, false}}, nil, []string{"192.0.2.1"}, nil},
	{"exempt cidr never banned", []f2bHit{{0, "198.51.100.1", eventBlacklisted, true}}, nil, nil, []string{"198.51.100.1"}},
	{"exempt trunk never banned", []f2bHit{{0, "203.0.113.1", eventBlacklisted, true}}, nil, nil, []string{"203.0.113.1"}},
	{"mapped source banned as IPv4", []f2bHit{{0, "::ffff:192.0.2.5", eventBlacklisted, true}}, []string{"192.0.2.5"}, nil, nil},
}

func TestFail2ban(t *testing.T) {
	cfg := BanSpec{Duration: time.Hour, Window: time.Minute, AuthFailures: 3, NotFound: 2, RateLimited: 0, Blacklisted: 1}
	for _, tt := range fail2banCases {
		t.Run(tt.name, func(t *testing.T) {
			clk := newClock()
			bans := memBans(t)
			exempt, err := exemptFunc(func(a netip.Addr) bool { return a == ip("203.0.113.1") }, []string{"198.51.100.0/24"})
			if err != nil {
				t.Fatal(err)
			}
			f := newFail2ban(cfg, 100, bans, slog.New(slog.DiscardHandler), clk.now, exempt)
			for _, h := range tt.hits {
				clk.add(h.wait)
				transport := map[bool]string{false: "udp", true: "tcp"}[h.tcp]
				f.hit(ip(h.src), transport, h.ev, "")
			}
			for _, s := range tt.banned {
				if reason, ok := bans.Banned(ip(s), false); !ok || reason == "" {
					t.Errorf("%s not banned on connections", s)
				}
			}
			for _, s := range tt.udp {
				if _, ok := bans.Banned(ip(s), true); !ok {
					t.Errorf("%s not banned on UDP", s)
				}
				if r, ok := bans.Banned(ip(s), false); ok {
					t.Errorf("%s banned on connections (%s) on evidence from UDP", s, r)
				}
			}
			for _, s := range tt.free {
				if r, ok := bans.Banned(ip(s), true); ok {
					t.Errorf("%s banned (%s)", s, r)
				}
			}
		})
	}
}

func TestFail2banBanLastsDuration(t *testing.T) {
	clk := newClock()
	bans := memBans(t)
	cfg := BanSpec{Duration: time.Hour, Window: time.Minute, NotFound: 1}
	f := newFail2ban(cfg, 10, bans, slog.New(slog.DiscardHandler), clk.now, func(netip.Addr) bool { return false })
	f.hit(ip("192.0.2.1"), "tls", EventNotFound, "")
	l := bans.List()
	if len(l) != 1 || l[0].Until == nil || l[0].Until.Sub(l[0].Since) != time.Hour || !strings.Contains(l[0].Reason, "404") ||
		l[0].Scope != "all" || l[0].Evidence != 1 {
		t.Errorf("bans = %+v, want one of an hour on every transport naming 404", l)
	}
}
