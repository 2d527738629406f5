package media

import (
	"errors"
	"net"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"
)

// fakeClock is a settable clock for the port pool.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func useClock(m *Manager) *fakeClock {
	c := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	m.pool.mu.Lock()
	m.pool.now = c.now
	m.pool.mu.Unlock()
	return c
}

func TestPortExhaustionAndQuarantine(t *testing.T) {
	// Two pairs: exactly one audio stream (a pair facing each side).
	m := newTestManager(t, 2, public, func(c *Config) { c.Quarantine = 2 * time.Second })
	clock := useClock(m)
	offer := sipSDP("192.0.2.10", 49170)

	s1 := m.NewSession("call-1")
	if _, err := s1.Offer(SideA, offer); err != nil {
		t.Fatalf("first offer: %v", err)
	}
	s2 := m.NewSession("call-2")
	defer s2.Close()
	if _, err := s2.Offer(SideA, offer); !errors.Is(err, ErrNoPorts) {
		t.Fatalf("offer on a full range: %v, want ErrNoPorts", err)
	}
	if n := m.pool.inUse(); n != 2 {
		t.Fatalf("%d pairs in use after a failed allocation, want 2 (no leak)", n)
	}

	s1.Close()
	if n := m.pool.inUse(); n != 0 {
		t.Fatalf("%d pairs in use after Close", n)
	}
	clock.advance(100 * time.Millisecond)
	if _, err := s2.Offer(SideA, offer); !errors.Is(err, ErrNoPorts) {
		t.Fatalf("offer right after the release: %v, want ErrNoPorts", err)
	}
	// A full range takes back pairs released an eighth of the quarantine
	// ago (250 ms) rather than refusing the call.
	clock.advance(200 * time.Millisecond)
	if _, err := s2.Offer(SideA, offer); err != nil {
		t.Fatalf("offer on a range in quarantine 300 ms after the release: %v", err)
	}
}

// TestQuarantinePreferred: while a pair is free outside quarantine, a pair
// in quarantine is never handed out.
func TestQuarantinePreferred(t *testing.T) {
	min, max := freeRange(t, 2)
	p := newPortPool(min, max, 2*time.Second)
	now := time.Now()
	p.now = func() time.Time { return now }
	first, err := p.alloc(loopback)
	if err != nil {
		t.Fatal(err)
	}
	first.closeSockets()
	first.release()
	now = now.Add(time.Second) // past the early reuse, still in quarantine
	for range 50 {
		pr, err := p.alloc(loopback)
		if err != nil {
			t.Fatal(err)
		}
		if pr.port == first.port {
			t.Fatalf("the quarantined pair %d was handed out while another was free", pr.port)
		}
		pr.closeSockets()
		p.mu.Lock() // free again at once, so each draw has the same choice
		i := (pr.port - p.first) / 2
		p.pairs[i] = pairState{slot: int32(len(p.free))}
		p.free = append(p.free, int32(i))
		p.mu.Unlock()
	}
}

func TestPortPool(t *testing.T) {
	tests := []struct {
		name  string
		pairs int
		taken int   // pairs (from the start) bound by someone else
		want  []int // the pairs handed out, in any order
	}{
		{"every pair once", 3, 0, []int{0, 1, 2}},
		{"skips ports held elsewhere", 3, 1, []int{1, 2}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			min, max := freeRange(t, tc.pairs)
			for i := range tc.taken {
				c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: min + 2*i + 1})
				if err != nil {
					t.Fatalf("hold port: %v", err)
				}
				defer c.Close()
			}
			p := newPortPool(min, max, time.Hour)
			var got []*pair
			var ports, want []int
			for _, w := range tc.want {
				pr, err := p.alloc(loopback)
				if err != nil {
					t.Fatalf("alloc: %v", err)
				}
				got = append(got, pr)
				ports, want = append(ports, pr.port), append(want, min+2*w)
				if pr.port%2 != 0 {
					t.Fatalf("pair at odd port %d", pr.port)
				}
				if lp := pr.rtcp.LocalAddr().(*net.UDPAddr).Port; lp != pr.port+1 {
					t.Fatalf("rtcp on %d, want %d", lp, pr.port+1)
				}
			}
			slices.Sort(ports)
			if !slices.Equal(ports, want) {
				t.Fatalf("pairs at %v, want %v", ports, want)
			}
			if _, err := p.alloc(loopback); !errors.Is(err, ErrNoPorts) {
				t.Fatalf("alloc past the range: %v, want ErrNoPorts", err)
			}
			for _, pr := range got {
				pr.closeSockets()
				pr.release()
				pr.release() // idempotent
			}
			if p.inUse() != 0 {
				t.Fatalf("%d pairs in use after release", p.inUse())
			}
		})
	}
}

