package policy

import (
	"maps"
	"net/netip"
	"sync/atomic"
)

// Counts are calls in progress by what admission limits: in total, per
// trunk, per user and per source key (an IPv4 address or an IPv6 /64).
// Calls to the echo destination are limited per node and not in Counts.
type Counts struct {
	Total  int
	Trunks map[string]int
	Users  map[string]int
	IPs    map[netip.Addr]int
}

// Local returns this node's calls in progress, fresh maps, and a version
// that changes whenever they do: a cluster publishes them when the
// version moved.
func (a *Admission) Local() (Counts, uint64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return Counts{Total: a.total, Trunks: maps.Clone(a.trunks), Users: maps.Clone(a.users), IPs: maps.Clone(a.ips)}, a.version
}

// SetOthers sets the calls in progress on the other nodes of a cluster,
// added to this node's own under every limit but the echo destination's;
// nil forgets them (Redis unreachable: each node limits on its own). The
// maps are read, never written: the caller gives fresh ones each time.
func (a *Admission) SetOthers(c *Counts) { a.others.Store(c) }

// OthersTotal is the calls in progress on the other nodes of a cluster as
// this node last read them (0 when it has none or forgot them).
func (a *Admission) OthersTotal() int {
	if o := a.others.Load(); o != nil {
		return o.Total
	}
	return 0
}

// othersOf returns what the other nodes count against k. a.mu held.
func (a *Admission) othersOf(k admissionKeys) (total, trunk, user, ip int) {
	o := a.others.Load()
	if o == nil {
		return 0, 0, 0, 0
	}
	total = o.Total
	if k.trunk != "" {
		trunk = o.Trunks[k.trunk]
	}
	if k.user != "" {
		user = o.Users[k.user]
	}
	if k.ip.IsValid() {
		ip = o.IPs[k.ip]
	}
	return total, trunk, user, ip
}

// sharedCounts is what Admission keeps for a cluster.
type sharedCounts struct {
	others  atomic.Pointer[Counts]
	version uint64 // incremented on every admit and release; a.mu held
}
