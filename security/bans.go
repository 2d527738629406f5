package security

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"time"
)

// MaxBans bounds the number of bans kept. An attacker who spoofs many
// sources cannot grow the store (and the file rewritten on every change)
// past it: when it is full, a new dynamic ban (Ban) takes the place of the
// dynamic ban with the least evidence, if that one has no more than the
// new one (see Evidence), and is refused otherwise. Bans an operator
// makes (Add) are never evicted, and Add succeeds even when the store is
// full.
const MaxBans = 65536

// flushDelay is how long Ban waits before writing the file, so that a burst
// of bans costs one write; flushEvery spaces the writes Ban causes, so that
// a sustained flood of bans against a full store (each new one evicting an
// old one) rewrites the file at most that often. Add, Remove and Flush
// write at once.
const (
	flushDelay = 200 * time.Millisecond
	flushEvery = 2 * time.Second
)

// fullSweepInterval is how often a full store looks for expired bans to
// make room, at most: a sweep walks every ban, and a flood of new bans
// against a full store must cost a heap operation each, not a walk.
const fullSweepInterval = time.Second

// BanEntry is one ban as listed and as stored in the file.
type BanEntry struct {
	// Addr is the canonical IP ("192.0.2.7", "2001:db8::1") or masked
	// prefix ("192.0.2.0/24", "2001:db8::/64"). IPv4-mapped IPv6 is
	// written as IPv4.
	Addr   string `json:"addr"`
	Reason string `json:"reason"`
	// Since is when the ban was made.
	Since time.Time `json:"since"`
	// Until is when it ends; nil: until removed.
	Until *time.Time `json:"until,omitempty"`
	// Scope is "all" (every transport) or "udp" (UDP only: a dynamic ban
	// on evidence that came in datagrams). Empty in files written before
	// scopes existed, read as "all".
	Scope string `json:"scope,omitempty"`
	// Evidence counts the events a dynamic ban rests on; 0 for a ban an
	// operator made, which is never evicted.
	Evidence int `json:"evidence,omitempty"`
}

// ban is a BanEntry in memory.
type ban struct {
	prefix netip.Prefix
	reason string
	since  time.Time
	until  time.Time // zero: until removed
	// evidence of a dynamic ban; Events 0 (and ScopeAll) for an operator's.
	evidence Evidence
	index    int // in Bans.queue; -1 when not queued
}

func (b *ban) expired(now time.Time) bool { return !b.until.IsZero() && !now.Before(b.until) }

// applies reports whether b bans a packet now that came over UDP (udp
// true) or over a connection.
func (b *ban) applies(now time.Time, udp bool) bool {
	return b != nil && !b.expired(now) && b.evidence.Scope.covers(udp)
}

func (b *ban) entry() BanEntry {
	e := BanEntry{Addr: prefixString(b.prefix), Reason: b.reason, Since: b.since,
		Scope: b.evidence.Scope.String(), Evidence: b.evidence.Events}
	if !b.until.IsZero() {
		u := b.until
		e.Until = &u
	}
	return e
}

// Bans is the store of banned sources: exact IPs, IPv6 /64s and other
// prefixes, each with a reason, a scope (see Scope) and an optional end.
// Lookups are one or two map accesses plus a scan of the (few) other
// prefixes under a read lock. Every change made with Add or Remove is
// written to the file before it returns; Ban writes shortly after. Expired
// bans are ignored at once and removed from memory and file at the next
// change or List. All methods are safe for concurrent use.
type Bans struct {
	file string
	log  *slog.Logger
	now  func() time.Time

	mu       sync.RWMutex
	exact    map[netip.Prefix]*ban // single IPs and IPv6 /64s
	prefixes []*ban                // every other prefix
	queue    evictQueue            // the dynamic bans, weakest first
	swept    time.Time             // when makeRoom last swept
	version  uint64                // incremented on every change
	timer    *time.Timer           // a delayed write is pending
	flushed  time.Time             // when the last delayed write began

	changed func(BanChange) // OnChange's function (banshare.go)
	made    [2]uint64       // bans made by Ban and by Add (banstats.go)

	wmu     sync.Mutex // serializes writes
	written uint64     // version last written successfully
}

// OpenBans returns the store kept in file, loading the bans it holds
// (expired ones are dropped). A missing file is an empty store; an
// unreadable or corrupt one is an error naming the file. An empty file
// name keeps bans in memory only. A nil log discards.
func OpenBans(file string, log *slog.Logger) (*Bans, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	b := &Bans{file: file, log: log, now: time.Now, exact: map[netip.Prefix]*ban{}}
	if file == "" {
		return b, nil
	}
	data, err := os.ReadFile(file)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return b, nil
	case err != nil:
		return nil, fmt.Errorf("read bans file: %w", err)
	}
	bans, err := decodeBans(data, b.now())
	if err != nil {
		return nil, fmt.Errorf("bans file %s: %w", file, err)
	}
	for _, x := range bans {
		b.put(x)
	}
	b.written = b.version
	log.Info("bans loaded", "file", file, "count", len(bans))
	return b, nil
}

