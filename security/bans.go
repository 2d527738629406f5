package security

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// MaxBans bounds the number of bans kept. An attacker who spoofs many
// sources cannot grow the store (and the file rewritten on every change)
// past it: Ban refuses new entries when it is full, Add (the operator)
// still succeeds.
const MaxBans = 65536

// flushDelay is how long Ban waits before writing the file, so that a burst
// of bans costs one write.
const flushDelay = 200 * time.Millisecond

// BanEntry is one ban as listed and as stored in the file.
type BanEntry struct {
	// Addr is the canonical IP ("192.0.2.7", "2001:db8::1") or masked
	// prefix ("192.0.2.0/24"). IPv4-mapped IPv6 is written as IPv4.
	Addr   string `json:"addr"`
	Reason string `json:"reason"`
	// Since is when the ban was made.
	Since time.Time `json:"since"`
	// Until is when it ends; nil: until removed.
	Until *time.Time `json:"until,omitempty"`
}

// ban is a BanEntry in memory.
type ban struct {
	prefix netip.Prefix
	reason string
	since  time.Time
	until  time.Time // zero: until removed
}

func (b ban) expired(now time.Time) bool { return !b.until.IsZero() && !now.Before(b.until) }

func (b ban) entry() BanEntry {
	e := BanEntry{Addr: prefixString(b.prefix), Reason: b.reason, Since: b.since}
	if !b.until.IsZero() {
		u := b.until
		e.Until = &u
	}
	return e
}

