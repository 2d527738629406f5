package policy

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"
)

// newTestLimit returns a rate_limit stage on clk counting hits.
func newTestLimit(cfg RateLimitSpec, clk *clock, exempt func(netip.Addr) bool) (*rateLimit, *int) {
	start := clk.now()
	hits := new(int)
	if exempt == nil {
		exempt = func(netip.Addr) bool { return false }
	}
	return newRateLimit(cfg, exempt, func(netip.Addr, string) { *hits++ },
		func() int64 { return int64(clk.now().Sub(start)) }), hits
}

// outcome is a short form of a decision for tables: pass, 503 or drop.
func outcome(d Decision) string {
	switch d.Action {
	case Continue:
		return "pass"
	case Drop:
		return "drop:" + d.Cause
	}
	return fmt.Sprintf("%d:%s", d.Code, d.Cause)
}

func TestRateLimitSequence(t *testing.T) {
	cfg := RateLimitSpec{
		Requests:   Bucket{Rate: 10, Burst: 3},
		Invite:     Bucket{Rate: 1, Burst: 2},
		Register:   Bucket{Rate: 1, Burst: 1},
		DropAfter:  2,
		RetryAfter: 5 * time.Second,
		MaxSources: 100,
	}
	type step struct {
		wait   time.Duration
		method string
		toTag  string
		want   string
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"requests burst then 503 then drop", []step{
			{0, "OPTIONS", "", "pass"}, {0, "OPTIONS", "", "pass"}, {0, "OPTIONS", "", "pass"},
			{0, "OPTIONS", "", "503:rate_requests"}, {0, "OPTIONS", "", "503:rate_requests"},
			{0, "OPTIONS", "", "drop:rate_requests"}, {0, "OPTIONS", "", "drop:rate_requests"},
			// One token back: still silent until the bucket is full again;
			// ignored requests cost tokens too (a debt of -2 here).
			{100 * time.Millisecond, "OPTIONS", "", "drop:rate_requests"},
			{300 * time.Millisecond, "OPTIONS", "", "drop:rate_requests"},
			{500 * time.Millisecond, "OPTIONS", "", "pass"},
		}},
		{"invite bucket", []step{
			{0, "INVITE", "", "pass"}, {0, "INVITE", "", "pass"}, {0, "INVITE", "", "503:rate_invite"},
			// An in-dialog re-INVITE, ACK and CANCEL use only requests.
			{100 * time.Millisecond, "INVITE", "tt", "pass"},
			{time.Second, "INVITE", "", "pass"},
		}},
		{"ack and cancel never take invite tokens", []step{
			{0, "INVITE", "", "pass"}, {0, "INVITE", "", "pass"},
			{0, "ACK", "", "pass"}, {200 * time.Millisecond, "CANCEL", "", "pass"},
			{0, "INVITE", "", "503:rate_invite"},
		}},
		{"register bucket", []step{
			{0, "REGISTER", "", "pass"}, {0, "REGISTER", "", "503:rate_register"},
			{0, "OPTIONS", "", "pass"},
			{time.Second, "REGISTER", "", "pass"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newClock()
			l, hits := newTestLimit(cfg, clk, nil)
			wantHits := 0
			for i, s := range tt.steps {
				clk.add(s.wait)
				r := req("192.0.2.1", s.method)
				r.ToTag = s.toTag
				d := l.Check(context.Background(), r)
				if got := outcome(d); got != s.want {
					t.Fatalf("step %d (%s): %s, want %s", i, s.method, got, s.want)
				}
				if d.Action == Answer && d.RetryAfter != cfg.RetryAfter {
					t.Errorf("step %d: Retry-After %s, want %s", i, d.RetryAfter, cfg.RetryAfter)
				}
				if s.want != "pass" {
					wantHits++
				}
			}
			if *hits != wantHits {
				t.Errorf("%d ban hits, want one per refusal (%d)", *hits, wantHits)
			}
		})
	}
}

