package security

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// clock is a settable time source for tests.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// udpHit is the evidence of one event in a UDP datagram.
var udpHit = Evidence{Scope: ScopeUDP, Events: 1}

func openTest(t *testing.T, file string) *Bans {
	t.Helper()
	b, err := OpenBans(file, nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestBansLookup(t *testing.T) {
	b := openTest(t, "")
	for _, a := range []string{"192.0.2.7", "2001:db8::1", "198.51.100.0/24", "2001:db8:1::/48", "::ffff:203.0.113.9"} {
		if err := b.Add(a, "test "+a, 0); err != nil {
			t.Fatalf("Add(%s): %v", a, err)
		}
	}
	tests := []struct {
		ip     string
		banned bool
		reason string
	}{
		{"192.0.2.7", true, "test 192.0.2.7"},
		{"192.0.2.8", false, ""},
		{"::ffff:192.0.2.7", true, "test 192.0.2.7"}, // mapped looked up as IPv4
		{"2001:db8::1", true, "test 2001:db8::1"},
		{"2001:db8::2", false, ""},
		{"198.51.100.200", true, "test 198.51.100.0/24"},
		{"::ffff:198.51.100.1", true, "test 198.51.100.0/24"},
		{"198.51.101.1", false, ""},
		{"2001:db8:1:ffff::5", true, "test 2001:db8:1::/48"},
		{"2001:db8:2::5", false, ""},
		{"203.0.113.9", true, "test ::ffff:203.0.113.9"}, // stored unmapped
	}
	for _, tt := range tests {
		t.Run(tt.ip, func(t *testing.T) {
			for _, udp := range []bool{true, false} { // an operator's bans cover every transport
				reason, ok := b.Banned(netip.MustParseAddr(tt.ip), udp)
				if ok != tt.banned || reason != tt.reason {
					t.Errorf("Banned(udp %v) = %q, %v; want %q, %v", udp, reason, ok, tt.reason, tt.banned)
				}
			}
		})
	}
}

func TestParseBanAddr(t *testing.T) {
	tests := []struct{ in, want string }{
		{"192.0.2.7", "192.0.2.7/32"},
		{" 192.0.2.7 ", "192.0.2.7/32"},
		{"192.0.2.7/24", "192.0.2.0/24"},
		{"::ffff:192.0.2.7", "192.0.2.7/32"},
		{"::ffff:192.0.2.0/120", "192.0.2.0/24"},
		{"2001:DB8::1", "2001:db8::1/128"},
		{"2001:db8::1/32", "2001:db8::/32"},
		{"::ffff:0:0/64", ""},
		{"fe80::1%eth0", ""},
		{"example.com", ""},
		{"192.0.2.0/33", ""},
		{"", ""},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			p, err := ParseBanAddr(tt.in)
			if tt.want == "" {
				if err == nil {
					t.Errorf("ParseBanAddr(%q) = %v, want an error", tt.in, p)
				}
				return
			}
			if err != nil || p.String() != tt.want {
				t.Errorf("ParseBanAddr(%q) = %v, %v; want %s", tt.in, p, err, tt.want)
			}
		})
	}
}

func TestBansPersistAcrossOpen(t *testing.T) {
	file := filepath.Join(t.TempDir(), "bans.json")
	b := openTest(t, file)
	if err := b.Add("192.0.2.7", "manual", 0); err != nil {
		t.Fatal(err)
	}
	if err := b.Add("2001:db8::/32", "range", time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := b.Add("198.51.100.1", "gone", time.Hour); err != nil {
		t.Fatal(err)
	}
	if !b.Remove("198.51.100.1") {
		t.Fatal("Remove of a ban = false")
	}
	if b.Remove("198.51.100.1") {
		t.Error("second Remove = true")
	}
	want := b.List()
	if len(want) != 2 {
		t.Fatalf("List = %+v, want 2 bans", want)
	}

	got := openTest(t, file).List()
	if !sameEntries(got, want) {
		t.Errorf("after reopen List = %+v\nwant %+v", got, want)
	}
	if _, ok := openTest(t, file).Banned(netip.MustParseAddr("198.51.100.1"), true); ok {
		t.Error("removed ban is back after reopen")
	}
	// Nothing but the file is left in the directory (no temporary files).
	if ents, _ := os.ReadDir(filepath.Dir(file)); len(ents) != 1 {
		t.Errorf("directory holds %d entries, want only the bans file", len(ents))
	}
}

func sameEntries(a, b []BanEntry) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		if x.Addr != y.Addr || x.Reason != y.Reason || !x.Since.Equal(y.Since) || x.Scope != y.Scope || x.Evidence != y.Evidence ||
			(x.Until == nil) != (y.Until == nil) || (x.Until != nil && !x.Until.Equal(*y.Until)) {
			return false
		}
	}
	return true
}