// Bans is the store of banned sources: exact IPs and prefixes, each with a
// reason and an optional end. Lookups are a map access plus a scan of the
// (few) prefixes under a read lock. Every change made with Add or Remove is
// written to the file before it returns; Ban writes shortly after. Expired
// bans are ignored at once and removed from memory and file at the next
// change or List. All methods are safe for concurrent use.
type Bans struct {
	file string
	log  *slog.Logger
	now  func() time.Time

	mu       sync.RWMutex
	ips      map[netip.Addr]ban
	prefixes []ban
	version  uint64      // incremented on every change
	timer    *time.Timer // a delayed write is pending

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
	b := &Bans{file: file, log: log, now: time.Now, ips: map[netip.Addr]ban{}}
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

// Banned reports whether ip is banned now, and why. IPv4-mapped IPv6
// addresses are looked up as IPv4.
func (b *Bans) Banned(ip netip.Addr) (reason string, ok bool) {
	ip = ip.Unmap()
	now := b.now()
	b.mu.RLock()
	defer b.mu.RUnlock()
	if x, found := b.ips[ip]; found && !x.expired(now) {
		return x.reason, true
	}
	for _, x := range b.prefixes {
		if x.prefix.Contains(ip) && !x.expired(now) {
			return x.reason, true
		}
	}
	return "", false
}

// Add bans addr (an IP or a CIDR prefix) for d, or until removed when d is
// 0, replacing any ban of the same address, and writes the file before it
// returns. The ban holds in memory even when the write fails.
func (b *Bans) Add(addr, reason string, d time.Duration) error {
	p, err := ParseBanAddr(addr)
	if err != nil {
		return err
	}
	if d < 0 {
		return fmt.Errorf("ban %s: negative duration %s", addr, d)
	}
	b.mu.Lock()
	b.put(b.newBan(p, reason, d))
	b.sweep()
	v := b.version
	b.mu.Unlock()
	return b.persist(v)
}

// Ban bans ip for d (0: until removed) unless it is already banned, and
// reports whether it made a new ban. It does not wait for the file: the
// write happens shortly after, once for a burst of bans, and a failure is
// logged. It refuses new bans while the store holds MaxBans. Fail2ban-like
// counters use it on the request path.
func (b *Bans) Ban(ip netip.Addr, reason string, d time.Duration) bool {
	ip = ip.Unmap()
	if !ip.IsValid() || d < 0 {
		return false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if x, ok := b.ips[ip]; ok && !x.expired(b.now()) {
		return false
	}
	if len(b.ips)+len(b.prefixes) >= MaxBans {
		b.sweep()
		if len(b.ips)+len(b.prefixes) >= MaxBans {
			return false
		}
	}
	b.put(b.newBan(netip.PrefixFrom(ip, ip.BitLen()), reason, d))
	if b.file != "" && b.timer == nil {
		b.timer = time.AfterFunc(flushDelay, b.flushLater)
	}
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

func (b *Bans) newBan(p netip.Prefix, reason string, d time.Duration) ban {
	now := b.now()
	if len(reason) > MaxBanReason {
		reason = strings.ToValidUTF8(reason[:MaxBanReason], "")
	}
	x := ban{prefix: p, reason: reason, since: now}
	if d > 0 {
		x.until = now.Add(d)
	}
	return x
}

// put stores x, replacing a ban of the same prefix. Callers hold mu (or
// own b exclusively).
func (b *Bans) put(x ban) {
	b.version++
	if x.prefix.IsSingleIP() {
		b.ips[x.prefix.Addr()] = x
		return
	}
	if i := slices.IndexFunc(b.prefixes, func(y ban) bool { return y.prefix == x.prefix }); i >= 0 {
		b.prefixes[i] = x
		return
	}
	b.prefixes = append(b.prefixes, x)
}

// delete removes the ban of p. Callers hold mu.
func (b *Bans) delete(p netip.Prefix) bool {
	if p.IsSingleIP() {
		if _, ok := b.ips[p.Addr()]; ok {
			delete(b.ips, p.Addr())
			b.version++
			return true
		}
		return false
	}
	n := len(b.prefixes)
	b.prefixes = slices.DeleteFunc(b.prefixes, func(y ban) bool { return y.prefix == p })
	if len(b.prefixes) < n {
		b.version++
		return true
	}
	return false
}

// sweep drops expired bans. Callers hold mu. The file keeps them until the
// next write; OpenBans drops them anyway.
func (b *Bans) sweep() {
	now := b.now()
	for ip, x := range b.ips {
		if x.expired(now) {
			delete(b.ips, ip)
		}
	}
	b.prefixes = slices.DeleteFunc(b.prefixes, func(x ban) bool { return x.expired(now) })
}

// snapshot returns every ban not expired, sorted. Callers hold mu.
func (b *Bans) snapshot() []BanEntry {
	now := b.now()
	out := make([]BanEntry, 0, len(b.ips)+len(b.prefixes))
	for _, x := range b.ips {
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

// flushLater is the delayed write Ban schedules.
func (b *Bans) flushLater() {
	b.mu.Lock()
	b.timer = nil
	v := b.version
	b.mu.Unlock()
	if err := b.persist(v); err != nil {
		b.log.Error("bans not saved", "err", err)
	}
}

// persist writes the file unless a write of version v or later already
// succeeded: concurrent changes share one write. The snapshot is taken
// under wmu, so the last write always holds the latest state.
func (b *Bans) persist(v uint64) error {
	if b.file == "" {
		return nil
	}
	b.wmu.Lock()
	defer b.wmu.Unlock()
	if b.written >= v {
		return nil
	}
	b.mu.Lock()
	b.sweep()
	entries := b.snapshot()
	cur := b.version
	b.mu.Unlock()
	data, err := encodeBans(entries)
	if err != nil {
		return fmt.Errorf("encode bans: %w", err)
	}
	if err := writeFileAtomic(b.file, data); err != nil {
		return err
	}
	b.written = cur
	return nil
}

// writeFileAtomic replaces file with data: a temporary file in the same
// directory is written, fsynced and renamed over it, and the directory is
// fsynced, so a crash leaves the old file or the new one, never a mix.
func writeFileAtomic(file string, data []byte) error {
	dir := filepath.Dir(file)
	f, err := os.CreateTemp(dir, "."+filepath.Base(file)+".tmp*")
	if err != nil {
		return fmt.Errorf("write bans file: %w", err)
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, file)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("write bans file %s: %w", file, err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync() // best effort: not every file system syncs directories
		_ = d.Close()
	}
	return nil
}
