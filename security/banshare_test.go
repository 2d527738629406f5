package security

import (
	"net/netip"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// Local changes reach OnChange; changes applied from a peer do not, so a
// cluster never echoes a ban back.
func TestBanChangesReported(t *testing.T) {
	b, err := OpenBans("", nil)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var got []BanChange
	b.OnChange(func(c BanChange) { mu.Lock(); got = append(got, c); mu.Unlock() })

	if err := b.Add("198.51.100.0/24", "operator", 0); err != nil {
		t.Fatal(err)
	}
	ip := netip.MustParseAddr("192.0.2.7")
	if !b.Ban(ip, "scanner", time.Minute, Evidence{Scope: ScopeUDP, Events: 3}) {
		t.Fatal("Ban refused")
	}
	if b.Ban(ip, "again", time.Minute, Evidence{Scope: ScopeUDP, Events: 1}) {
		t.Fatal("a second UDP ban of a banned source changed it")
	}
	b.Ban(ip, "over tls", time.Minute, Evidence{Scope: ScopeAll, Events: 1}) // widened
	b.Remove("198.51.100.0/24")
	until := time.Now().Add(time.Hour)
	if err := b.Apply(BanEntry{Addr: "203.0.113.9", Reason: "from node 2", Since: time.Now(), Until: &until, Scope: "udp", Evidence: 2}); err != nil {
		t.Fatal(err)
	}
	b.Lift("192.0.2.7")

	mu.Lock()
	defer mu.Unlock()
	if len(got) != 4 {
		t.Fatalf("%d changes reported, want 4 (add, ban, widen, remove): %+v", len(got), got)
	}
	if got[0].Entry.Addr != "198.51.100.0/24" || got[0].Entry.Until != nil || got[0].Removed {
		t.Errorf("add: %+v", got[0])
	}
	if got[1].Entry.Addr != "192.0.2.7" || got[1].Entry.Scope != "udp" || got[1].Entry.Evidence != 3 || got[1].Entry.Until == nil {
		t.Errorf("ban: %+v", got[1])
	}
	if got[2].Entry.Scope != "all" || got[2].Entry.Evidence != 4 || got[2].Entry.Reason != "over tls" {
		t.Errorf("widen: %+v", got[2])
	}
	if !got[3].Removed || got[3].Entry.Addr != "198.51.100.0/24" {
		t.Errorf("remove: %+v", got[3])
	}
	if _, ok := b.Banned(netip.MustParseAddr("203.0.113.9"), true); !ok {
		t.Error("the applied ban does not hold")
	}
	if _, ok := b.Banned(ip, false); ok {
		t.Error("the lifted ban still holds")
	}
}

// Apply keeps the ban that ends later, ignores expired entries, refuses
// what a bans file would refuse, and is written to the file.
func TestBanApply(t *testing.T) {
	file := filepath.Join(t.TempDir(), "bans.json")
	b, err := OpenBans(file, nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	soon, later, past := now.Add(time.Minute), now.Add(time.Hour), now.Add(-time.Second)
	if err := b.Add("192.0.2.1", "forever here", 0); err != nil {
		t.Fatal(err)
	}
	if err := b.Apply(BanEntry{Addr: "192.0.2.1", Reason: "an hour there", Since: now, Until: &later}); err != nil {
		t.Fatal(err)
	}
	if r, _ := b.Banned(netip.MustParseAddr("192.0.2.1"), false); r != "forever here" {
		t.Errorf("a ban until removed was replaced by one ending sooner: %q", r)
	}
	if err := b.Apply(BanEntry{Addr: "192.0.2.2", Reason: "gone", Since: now, Until: &past}); err != nil {
		t.Fatal(err)
	}
	if _, ok := b.Banned(netip.MustParseAddr("192.0.2.2"), false); ok {
		t.Error("an expired ban was applied")
	}
	for _, bad := range []BanEntry{
		{Addr: "not-an-ip", Until: &soon},
		{Addr: "192.0.2.3", Scope: "udp"}, // UDP-only without evidence
		{Addr: "192.0.2.4", Scope: "tcp", Evidence: 1},
		{Addr: "192.0.2.5", Until: &time.Time{}},
	} {
		if err := b.Apply(bad); err == nil {
			t.Errorf("Apply(%+v) accepted", bad)
		}
	}
	if err := b.Apply(BanEntry{Addr: "2001:db8::/64", Reason: "v6", Since: now, Until: &later, Scope: "all", Evidence: 5}); err != nil {
		t.Fatal(err)
	}
	if err := b.Flush(); err != nil {
		t.Fatal(err)
	}
	again, err := OpenBans(file, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := again.Banned(netip.MustParseAddr("2001:db8::99"), false); !ok {
		t.Error("the applied ban was not written to the file")
	}
}