// TestPortAllocationUnpredictable: an attacker who saw one call's ports
// cannot tell the next call's. Successive allocations from a pool of many
// pairs are neither in order nor neighbours, and fresh pools do not start
// at the same pair. (Round-robin allocation fails all three checks; a
// uniform choice fails one with a chance below 1e-8.)
func TestPortAllocationUnpredictable(t *testing.T) {
	const pairs, allocs = 128, 24
	min, max := freeRange(t, pairs)
	p := newPortPool(min, max, time.Hour)
	var ports []int
	for range allocs {
		pr, err := p.alloc(loopback)
		if err != nil {
			t.Fatalf("alloc: %v", err)
		}
		defer func() { pr.closeSockets(); pr.release() }()
		ports = append(ports, pr.port)
	}
	neighbours, ascending := 0, 0
	for i := 1; i < len(ports); i++ {
		if d := ports[i] - ports[i-1]; d == 2 || d == -2 {
			neighbours++
		}
		if ports[i] > ports[i-1] {
			ascending++
		}
	}
	if neighbours >= 8 || ascending == len(ports)-1 {
		t.Fatalf("allocations %v: %d of %d steps to a neighbouring pair, %d upwards", ports, neighbours, len(ports)-1, ascending)
	}
	// A restarted SBC does not start where the last one did: the choice of
	// eight fresh pools (pick, without binding) is not one pair.
	firsts := map[int]bool{}
	for range 8 {
		q := newPortPool(min, max, time.Hour)
		q.mu.Lock()
		i, ok := q.pick(q.now())
		q.mu.Unlock()
		if !ok {
			t.Fatal("a fresh pool has no free pair")
		}
		firsts[i] = true
	}
	if len(firsts) == 1 {
		t.Fatalf("eight fresh pools all chose pair %v first", firsts)
	}
}

func TestNewManagerConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"valid", Config{Addrs: []Addr{{Bind: loopback}}, PortMin: 20000, PortMax: 20001}, true},
		{"odd min", Config{Addrs: []Addr{{Bind: loopback}}, PortMin: 20001, PortMax: 20003}, true},
		{"no bind ip", Config{PortMin: 20000, PortMax: 20001}, false},
		{"dual stack", Config{Addrs: []Addr{{Bind: loopback}, {Bind: netip.IPv6Loopback()}}, PortMin: 20000, PortMax: 20001}, true},
		{"two of a family", Config{Addrs: []Addr{{Bind: loopback}, {Bind: netip.MustParseAddr("127.0.0.2")}}, PortMin: 20000, PortMax: 20001}, false},
		{"public of the other family", Config{Addrs: []Addr{{Bind: netip.IPv6Unspecified(), Public: public}}, PortMin: 20000, PortMax: 20001}, false},
		{"ipv6 wildcard with public ip", Config{Addrs: []Addr{{Bind: netip.IPv6Unspecified(), Public: netip.MustParseAddr("2001:db8::5")}}, PortMin: 20000, PortMax: 20001}, true},
		{"wildcard without public ip", Config{Addrs: []Addr{{Bind: netip.IPv4Unspecified()}}, PortMin: 20000, PortMax: 20001}, false},
		{"wildcard with public ip", Config{Addrs: []Addr{{Bind: netip.IPv4Unspecified(), Public: public}}, PortMin: 20000, PortMax: 20001}, true},
		{"no pair", Config{Addrs: []Addr{{Bind: loopback}}, PortMin: 20001, PortMax: 20002}, false},
		{"reversed", Config{Addrs: []Addr{{Bind: loopback}}, PortMin: 20010, PortMax: 20000}, false},
		{"out of range", Config{Addrs: []Addr{{Bind: loopback}}, PortMin: 0, PortMax: 70000}, false},
		{"negative timeout", Config{Addrs: []Addr{{Bind: loopback}}, PortMin: 20000, PortMax: 20001, Timeout: -1}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := NewManager(tc.cfg, nil)
			if (err == nil) != tc.ok {
				t.Fatalf("NewManager(%+v) error %v, want ok=%v", tc.cfg, err, tc.ok)
			}
			if m != nil {
				m.Close()
			}
		})
	}
}

