package security

import (
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestBansScope: evidence from UDP bans UDP only; evidence from a
// connection widens the ban to every transport.
func TestBansScope(t *testing.T) {
	b := openTest(t, "")
	clk := &clock{t: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)}
	b.now = clk.now
	ip := netip.MustParseAddr("192.0.2.9")
	if !b.Ban(ip, "scanner user-agent", time.Hour, udpHit) {
		t.Fatal("Ban = false for a new source")
	}
	if _, ok := b.Banned(ip, true); !ok {
		t.Error("UDP ban does not cover UDP")
	}
	if _, ok := b.Banned(ip, false); ok {
		t.Error("UDP ban covers connections")
	}
	if b.Ban(ip, "again", time.Hour, udpHit) {
		t.Error("a second UDP ban of the same source changed it")
	}
	if !b.Ban(ip, "5 authentication failures", 2*time.Hour, Evidence{Scope: ScopeAll, Events: 5}) {
		t.Fatal("evidence from a connection did not widen the UDP ban")
	}
	if r, ok := b.Banned(ip, false); !ok || r != "5 authentication failures" {
		t.Errorf("widened ban on connections: %q, %v", r, ok)
	}
	l := b.List()
	if len(l) != 1 || l[0].Scope != "all" || l[0].Evidence != 6 || l[0].Until == nil || l[0].Until.Sub(l[0].Since) != 2*time.Hour {
		t.Errorf("List = %+v, want one ban on all transports, evidence 6, two hours", l)
	}
	if b.Ban(ip, "more", time.Hour, Evidence{Scope: ScopeAll, Events: 1}) {
		t.Error("a ban on every transport changed again")
	}
	// An operator's ban is never widened or replaced by Ban.
	if err := b.Add("192.0.2.10", "operator", 0); err != nil {
		t.Fatal(err)
	}
	if b.Ban(netip.MustParseAddr("192.0.2.10"), "x", time.Hour, Evidence{Scope: ScopeAll, Events: 9}) {
		t.Error("Ban changed an operator's ban")
	}
}

// TestBansIPv6PerSlash64: a dynamic ban of an IPv6 source covers its /64,
// as rate limits count it; an operator's ban of one address stays exact.
func TestBansIPv6PerSlash64(t *testing.T) {
	b := openTest(t, "")
	if !b.Ban(netip.MustParseAddr("2001:db8:1:2::1"), "r", time.Hour, Evidence{Scope: ScopeAll, Events: 1}) {
		t.Fatal("Ban = false")
	}
	for ip, want := range map[string]bool{
		"2001:db8:1:2::1": true, "2001:db8:1:2:ffff:ffff:ffff:ffff": true, "2001:db8:1:2::1%eth0": true,
		"2001:db8:1:3::1": false, "2001:db8:1::1": false,
	} {
		if _, ok := b.Banned(netip.MustParseAddr(ip), false); ok != want {
			t.Errorf("Banned(%s) = %v, want %v", ip, ok, want)
		}
	}
	if b.Ban(netip.MustParseAddr("2001:db8:1:2::99"), "r", time.Hour, Evidence{Scope: ScopeAll, Events: 1}) {
		t.Error("another address of the banned /64 made a second ban")
	}
	if err := b.Add("2001:db8:9::1", "operator", 0); err != nil {
		t.Fatal(err)
	}
	if _, ok := b.Banned(netip.MustParseAddr("2001:db8:9::2"), true); ok {
		t.Error("an operator's ban of one IPv6 address covers its /64")
	}
	l := b.List()
	if len(l) != 2 || l[0].Addr != "2001:db8:1:2::/64" || l[1].Addr != "2001:db8:9::1" {
		t.Errorf("List = %+v", l)
	}
	if !b.Remove("2001:db8:1:2::/64") {
		t.Error("Remove of the /64 = false")
	}
}