// Banned reports whether a packet from ip is banned now, and why: udp
// says whether it came in a UDP datagram (bans of ScopeUDP apply) or over
// a connection (they do not). IPv4-mapped IPv6 addresses are looked up as
// IPv4.
func (b *Bans) Banned(ip netip.Addr, udp bool) (reason string, ok bool) {
	ip = ip.Unmap().WithZone("")
	if !ip.IsValid() {
		return "", false
	}
	now := b.now()
	b.mu.RLock()
	defer b.mu.RUnlock()
	if x := b.exact[netip.PrefixFrom(ip, ip.BitLen())]; x.applies(now, udp) {
		return x.reason, true
	}
	if ip.Is6() {
		if x := b.exact[banPrefix(ip)]; x.applies(now, udp) {
			return x.reason, true
		}
	}
	for _, x := range b.prefixes {
		if x.prefix.Contains(ip) && x.applies(now, udp) {
			return x.reason, true
		}
	}
	return "", false
}

// Add bans addr (an IP or a CIDR prefix) on every transport for d, or
// until removed when d is 0, replacing any ban of the same address, and
// writes the file before it returns. Such a ban is never evicted. The ban
// holds in memory even when the write fails.
func (b *Bans) Add(addr, reason string, d time.Duration) error {
	p, err := ParseBanAddr(addr)
	if err != nil {
		return err
	}
	if d < 0 {
		return fmt.Errorf("ban %s: negative duration %s", addr, d)
	}
	b.mu.Lock()
	x := b.newBan(p, reason, d, Evidence{})
	b.put(x)
	b.made[madeByAdd]++
	b.sweep()
	v := b.version
	e := x.entry()
	b.mu.Unlock()
	b.report(BanChange{Entry: e})
	return b.persist(v)
}

// Ban bans ip for d (0: until removed) on the evidence ev, and reports
// whether it made or widened a ban. An IPv4 source is banned alone, an
// IPv6 one with its /64. A source already banned keeps its ban, except
// that a ban of ScopeUDP becomes ScopeAll on evidence of ScopeAll (its
// events add up, its end moves later if d says so). When the store is
// full (MaxBans), the new ban takes the place of the dynamic ban with the
// least evidence if that one has no more than ev (the oldest among
// equals), and is refused otherwise. Ban does not wait for the file: the
// write happens shortly after, once for a burst of bans, and a failure is
// logged. Fail2ban-like counters use it on the request path.
func (b *Bans) Ban(ip netip.Addr, reason string, d time.Duration, ev Evidence) bool {
	p := banPrefix(ip)
	if !p.IsValid() || d < 0 {
		return false
	}
	ev.Events = max(ev.Events, 1)
	e, ok := b.ban(p, reason, d, ev)
	if ok {
		b.report(BanChange{Entry: e})
	}
	return ok
}

// ban makes or widens the ban of Ban and returns it as it stands.
func (b *Bans) ban(p netip.Prefix, reason string, d time.Duration, ev Evidence) (BanEntry, bool) {
	now := b.now()
	b.mu.Lock()
	defer b.mu.Unlock()
	x := b.exact[p]
	if x != nil && !x.expired(now) {
		if !b.widen(x, reason, d, ev, now) {
			return BanEntry{}, false
		}
	} else {
		if !b.makeRoom(ev) {
			return BanEntry{}, false
		}
		x = b.newBan(p, reason, d, ev)
		b.put(x)
		b.made[madeByBan]++
	}
	b.persistSoon()
	return x.entry(), true
}

// widen turns the UDP-only dynamic ban x into a ban on every transport on
// evidence from connections, and reports whether it did. Callers hold mu.
func (b *Bans) widen(x *ban, reason string, d time.Duration, ev Evidence, now time.Time) bool {
	if x.evidence.Events == 0 || x.evidence.Scope == ScopeAll || ev.Scope != ScopeAll {
		return false
	}
	x.evidence = Evidence{Scope: ScopeAll, Events: x.evidence.Events + ev.Events}
	x.reason = reason
	switch until := now.Add(d); {
	case d == 0:
		x.until = time.Time{}
	case !x.until.IsZero() && until.After(x.until):
		x.until = until
	}
	b.queue.fix(x)
	b.version++
	return true
}

// makeRoom makes room for a dynamic ban on ev, evicting the weakest
// dynamic ban if the store is full and that one's evidence does not
// outrank ev. It reports whether there is room. Callers hold mu.
func (b *Bans) makeRoom(ev Evidence) bool {
	if len(b.exact)+len(b.prefixes) < MaxBans {
		return true
	}
	if now := b.now(); now.Sub(b.swept) >= fullSweepInterval || now.Before(b.swept) {
		b.swept = now
		b.sweep()
		if len(b.exact)+len(b.prefixes) < MaxBans {
			return true
		}
	}
	w := b.queue.weakest()
	if w == nil || w.evidence.outranks(ev) {
		return false
	}
	b.delete(w.prefix)
	return true
}

