package policy

import (
	"hash/maphash"
	"net/netip"
	"sync"
)

// sourceShards is how many independently locked parts a table has, so that
// requests from different sources rarely wait for each other.
const sourceShards = 16

// table is per-source state with a fixed capacity: a source seen for the
// first time when the table is full takes the place of one not seen
// recently (CLOCK, a cheap approximation of least recently used). A flood
// from spoofed sources therefore costs at most the capacity in memory and
// evicts only sources that are quiet; busy sources keep their state.
// Safe for concurrent use.
type table[V any] struct {
	seed   maphash.Seed
	shards []shard[V]
}

type shard[V any] struct {
	mu    sync.Mutex
	idx   map[netip.Addr]int
	slots []slot[V]
	max   int
	hand  int
}

type slot[V any] struct {
	key netip.Addr
	// ref: used again since it was placed or the hand last passed. A new
	// entry starts without it, so a source seen once (a spoofed flood) is
	// evicted before any source that came back.
	ref bool
	val V
}

// newTable returns a table holding at most capacity entries (at least one).
func newTable[V any](capacity int) *table[V] {
	capacity = max(capacity, 1)
	n := min(sourceShards, capacity)
	t := &table[V]{seed: maphash.MakeSeed(), shards: make([]shard[V], n)}
	for i := range t.shards {
		per := capacity / n // the sum never exceeds capacity
		t.shards[i] = shard[V]{idx: make(map[netip.Addr]int), max: per}
	}
	return t
}

// do runs fn on key's entry under its shard's lock. fresh is true when the
// entry was just created (its value is the zero V, possibly after an
// eviction). fn must not call back into the table.
func (t *table[V]) do(key netip.Addr, fn func(v *V, fresh bool)) {
	s := &t.shards[maphash.Comparable(t.seed, key)%uint64(len(t.shards))]
	s.mu.Lock()
	defer s.mu.Unlock()
	if i, ok := s.idx[key]; ok {
		s.slots[i].ref = true
		fn(&s.slots[i].val, false)
		return
	}
	i := s.place(key)
	fn(&s.slots[i].val, true)
}

// peek runs fn on key's entry if there is one, without marking it used,
// and reports whether there was.
func (t *table[V]) peek(key netip.Addr, fn func(v *V)) bool {
	s := &t.shards[maphash.Comparable(t.seed, key)%uint64(len(t.shards))]
	s.mu.Lock()
	defer s.mu.Unlock()
	i, ok := s.idx[key]
	if ok {
		fn(&s.slots[i].val)
	}
	return ok
}

// place makes a slot for key, evicting if the shard is full, and returns
// its index. Callers hold s.mu.
func (s *shard[V]) place(key netip.Addr) int {
	if len(s.slots) < s.max {
		s.slots = append(s.slots, slot[V]{key: key})
		s.idx[key] = len(s.slots) - 1
		return len(s.slots) - 1
	}
	// Two passes at most: the first clears every ref bit it meets.
	for {
		sl := &s.slots[s.hand]
		if !sl.ref {
			break
		}
		sl.ref = false
		s.hand = (s.hand + 1) % len(s.slots)
	}
	i := s.hand
	s.hand = (s.hand + 1) % len(s.slots)
	delete(s.idx, s.slots[i].key)
	s.slots[i] = slot[V]{key: key}
	s.idx[key] = i
	return i
}

// len returns the number of entries.
func (t *table[V]) len() int {
	n := 0
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		n += len(s.slots)
		s.mu.Unlock()
	}
	return n
}

// sourceKey is the key a source's state is kept under: the IPv4 address,
// or the /64 of an IPv6 address, since one host usually owns a whole /64 and
// could otherwise pick a fresh address for every request.
func sourceKey(ip netip.Addr) netip.Addr {
	ip = ip.Unmap().WithZone("")
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.Addr()
	}
	return ip
}