// TestPortPoolUnderChurn: short calls keep most pairs in quarantine. A
// pair is never handed out twice at once, never before an eighth of its
// quarantine has passed, and while any pair is past its quarantine no
// pair still in it is taken; the choice among the early ones is random.
func TestPortPoolUnderChurn(t *testing.T) {
	const pairs = 64
	p := newPortPool(30000, 30000+2*pairs-1, 2*time.Second)
	now := time.Unix(1e9, 0)
	p.now = func() time.Time { return now }
	nop := func(int) error { return nil }
	held := map[int]bool{}
	released := map[int]time.Time{}
	seen := map[int]bool{}
	for step := range 5000 {
		now = now.Add(5 * time.Millisecond)
		pr, err := p.take(nop)
		if err != nil {
			if len(held) == 0 {
				t.Fatalf("step %d: %v with nothing held", step, err)
			}
		} else {
			if held[pr.port] {
				t.Fatalf("step %d: pair %d handed out twice", step, pr.port)
			}
			if at, ok := released[pr.port]; ok {
				age := now.Sub(at)
				if age < 2*time.Second/8 {
					t.Fatalf("step %d: pair %d reused %v after its release", step, pr.port, age)
				}
				if age < 2*time.Second {
					// Early: only when no pair was past its quarantine.
					for port, r := range released {
						if port != pr.port && !held[port] && now.Sub(r) >= 2*time.Second {
							t.Fatalf("step %d: pair %d taken early (%v) while %d was out of quarantine", step, pr.port, age, port)
						}
					}
				}
			}
			held[pr.port] = true
			seen[pr.port] = true
			delete(released, pr.port)
			// Hold pairs for a few steps, then release one.
			if step%3 != 0 || len(held) > pairs/2 {
				for port := range held {
					(&pair{port: port, pool: p}).release()
					delete(held, port)
					released[port] = now
					break
				}
			}
		}
	}
	if len(seen) != pairs {
		t.Fatalf("%d of %d pairs ever handed out", len(seen), pairs)
	}
	if p.inUse() != len(held) {
		t.Fatalf("pool counts %d in use, the test holds %d", p.inUse(), len(held))
	}
	if len(p.quar) > 4*pairs {
		t.Fatalf("quarantine queue grew to %d entries for %d pairs", len(p.quar), pairs)
	}
}

// BenchmarkPortTake: one allocation and release from a pool of 2,000
// pairs with a 2 s quarantine, at 800 calls/s of simulated time (most of
// the pool in quarantine, as under the call-rate benchmark).
func BenchmarkPortTake(b *testing.B) {
	p := newPortPool(30000, 33999, 2*time.Second)
	now := time.Unix(1e9, 0)
	p.now = func() time.Time { return now }
	nop := func(int) error { return nil }
	var ring [400]*pair
	n := 0
	for b.Loop() {
		now = now.Add(time.Second / 800)
		pr, err := p.take(nop)
		if err != nil {
			b.Fatal(err)
		}
		if old := ring[n%len(ring)]; old != nil {
			old.release()
		}
		ring[n%len(ring)] = pr
		n++
	}
}
