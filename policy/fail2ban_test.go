package policy

import (
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/sbc-project/sbc/internal/config"
)

func TestFail2ban(t *testing.T) {
	cfg := config.Bans{Duration: time.Hour, Window: time.Minute, AuthFailures: 3, NotFound: 2, RateLimited: 0, Blacklisted: 1}
	type hit struct {
		wait time.Duration
		src  string
		ev   Event
	}
	tests := []struct {
		name   string
		hits   []hit
		banned []string
		free   []string
	}{
		{"auth failures reach the threshold", []hit{
			{0, "192.0.2.1", EventAuthFailure}, {0, "192.0.2.1", EventAuthFailure}, {0, "192.0.2.1", EventAuthFailure},
		}, []string{"192.0.2.1"}, nil},
		{"below the threshold", []hit{
			{0, "192.0.2.1", EventAuthFailure}, {0, "192.0.2.1", EventAuthFailure},
		}, nil, []string{"192.0.2.1"}},
		{"window restarts", []hit{
			{0, "192.0.2.1", EventAuthFailure}, {0, "192.0.2.1", EventAuthFailure},
			{time.Minute, "192.0.2.1", EventAuthFailure},
		}, nil, []string{"192.0.2.1"}},
		{"kinds count apart", []hit{
			{0, "192.0.2.1", EventAuthFailure}, {0, "192.0.2.1", EventAuthFailure}, {0, "192.0.2.1", EventNotFound},
		}, nil, []string{"192.0.2.1"}},
		{"sources count apart", []hit{
			{0, "192.0.2.1", EventNotFound}, {0, "192.0.2.2", EventNotFound},
		}, nil, []string{"192.0.2.1", "192.0.2.2"}},
		{"not found scan", []hit{
			{0, "2001:db8::1", EventNotFound}, {0, "2001:db8::1", EventNotFound},
		}, []string{"2001:db8::1"}, []string{"2001:db8::2"}},
		{"threshold 0 never bans", []hit{
			{0, "192.0.2.1", eventRateLimited}, {0, "192.0.2.1", eventRateLimited}, {0, "192.0.2.1", eventRateLimited},
		}, nil, []string{"192.0.2.1"}},
		{"blacklisted bans at once", []hit{{0, "192.0.2.1", eventBlacklisted}}, []string{"192.0.2.1"}, nil},
		{"exempt cidr never banned", []hit{{0, "198.51.100.1", eventBlacklisted}}, nil, []string{"198.51.100.1"}},
		{"exempt trunk never banned", []hit{{0, "203.0.113.1", eventBlacklisted}}, nil, []string{"203.0.113.1"}},
		{"mapped source banned as IPv4", []hit{{0, "::ffff:192.0.2.5", eventBlacklisted}}, []string{"192.0.2.5"}, nil},
	}
	for _, tt := range tests {
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
				f.hit(ip(h.src), h.ev, "")
			}
			for _, s := range tt.banned {
				reason, ok := bans.Banned(ip(s))
				if !ok || reason == "" {
					t.Errorf("%s not banned", s)
				}
			}
			for _, s := range tt.free {
				if r, ok := bans.Banned(ip(s)); ok {
					t.Errorf("%s banned (%s)", s, r)
				}
			}
		})
	}
}

func TestFail2banBanLastsDuration(t *testing.T) {
	clk := newClock()
	bans := memBans(t)
	cfg := config.Bans{Duration: time.Hour, Window: time.Minute, NotFound: 1}
	f := newFail2ban(cfg, 10, bans, slog.New(slog.DiscardHandler), clk.now, func(netip.Addr) bool { return false })
	f.hit(ip("192.0.2.1"), EventNotFound, "")
	l := bans.List()
	if len(l) != 1 || l[0].Until == nil || l[0].Until.Sub(l[0].Since) != time.Hour || !strings.Contains(l[0].Reason, "404") {
		t.Errorf("bans = %+v, want one of an hour naming 404", l)
	}
}
