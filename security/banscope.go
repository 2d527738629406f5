package security

import (
	"container/heap"
	"fmt"
	"net/netip"
)

// Scope is which transports a ban covers.
type Scope uint8

const (
	// ScopeAll: every transport. Bans an operator makes (Add), and dynamic
	// bans on evidence that came over a connection (TCP, TLS, WS, WSS),
	// whose handshake proves the source address.
	ScopeAll Scope = iota
	// ScopeUDP: UDP only. Dynamic bans on evidence that came in UDP
	// datagrams, whose source address anyone can forge: one spoofed
	// datagram must not cut a victim's TCP, TLS or WebSocket service.
	ScopeUDP
)

var scopeNames = [...]string{ScopeAll: "all", ScopeUDP: "udp"}

// String returns "all" or "udp", as in the bans file and the admin API.
func (s Scope) String() string {
	if int(s) < len(scopeNames) {
		return scopeNames[s]
	}
	return fmt.Sprintf("scope(%d)", uint8(s))
}

// ParseScope parses "all" or "udp"; "" (a ban from a file written before
// scopes existed) is ScopeAll, what such bans always covered.
func ParseScope(s string) (Scope, error) {
	switch s {
	case "", "all":
		return ScopeAll, nil
	case "udp":
		return ScopeUDP, nil
	}
	return 0, fmt.Errorf("ban scope %q: want all or udp", s)
}

// covers reports whether a ban of scope s applies to a packet that came
// over UDP (udp true) or a connection.
func (s Scope) covers(udp bool) bool { return s == ScopeAll || udp }

// Evidence is what a dynamic ban rests on.
type Evidence struct {
	// Scope is ScopeUDP when the events came in UDP datagrams, ScopeAll
	// when they came over connections.
	Scope Scope
	// Events counts them; at least 1.
	Events int
}

// outranks reports whether evidence a weighs more than b: evidence from
// connections outweighs any from datagrams (which anyone can forge), then
// more events outweigh fewer.
func (a Evidence) outranks(b Evidence) bool {
	if a.Scope != b.Scope {
		return a.Scope == ScopeAll
	}
	return a.Events > b.Events
}

// banPrefix is what a dynamic ban of ip covers: the IPv4 address, or the
// /64 of an IPv6 address (one host usually owns a whole /64, and rate
// limits count it as one source too).
func banPrefix(ip netip.Addr) netip.Prefix {
	ip = ip.Unmap().WithZone("")
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p
	}
	return netip.PrefixFrom(ip, 32)
}

// evictQueue orders the dynamic bans for eviction under table pressure:
// the least evidence first, then the oldest. Bans an operator made are
// never in it. It implements heap.Interface; its bans know their index.
type evictQueue []*ban

func (q evictQueue) Len() int { return len(q) }

func (q evictQueue) Less(i, j int) bool {
	a, b := q[i], q[j]
	if a.evidence != b.evidence {
		return b.evidence.outranks(a.evidence)
	}
	return a.since.Before(b.since)
}

func (q evictQueue) Swap(i, j int) {
	q[i], q[j] = q[j], q[i]
	q[i].index, q[j].index = i, j
}

func (q *evictQueue) Push(x any) {
	b := x.(*ban)
	b.index = len(*q)
	*q = append(*q, b)
}

func (q *evictQueue) Pop() any {
	old := *q
	b := old[len(old)-1]
	old[len(old)-1] = nil
	b.index = -1
	*q = old[:len(old)-1]
	return b
}

// add queues a dynamic ban.
func (q *evictQueue) add(b *ban) { heap.Push(q, b) }

// remove takes b out of the queue if it is in it.
func (q *evictQueue) remove(b *ban) {
	if b.index >= 0 && b.index < len(*q) && (*q)[b.index] == b {
		heap.Remove(q, b.index)
	}
}

// fix restores the order after b's evidence grew.
func (q *evictQueue) fix(b *ban) {
	if b.index >= 0 && b.index < len(*q) && (*q)[b.index] == b {
		heap.Fix(q, b.index)
	}
}

// weakest returns the ban to evict first, or nil.
func (q evictQueue) weakest() *ban {
	if len(q) == 0 {
		return nil
	}
	return q[0]
}