func TestBansExpire(t *testing.T) {
	file := filepath.Join(t.TempDir(), "bans.json")
	clk := &clock{t: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)}
	b := openTest(t, file)
	b.now = clk.now
	if err := b.Add("192.0.2.1", "short", time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := b.Add("192.0.2.0/24", "long", 2*time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := b.Add("192.0.2.3", "forever", 0); err != nil {
		t.Fatal(err)
	}
	ip := netip.MustParseAddr("192.0.2.1")
	if r, _ := b.Banned(ip, true); r != "short" {
		t.Errorf("before expiry: reason %q, want short", r)
	}
	clk.add(time.Minute)
	if r, _ := b.Banned(ip, true); r != "long" {
		t.Errorf("after the IP ban expired: reason %q, want the prefix's (long)", r)
	}
	clk.add(time.Minute)
	if _, ok := b.Banned(ip, true); ok {
		t.Error("banned after both bans expired")
	}
	if l := b.List(); len(l) != 1 || l[0].Addr != "192.0.2.3" || l[0].Until != nil {
		t.Errorf("List = %+v, want only the ban until removed", l)
	}
	// The file still holds the expired bans (written before they expired);
	// a reopen at the later time drops them.
	b2, err := OpenBans(file, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(b2.List()); n != 1 {
		t.Errorf("reopened store lists %d bans, want 1", n)
	}
}

func TestBansBanIsWrittenLater(t *testing.T) {
	file := filepath.Join(t.TempDir(), "bans.json")
	b := openTest(t, file)
	ip := netip.MustParseAddr("203.0.113.5")
	if !b.Ban(ip, "auth_failures", time.Hour, udpHit) {
		t.Fatal("Ban = false for a new source")
	}
	if b.Ban(ip, "auth_failures", time.Hour, udpHit) {
		t.Error("Ban = true for a source already banned")
	}
	if err := b.Flush(); err != nil {
		t.Fatal(err)
	}
	if r, ok := openTest(t, file).Banned(ip, true); !ok || r != "auth_failures" {
		t.Errorf("after Flush and reopen: %q, %v; want auth_failures", r, ok)
	}
	// The delayed write also happens on its own.
	ip2 := netip.MustParseAddr("203.0.113.6")
	b.Ban(ip2, "not_found", 0, udpHit)
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, ok := openTest(t, file).Banned(ip2, true); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("delayed write did not happen within 5s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestBansBanBounded(t *testing.T) {
	b := openTest(t, "")
	for i := range MaxBans + 100 {
		ip := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		b.Ban(ip, "flood", time.Hour, udpHit)
	}
	if n := len(b.List()); n != MaxBans {
		t.Errorf("store holds %d bans, want MaxBans (%d)", n, MaxBans)
	}
	// The operator can still add.
	if err := b.Add("192.0.2.1", "operator", 0); err != nil {
		t.Fatal(err)
	}
	if _, ok := b.Banned(netip.MustParseAddr("192.0.2.1"), true); !ok {
		t.Error("operator ban refused when full")
	}
}

func TestOpenBansErrors(t *testing.T) {
	dir := t.TempDir()
	tests := []struct{ name, data string }{
		{"not json", "{bans"},
		{"wrong version", `{"version": 3, "bans": []}`},
		{"bad scope", `{"version": 2, "bans": [{"addr": "192.0.2.1", "since": "2025-01-01T00:00:00Z", "scope": "tcp", "evidence": 1}]}`},
		{"udp without evidence", `{"version": 2, "bans": [{"addr": "192.0.2.1", "since": "2025-01-01T00:00:00Z", "scope": "udp"}]}`},
		{"negative evidence", `{"version": 2, "bans": [{"addr": "192.0.2.1", "since": "2025-01-01T00:00:00Z", "evidence": -1}]}`},
		{"bad address", `{"version": 1, "bans": [{"addr": "nope", "reason": "x", "since": "2025-01-01T00:00:00Z"}]}`},
		{"unknown field", `{"version": 1, "bans": [], "extra": 1}`},
		{"trailing data", `{"version": 1, "bans": []} {}`},
		{"duplicate", `{"version": 1, "bans": [{"addr": "192.0.2.1", "since": "2025-01-01T00:00:00Z"}, {"addr": "::ffff:192.0.2.1", "since": "2025-01-01T00:00:00Z"}]}`},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := filepath.Join(dir, fmt.Sprintf("bans%d.json", i))
			if err := os.WriteFile(file, []byte(tt.data), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := OpenBans(file, nil)
			if err == nil || !strings.Contains(err.Error(), file) {
				t.Errorf("OpenBans error %v, want one naming %s", err, file)
			}
		})
	}
	t.Run("empty file", func(t *testing.T) {
		file := filepath.Join(dir, "empty.json")
		if err := os.WriteFile(file, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if b, err := OpenBans(file, nil); err != nil || len(b.List()) != 0 {
			t.Errorf("OpenBans(empty) = %v, want an empty store", err)
		}
	})
	t.Run("missing directory on write", func(t *testing.T) {
		b := openTest(t, filepath.Join(dir, "no", "such", "bans.json"))
		if err := b.Add("192.0.2.1", "x", 0); err == nil {
			t.Error("Add into a missing directory succeeded")
		}
		if _, ok := b.Banned(netip.MustParseAddr("192.0.2.1"), true); !ok {
			t.Error("ban not held in memory after the write failed")
		}
	})
}

func TestBansConcurrent(t *testing.T) {
	b := openTest(t, filepath.Join(t.TempDir(), "bans.json"))
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 50 {
				addr := fmt.Sprintf("10.%d.0.%d", g, i)
				if err := b.Add(addr, "c", time.Hour); err != nil {
					t.Error(err)
					return
				}
				b.Banned(netip.MustParseAddr(addr), true)
				b.Ban(netip.AddrFrom4([4]byte{11, byte(g), 0, byte(i)}), "b", time.Hour, Evidence{Scope: Scope(i % 2), Events: i})
				if i%2 == 0 {
					b.Remove(addr)
				}
				b.List()
			}
		})
	}
	wg.Wait()
	if err := b.Flush(); err != nil {
		t.Fatal(err)
	}
	if got, want := len(openTest(t, b.file).List()), len(b.List()); got != want || want != 4*25+4*50 {
		t.Errorf("reopened %d bans, store has %d, want %d", got, want, 4*25+4*50)
	}
}

