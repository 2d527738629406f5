package security

// Indexes of Bans.made.
const (
	madeByBan = iota
	madeByAdd
)

// BanStats are a store's counters, for metrics.
type BanStats struct {
	// Active is the bans in force now.
	Active int
	// Dynamic counts the bans Ban made (the policy's fail2ban counters)
	// since the store was opened; a ban widened to every transport is not
	// a new one. Admin counts those Add made (the admin API). Bans taken
	// from other nodes (Apply) count on the node that made them.
	Dynamic, Admin uint64
}

// Stats returns the counters. It walks the bans (at most MaxBans) under
// the read lock: call it at a metrics scrape, not per request.
func (b *Bans) Stats() BanStats {
	now := b.now()
	b.mu.RLock()
	defer b.mu.RUnlock()
	st := BanStats{Dynamic: b.made[madeByBan], Admin: b.made[madeByAdd]}
	for _, x := range b.exact {
		if !x.expired(now) {
			st.Active++
		}
	}
	for _, x := range b.prefixes {
		if !x.expired(now) {
			st.Active++
		}
	}
	return st
}
