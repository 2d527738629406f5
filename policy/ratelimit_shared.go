package policy

import (
	"net/netip"
	"sync"
	"sync/atomic"
)

// RateTaken is what one source used of one of its rate-limit buckets on
// this node since the last report: Kind is 0 (every request), 1 (new
// INVITEs) or 2 (REGISTERs).
type RateTaken struct {
	Src  netip.Addr // the source's key (an IPv4 address or an IPv6 /64)
	Kind uint8
	N    int
}

// RateKinds is how many bucket kinds a source has.
const RateKinds = bucketCount

// maxRateTaken bounds the sources recorded between two reports; past it
// new sources go unrecorded until the next report (the peers then see
// part of a spoofed-source flood, which per-source limits cannot stop
// anyway).
const maxRateTaken = 65536

// rateShare records the tokens taken for a cluster.
type rateShare struct {
	on    atomic.Bool
	mu    sync.Mutex
	taken map[netip.Addr]*[bucketCount]int
}

// record notes the tokens a passed request from ip took; nothing (not
// even the source's key) unless a cluster shares them.
func (s *rateShare) record(ip netip.Addr, kinds []int) {
	if !s.on.Load() {
		return
	}
	src := sourceKey(ip)
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.taken[src]
	if t == nil {
		if len(s.taken) >= maxRateTaken {
			return
		}
		t = new([bucketCount]int)
		s.taken[src] = t
	}
	for _, k := range kinds {
		t[k]++
	}
}

// ShareRates starts recording the tokens this node's sources take, for
// RateTaken. Without a rate-limit stage it does nothing.
func (c *Chain) ShareRates() {
	if c.rates == nil {
		return
	}
	s := &c.rates.share
	s.mu.Lock()
	if s.taken == nil {
		s.taken = map[netip.Addr]*[bucketCount]int{}
	}
	s.mu.Unlock()
	s.on.Store(true)
}

// RateTaken returns the tokens taken on this node since the last call and
// starts counting again.
func (c *Chain) RateTaken() []RateTaken {
	if c.rates == nil {
		return nil
	}
	s := &c.rates.share
	s.mu.Lock()
	taken := s.taken
	s.taken = make(map[netip.Addr]*[bucketCount]int, len(taken))
	s.mu.Unlock()
	out := make([]RateTaken, 0, len(taken))
	for src, t := range taken {
		for k, n := range t {
			if n > 0 {
				out = append(out, RateTaken{Src: src, Kind: uint8(k), N: n})
			}
		}
	}
	return out
}

// RateDrain takes from this node's buckets the tokens other nodes'
// requests took, so a source spread over the cluster is limited as one.
// A bucket goes no lower than one burst of debt, as a silenced source's.
// Exempt sources and kinds without a limit are left alone.
func (c *Chain) RateDrain(taken []RateTaken) {
	l := c.rates
	if l == nil {
		return
	}
	now := l.clock()
	for _, t := range taken {
		if int(t.Kind) >= bucketCount || t.N <= 0 || !t.Src.IsValid() {
			continue
		}
		b := l.buckets[t.Kind]
		if b.Rate <= 0 || l.exempt(t.Src) {
			continue
		}
		l.sources.do(sourceKey(t.Src), func(st *limitState, _ bool) {
			s := &st[t.Kind]
			l.refill(s, b, now)
			s.tokens = max(s.tokens-float64(t.N), -float64(b.Burst))
		})
	}
}