// Remove lifts the ban of addr (written as given to Add, or its canonical
// form) and reports whether there was one. The file is written before it
// returns; a write failure is logged.
func (b *Bans) Remove(addr string) bool {
	p, err := ParseBanAddr(addr)
	if err != nil {
		return false
	}
	b.mu.Lock()
	found := b.delete(p)
	b.sweep()
	v := b.version
	b.mu.Unlock()
	if found {
		b.report(BanChange{Entry: BanEntry{Addr: prefixString(p)}, Removed: true})
		if err := b.persist(v); err != nil {
			b.log.Error("bans not saved", "err", err)
		}
	}
	return found
}

// List returns the bans in force, sorted by address text.
func (b *Bans) List() []BanEntry {
	b.mu.Lock()
	b.sweep()
	out := b.snapshot()
	b.mu.Unlock()
	return out
}

// Flush writes the file if a change is not written yet (call it before
// exit so a ban made with Ban is kept).
func (b *Bans) Flush() error {
	b.mu.Lock()
	if b.timer != nil {
		b.timer.Stop() // if it already fired, its write finds nothing left to do
		b.timer = nil
	}
	v := b.version
	b.mu.Unlock()
	return b.persist(v)
}

// ParseBanAddr parses an IP or CIDR prefix as a ban address: IPv4-mapped
// IPv6 is unmapped, a prefix is masked, and an IP is a full-length prefix.
// Zones are refused.
func ParseBanAddr(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("ban address %q: want an IP or CIDR prefix", s)
		}
		a, bits := p.Addr(), p.Bits()
		if a.Is4In6() {
			if bits < 96 {
				return netip.Prefix{}, fmt.Errorf("ban address %q: IPv4-mapped prefix shorter than /96", s)
			}
			a, bits = a.Unmap(), bits-96
		}
		return netip.PrefixFrom(a, bits).Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("ban address %q: want an IP or CIDR prefix", s)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// prefixString writes a full-length prefix as its IP.
func prefixString(p netip.Prefix) string {
	if p.IsSingleIP() {
		return p.Addr().String()
	}
	return p.String()
}

func (b *Bans) newBan(p netip.Prefix, reason string, d time.Duration, ev Evidence) *ban {
	now := b.now()
	if len(reason) > MaxBanReason {
		reason = strings.ToValidUTF8(reason[:MaxBanReason], "")
	}
	x := &ban{prefix: p, reason: reason, since: now, evidence: ev, index: -1}
	if d > 0 {
		x.until = now.Add(d)
	}
	return x
}

// exactPrefix reports whether p is kept in Bans.exact: a single IP or an
// IPv6 /64.
func exactPrefix(p netip.Prefix) bool {
	return p.IsSingleIP() || (p.Addr().Is6() && p.Bits() == 64)
}

// put stores x, replacing a ban of the same prefix, and queues it for
// eviction when it is dynamic. Callers hold mu (or own b exclusively).
func (b *Bans) put(x *ban) {
	b.delete(x.prefix)
	b.version++
	if exactPrefix(x.prefix) {
		b.exact[x.prefix] = x
	} else {
		b.prefixes = append(b.prefixes, x)
	}
	if x.evidence.Events > 0 {
		b.queue.add(x)
	}
}

// delete removes the ban of p. Callers hold mu.
func (b *Bans) delete(p netip.Prefix) bool {
	if exactPrefix(p) {
		x, ok := b.exact[p]
		if !ok {
			return false
		}
		delete(b.exact, p)
		b.queue.remove(x)
		b.version++
		return true
	}
	i := slices.IndexFunc(b.prefixes, func(y *ban) bool { return y.prefix == p })
	if i < 0 {
		return false
	}
	b.queue.remove(b.prefixes[i])
	b.prefixes = slices.Delete(b.prefixes, i, i+1)
	b.version++
	return true
}

// sweep drops expired bans. Callers hold mu. The file keeps them until the
// next write; OpenBans drops them anyway.
func (b *Bans) sweep() {
	now := b.now()
	for p, x := range b.exact {
		if x.expired(now) {
			delete(b.exact, p)
			b.queue.remove(x)
		}
	}
	b.prefixes = slices.DeleteFunc(b.prefixes, func(x *ban) bool {
		if x.expired(now) {
			b.queue.remove(x)
			return true
		}
		return false
	})
}

// snapshot returns every ban not expired, sorted. Callers hold mu.
func (b *Bans) snapshot() []BanEntry {
	now := b.now()
	out := make([]BanEntry, 0, len(b.exact)+len(b.prefixes))
	for _, x := range b.exact {
		if !x.expired(now) {
			out = append(out, x.entry())
		}
	}
	for _, x := range b.prefixes {
		if !x.expired(now) {
			out = append(out, x.entry())
		}
	}
	slices.SortFunc(out, func(x, y BanEntry) int { return strings.Compare(x.Addr, y.Addr) })
	return out
}