func FuzzDecodeBans(f *testing.F) {
	until := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	data, _ := encodeBans([]BanEntry{
		{Addr: "192.0.2.7", Reason: "auth_failures", Since: until.Add(-time.Hour), Until: &until},
		{Addr: "2001:db8::/32", Reason: "manual", Since: until},
		{Addr: "198.51.100.9", Reason: "scanner", Since: until, Until: &until, Scope: "udp", Evidence: 1},
	})
	f.Add(data)
	f.Add([]byte(`{"version":1,"bans":[]}`))
	f.Add([]byte(`{"version":2,"bans":[{"addr":"2001:db8::/64","reason":"r","since":"2025-01-01T00:00:00Z","scope":"udp","evidence":3}]}`))
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, data []byte) {
		bans, err := decodeBans(data, now)
		if err != nil {
			return
		}
		// What decodes must survive a round trip unchanged.
		entries := make([]BanEntry, len(bans))
		for i, x := range bans {
			entries[i] = x.entry()
		}
		out, err := encodeBans(entries)
		if err != nil {
			t.Fatalf("encode decoded bans: %v", err)
		}
		again, err := decodeBans(out, now)
		if err != nil {
			t.Fatalf("re-decode: %v\n%s", err, out)
		}
		if len(again) != len(bans) {
			t.Fatalf("round trip: %d bans, want %d", len(again), len(bans))
		}
		for i := range bans {
			if again[i].prefix != bans[i].prefix || again[i].reason != bans[i].reason || again[i].evidence != bans[i].evidence {
				t.Fatalf("round trip changed ban %d: %+v, want %+v", i, again[i], bans[i])
			}
		}
		var probe map[string]any
		if err := json.Unmarshal(out, &probe); err != nil {
			t.Fatalf("encoded file is not JSON: %v", err)
		}
	})
}