// TestBansEvictLeastEvidence: a store filled by 100,000 one-hit spoofed
// bans from distinct sources keeps the bans that rest on more evidence
// (more events, or events over connections) and every operator's ban;
// the one-hit bans evict one another, oldest first.
func TestBansEvictLeastEvidence(t *testing.T) {
	clk := &clock{t: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)}
	b := openTest(t, "")
	b.now = clk.now
	keep := []struct {
		addr string
		ev   Evidence // none: an operator's ban
	}{
		{"192.0.2.1", Evidence{Scope: ScopeUDP, Events: 5}}, // five wrong passwords over UDP
		{"192.0.2.2", Evidence{Scope: ScopeAll, Events: 1}}, // a scanner over TCP
		{"2001:db8:7:8::7", Evidence{Scope: ScopeUDP, Events: 2}},
		{"2001:db8:5:6::/64", Evidence{}},
		{"198.51.100.0/24", Evidence{}},
		{"203.0.113.77", Evidence{}},
		{"2001:db8:abcd::/48", Evidence{}},
	}
	for _, k := range keep {
		addr, ev := k.addr, k.ev
		var err error
		if ev.Events == 0 {
			err = b.Add(addr, "operator", 0)
		} else if !b.Ban(netip.MustParseAddr(addr), "evidence", time.Hour, ev) {
			t.Fatalf("Ban(%s) = false", addr)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	const flood = 100_000
	floodIP := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}) }
	for i := range flood {
		clk.add(time.Millisecond) // each newer than the last
		ip := floodIP(i)
		if !b.Ban(ip, "scanner user-agent", time.Hour, udpHit) {
			t.Fatalf("one-hit ban %d refused: one-hit bans make room among themselves", i)
		}
	}
	if n := len(b.List()); n != MaxBans {
		t.Errorf("store holds %d bans, want MaxBans (%d)", n, MaxBans)
	}
	for _, k := range keep {
		p, _ := ParseBanAddr(k.addr)
		if _, ok := b.Banned(p.Addr(), true); !ok {
			t.Errorf("%s evicted by one-hit bans", k.addr)
		}
	}
	if _, ok := b.Banned(floodIP(flood-1), true); !ok {
		t.Error("the newest one-hit ban is not held")
	}
	if _, ok := b.Banned(floodIP(0), true); ok {
		t.Error("the oldest one-hit ban is still held")
	}
	// A store full of bans that all outrank the new evidence refuses it.
	for i := range MaxBans {
		ip := netip.AddrFrom4([4]byte{11, byte(i >> 16), byte(i >> 8), byte(i)})
		b.Ban(ip, "stream", time.Hour, Evidence{Scope: ScopeAll, Events: 3})
	}
	if b.Ban(netip.MustParseAddr("192.0.2.200"), "weak", time.Hour, Evidence{Scope: ScopeAll, Events: 2}) {
		t.Error("a weaker ban evicted a stronger one")
	}
	for _, k := range keep {
		if k.ev.Events == 0 {
			p, _ := ParseBanAddr(k.addr)
			if _, ok := b.Banned(p.Addr(), false); !ok {
				t.Errorf("operator's ban %s evicted", k.addr)
			}
		}
	}
}

// TestBansFileScope: bans keep their scope and evidence across a restart,
// and a version 1 file (before scopes) still loads, as bans on every
// transport that are never evicted.
func TestBansFileScope(t *testing.T) {
	file := filepath.Join(t.TempDir(), "bans.json")
	b := openTest(t, file)
	b.Ban(netip.MustParseAddr("192.0.2.1"), "udp scanner", time.Hour, udpHit)
	b.Ban(netip.MustParseAddr("2001:db8::1"), "tcp scanner", time.Hour, Evidence{Scope: ScopeAll, Events: 4})
	if err := b.Add("198.51.100.0/24", "operator", 0); err != nil {
		t.Fatal(err)
	}
	if err := b.Flush(); err != nil {
		t.Fatal(err)
	}
	want := b.List()
	got := openTest(t, file).List()
	if !sameEntries(got, want) || len(got) != 3 {
		t.Fatalf("after reopen List = %+v\nwant %+v", got, want)
	}
	if got[0].Scope != "udp" || got[0].Evidence != 1 || got[2].Scope != "all" || got[2].Evidence != 4 || got[1].Evidence != 0 {
		t.Errorf("reopened bans lost their scope or evidence: %+v", got)
	}
	r := openTest(t, file)
	if _, ok := r.Banned(netip.MustParseAddr("192.0.2.1"), false); ok {
		t.Error("reopened UDP ban covers connections")
	}

	old := filepath.Join(t.TempDir(), "v1.json")
	v1 := `{"version": 1, "bans": [{"addr": "192.0.2.7", "reason": "5 authentication failures within 5m0s",
		"since": "2025-01-02T03:04:05Z", "until": "2999-01-01T00:00:00Z"}]}`
	if err := os.WriteFile(old, []byte(v1), 0o600); err != nil {
		t.Fatal(err)
	}
	o := openTest(t, old)
	if _, ok := o.Banned(netip.MustParseAddr("192.0.2.7"), false); !ok {
		t.Error("a version 1 ban does not cover connections")
	}
	if l := o.List(); len(l) != 1 || l[0].Scope != "all" || l[0].Evidence != 0 {
		t.Errorf("version 1 ban listed as %+v", l)
	}
	if len(o.queue) != 0 {
		t.Error("a version 1 ban can be evicted")
	}
}

// BenchmarkBansBanned is the per-packet lookup of a source that is not
// banned, in a store holding MaxBans bans (the worst case: every map and
// the prefix list are looked at).
func BenchmarkBansBanned(b *testing.B) {
	s, _ := OpenBans("", nil)
	for i := range MaxBans - 2 {
		s.Ban(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), "r", time.Hour, udpHit)
	}
	_ = s.Add("198.51.100.0/24", "operator", 0)
	_ = s.Add("2001:db8:abcd::/48", "operator", 0)
	ip := netip.MustParseAddr("2001:db8::1")
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := s.Banned(ip, true); ok {
			b.Fatal("banned")
		}
	}
}

// BenchmarkBansBanFull is one new one-hit ban against a full store: it
// evicts the weakest ban (a heap operation, no walk of the store).
func BenchmarkBansBanFull(b *testing.B) {
	s, _ := OpenBans("", nil)
	for i := range MaxBans {
		s.Ban(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), "r", time.Hour, udpHit)
	}
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		i++
		if !s.Ban(netip.AddrFrom4([4]byte{11, byte(i >> 16), byte(i >> 8), byte(i)}), "r", time.Hour, udpHit) {
			b.Fatal("refused")
		}
	}
}
