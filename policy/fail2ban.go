package policy

import (
	"fmt"
	"log/slog"
	"net/netip"
	"time"

	"github.com/sbc-project/sbc/security"
)

// Event is something a source did that counts toward a dynamic ban.
type Event uint8

const (
	// EventAuthFailure: the b2bua refused credentials (wrong password,
	// unknown user, stale replay).
	EventAuthFailure Event = iota + 1
	// EventNotFound: the b2bua answered 404 (an extension scan).
	EventNotFound
	// eventRateLimited: rate_limit refused a request.
	eventRateLimited
	// eventBlacklisted: the User-Agent or URI blacklist refused a request.
	eventBlacklisted
	eventCount
)

// fail2ban counts events per source (an IPv4 address or an IPv6 /64, as
// rate limits count) and bans a source (through security.Bans) once it
// reaches a threshold within the window, like fail2ban does from log
// files. Events that came in UDP datagrams and events that came over
// connections are counted apart: anyone can forge a datagram's source, so
// UDP events earn a ban on UDP only, and only events over connections
// (whose handshake proves the source) earn a ban on every transport. The
// ban carries its evidence (the count) for the store's eviction order.
// Counts are kept in a bounded table: under a spoofed flood old counts are
// forgotten, never memory exhausted. Exempt sources
// (policy.bans.exempt_cidrs, and trunks through Deps.Exempt) are never
// banned: a PBX that sends ten calls to offline users must not lose its
// service. Safe for concurrent use.
type fail2ban struct {
	cfg    BanSpec
	bans   *security.Bans
	log    *slog.Logger
	now    func() time.Time
	exempt func(netip.Addr) bool
	counts *table[eventCounts]
}

// eventCounts are one source's windows per event kind, indexed by the
// scope their evidence earns (security.ScopeAll: over connections,
// security.ScopeUDP: in datagrams).
type eventCounts [eventCount][2]window

// window is a fixed counting window for one event kind.
type window struct {
	start time.Time
	n     int
}

func newFail2ban(cfg BanSpec, capacity int, bans *security.Bans, log *slog.Logger,
	now func() time.Time, exempt func(netip.Addr) bool) *fail2ban {
	return &fail2ban{cfg: cfg, bans: bans, log: log, now: now, exempt: exempt,
		counts: newTable[eventCounts](capacity)}
}

// datagram reports whether a request that came over transport (as in
// Request.Transport) came in a datagram whose source anyone can forge:
// anything but tcp, tls, ws and wss counts as such.
func datagram(transport string) bool {
	switch transport {
	case "tcp", "tls", "ws", "wss":
		return false
	}
	return true
}

// evidenceScope is the scope of a ban earned by events over transport.
func evidenceScope(transport string) security.Scope {
	if datagram(transport) {
		return security.ScopeUDP
	}
	return security.ScopeAll
}

// threshold returns the count that bans for ev; 0 never bans.
func (f *fail2ban) threshold(ev Event) int {
	switch ev {
	case EventAuthFailure:
		return f.cfg.AuthFailures
	case EventNotFound:
		return f.cfg.NotFound
	case eventRateLimited:
		return f.cfg.RateLimited
	case eventBlacklisted:
		return f.cfg.Blacklisted
	}
	return 0
}

// eventNames label bans (the reason shown in the bans list).
var eventNames = [eventCount]string{
	EventAuthFailure: "authentication failures",
	EventNotFound:    "unknown users (404)",
	eventRateLimited: "rate limit hits",
	eventBlacklisted: "blacklist hits",
}

// hit counts one ev from src that came over transport; reason, when set,
// names the ban made by this hit instead of the count ("scanner
// user-agent"). It reports whether src was banned (or its ban widened to
// every transport) now.
func (f *fail2ban) hit(src netip.Addr, transport string, ev Event, reason string) bool {
	limit := f.threshold(ev)
	src = src.Unmap()
	if limit <= 0 || !src.IsValid() || f.exempt(src) {
		return false
	}
	scope := evidenceScope(transport)
	now := f.now()
	reached := false
	f.counts.do(sourceKey(src), func(v *eventCounts, _ bool) {
		w := &v[ev][scope]
		if w.n == 0 || now.Sub(w.start) >= f.cfg.Window {
			w.start, w.n = now, 0
		}
		w.n++
		if w.n >= limit {
			reached = true
			w.n = 0
		}
	})
	if !reached {
		return false
	}
	if reason == "" {
		reason = fmt.Sprintf("%d %s within %s", limit, eventNames[ev], f.cfg.Window)
	}
	if !f.bans.Ban(src, reason, f.cfg.Duration, security.Evidence{Scope: scope, Events: limit}) {
		return false
	}
	f.log.Warn("source banned", "src", src, "scope", scope.String(), "reason", reason, "duration", f.cfg.Duration)
	return true
}
