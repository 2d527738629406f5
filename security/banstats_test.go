package security

import (
	"net/netip"
	"testing"
	"time"
)

// TestBanStats: Stats counts the bans in force (not the expired ones) and
// the bans made, by Ban and by Add; a widening, a repeat and a peer's ban
// are not new bans here.
func TestBanStats(t *testing.T) {
	clk := &clock{t: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)}
	b := openTest(t, "")
	b.now = clk.now
	ip := netip.MustParseAddr("192.0.2.1")
	steps := []struct {
		name string
		do   func()
		want BanStats
	}{
		{"empty", func() {}, BanStats{}},
		{"ban on udp", func() { b.Ban(ip, "scan", time.Minute, udpHit) }, BanStats{Active: 1, Dynamic: 1}},
		{"same ban again", func() { b.Ban(ip, "scan", time.Minute, udpHit) }, BanStats{Active: 1, Dynamic: 1}},
		{"widened", func() { b.Ban(ip, "scan", time.Minute, Evidence{Scope: ScopeAll, Events: 1}) }, BanStats{Active: 1, Dynamic: 1}},
		{"admin prefix", func() { _ = b.Add("198.51.100.0/24", "admin", 2*time.Minute) }, BanStats{Active: 2, Dynamic: 1, Admin: 1}},
		{"peer's ban", func() {
			_ = b.Apply(BanEntry{Addr: "203.0.113.9", Reason: "peer", Since: clk.now(), Scope: "all"})
		}, BanStats{Active: 3, Dynamic: 1, Admin: 1}},
		{"first expired", func() { clk.add(time.Minute) }, BanStats{Active: 2, Dynamic: 1, Admin: 1}},
		{"removed", func() { b.Remove("198.51.100.0/24") }, BanStats{Active: 1, Dynamic: 1, Admin: 1}},
	}
	for _, s := range steps {
		s.do()
		if got := b.Stats(); got != s.want {
			t.Errorf("%s: Stats = %+v, want %+v", s.name, got, s.want)
		}
	}
}