func TestRateLimitSources(t *testing.T) {
	cfg := RateLimitSpec{Requests: Bucket{Rate: 1, Burst: 1}, DropAfter: 5, RetryAfter: time.Second,
		MaxSources: 100, ExemptCIDRs: []string{"198.51.100.0/24"}}
	clk := newClock()
	exempt, err := exemptFunc(func(a netip.Addr) bool { return a == ip("192.0.2.200") }, cfg.ExemptCIDRs)
	if err != nil {
		t.Fatal(err)
	}
	l, _ := newTestLimit(cfg, clk, exempt)
	tests := []struct {
		name        string
		first, then string
		want        string
	}{
		{"other IPv4 source has its own bucket", "192.0.2.1", "192.0.2.2", "pass"},
		{"same IPv6 /64 shares a bucket", "2001:db8:1:1::1", "2001:db8:1:1::2", "503:rate_requests"},
		{"another IPv6 /64", "2001:db8:1:2::1", "2001:db8:1:3::1", "pass"},
		{"mapped is the IPv4 source", "192.0.2.9", "::ffff:192.0.2.9", "503:rate_requests"},
		{"exempt trunk", "192.0.2.200", "192.0.2.200", "pass"},
		{"exempt cidr", "198.51.100.7", "198.51.100.7", "pass"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l.Check(context.Background(), req(tt.first, "OPTIONS"))
			if got := outcome(l.Check(context.Background(), req(tt.then, "OPTIONS"))); got != tt.want {
				t.Errorf("second request: %s, want %s", got, tt.want)
			}
		})
	}
}

func TestRateLimitOff(t *testing.T) {
	clk := newClock()
	l, _ := newTestLimit(RateLimitSpec{MaxSources: 10}, clk, nil)
	for i := range 1000 {
		if d := l.Check(context.Background(), req("192.0.2.1", "INVITE")); d.Action != Continue {
			t.Fatalf("request %d refused with every bucket off: %+v", i, d)
		}
	}
	if n := l.sources.len(); n != 0 {
		t.Errorf("%d sources tracked with every bucket off, want 0", n)
	}
}

func TestRateLimitSpoofedFloodBounded(t *testing.T) {
	cfg := testPolicy().RateLimit
	cfg.MaxSources = 1000
	clk := newClock()
	l, _ := newTestLimit(cfg, clk, nil)
	for i := range 100000 {
		a := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		l.Check(context.Background(), &Request{Src: netip.AddrPortFrom(a, 5060), Method: "INVITE"})
	}
	if n := l.sources.len(); n > cfg.MaxSources {
		t.Errorf("%d sources tracked, want at most %d", n, cfg.MaxSources)
	}
}

// TestRateLimitModerateFloodGoesSilent: a source flooding at three times
// its rate still gets a token now and then; that must not forgive its
// refusals, or it would be answered 503 for as long as it floods.
func TestRateLimitModerateFloodGoesSilent(t *testing.T) {
	cfg := RateLimitSpec{Requests: Bucket{Rate: 10, Burst: 10}, DropAfter: 5,
		RetryAfter: time.Second, MaxSources: 10}
	clk := newClock()
	l, _ := newTestLimit(cfg, clk, nil)
	answered := 0
	for range 300 { // 10 s at 30 requests/s
		clk.add(time.Second / 30)
		if d := l.Check(context.Background(), req("192.0.2.1", "OPTIONS")); d.Action == Answer {
			answered++
		}
	}
	if answered > cfg.DropAfter {
		t.Errorf("%d refusals answered with 503 during a steady flood, want at most drop_after (%d)", answered, cfg.DropAfter)
	}
	// Once it stops long enough to refill, it is served again.
	clk.add(2 * time.Second)
	if got := outcome(l.Check(context.Background(), req("192.0.2.1", "OPTIONS"))); got != "pass" {
		t.Errorf("after the flood: %s, want pass", got)
	}
}
