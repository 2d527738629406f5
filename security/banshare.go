package security

import (
	"fmt"
	"time"
)

// BanChange is a change to the bans made on this node: a ban made, widened
// or replaced (Entry as it now stands), or lifted (Removed, Entry.Addr
// only). Other nodes of a cluster apply it with Apply or Lift.
type BanChange struct {
	Entry   BanEntry
	Removed bool
}

// OnChange registers f to hear of every change made through Add, Ban and
// Remove, after it is made. f runs on the caller's goroutine (Ban runs on
// the request path): it must not block. Changes made by Apply and Lift are
// not reported, so a change learnt from a peer is not sent back. Set it
// before the store is shared.
func (b *Bans) OnChange(f func(BanChange)) {
	b.mu.Lock()
	b.changed = f
	b.mu.Unlock()
}

// report hands c to the OnChange function, if any. Called without mu.
func (b *Bans) report(c BanChange) {
	b.mu.RLock()
	f := b.changed
	b.mu.RUnlock()
	if f != nil {
		f(c)
	}
}

// entryOf returns the entry of p's ban. Callers hold mu.
func (b *Bans) entryOf(addr string) (BanEntry, bool) {
	p, err := ParseBanAddr(addr)
	if err != nil {
		return BanEntry{}, false
	}
	var x *ban
	if exactPrefix(p) {
		x = b.exact[p]
	} else {
		for _, y := range b.prefixes {
			if y.prefix == p {
				x = y
			}
		}
	}
	if x == nil {
		return BanEntry{}, false
	}
	return x.entry(), true
}

// Apply takes a ban made on another node, as it stands there, in place of
// any ban of the same address here: unless this node's ban ends later (a
// ban until removed ends latest), which it keeps. An expired entry is
// ignored. It is written to the file shortly after, like Ban, and not
// reported to OnChange. The entry is checked as a bans file's would be.
func (b *Bans) Apply(e BanEntry) error {
	p, err := ParseBanAddr(e.Addr)
	if err != nil {
		return err
	}
	if len(e.Reason) > MaxBanReason {
		return fmt.Errorf("ban %s: reason longer than %d bytes", e.Addr, MaxBanReason)
	}
	ev, err := entryEvidence(e)
	if err != nil {
		return fmt.Errorf("ban %s: %w", e.Addr, err)
	}
	x := &ban{prefix: p, reason: e.Reason, since: e.Since, evidence: ev, index: -1}
	if e.Until != nil {
		if e.Until.IsZero() {
			return fmt.Errorf("ban %s: zero until", e.Addr)
		}
		x.until = *e.Until
	}
	now := b.now()
	if x.expired(now) {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if cur, ok := b.entryOf(e.Addr); ok && EndsLater(cur.Until, e.Until) {
		return nil
	}
	if ev.Events > 0 && !b.makeRoom(ev) {
		return fmt.Errorf("ban %s: the store is full of bans with more evidence", e.Addr)
	}
	b.put(x)
	b.persistSoon()
	return nil
}

// EndsLater reports whether a ban ending at a ends after one ending at b
// (nil: never).
func EndsLater(a, b *time.Time) bool {
	switch {
	case a == nil:
		return b != nil
	case b == nil:
		return false
	}
	return a.After(*b)
}

// Lift removes a ban lifted on another node; not reported to OnChange.
func (b *Bans) Lift(addr string) bool {
	p, err := ParseBanAddr(addr)
	if err != nil {
		return false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.delete(p) {
		return false
	}
	b.persistSoon()
	return true
}

// persistSoon schedules the delayed write Ban uses. Callers hold mu.
func (b *Bans) persistSoon() {
	if b.file != "" && b.timer == nil {
		b.timer = time.AfterFunc(max(flushDelay, time.Until(b.flushed.Add(flushEvery))), b.flushLater)
	}
}
