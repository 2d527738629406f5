package policy

import "time"

// CPSTaken is what one user or trunk spent of its calls-per-second bucket
// (user_cps, trunk_cps) on this node since the last report.
type CPSTaken struct {
	Trunk bool   // false: a user
	Key   string // the user's or the trunk's name
	N     int
}

type cpsKey struct {
	trunk bool
	key   string
}

// cpsShare records the call-rate tokens this node's calls take, for a
// cluster. Its fields are guarded by Admission.mu.
type cpsShare struct {
	on    bool
	taken map[cpsKey]int
}

// record notes a token spent; nothing unless a cluster shares them. Past
// maxCPSKeys keys between two reports new keys go unrecorded (the peers
// then see part of the spread, as the buckets' own bound refuses).
func (s *cpsShare) record(trunk bool, key string) {
	if !s.on {
		return
	}
	k := cpsKey{trunk, key}
	if _, ok := s.taken[k]; !ok && len(s.taken) >= maxCPSKeys {
		return
	}
	s.taken[k]++
}

// ShareCPS starts recording the call-rate tokens this node's calls take,
// for CPSTaken.
func (a *Admission) ShareCPS() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cps.taken == nil {
		a.cps.taken = map[cpsKey]int{}
	}
	a.cps.on = true
}

// CPSTaken returns the call-rate tokens taken on this node since the last
// call and starts counting again.
func (a *Admission) CPSTaken() []CPSTaken {
	a.mu.Lock()
	taken := a.cps.taken
	if len(taken) == 0 {
		a.mu.Unlock()
		return nil // the map stays: this node's calls go on recording in it
	}
	a.cps.taken = make(map[cpsKey]int, len(taken))
	a.mu.Unlock()
	out := make([]CPSTaken, 0, len(taken))
	for k, n := range taken {
		out = append(out, CPSTaken{Trunk: k.trunk, Key: k.key, N: n})
	}
	return out
}

// CPSDrain takes from this node's call-rate buckets the tokens other
// nodes' calls took, so a user or trunk calling through the cluster is
// limited as one. A bucket goes no lower than one burst of debt. Rates
// not limited are left alone.
func (a *Admission) CPSDrain(taken []CPSTaken) {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.now()
	for _, t := range taken {
		if t.N <= 0 || t.Key == "" {
			continue
		}
		b := a.userCPS
		if t.Trunk {
			b = a.trkCPS
		}
		b.drain(t.Key, t.N, now)
	}
}

// drain takes n tokens from key's bucket, refilled to now, down to one
// burst of debt. A key the buckets have no room for is left out.
func (c *cpsBuckets) drain(key string, n int, now time.Time) {
	if !c.enabled() {
		return
	}
	c.has(key, now)
	if b, ok := c.m[key]; ok {
		b.tokens = max(b.tokens-float64(n), -c.burst)
	}
}
