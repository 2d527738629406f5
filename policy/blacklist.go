package policy

import (
	"context"
	"fmt"
	"net/netip"
	"regexp"
	"strings"

	"github.com/sbc-project/sbc/security"
)

// Blacklist causes.
const (
	causeBanned    = "banned"     // a dynamic or admin ban (always dropped)
	causeCIDR      = "cidr"       // policy.blacklist.cidrs
	causeScannerUA = "scanner_ua" // policy.blacklist.user_agents
	causeURI       = "uri"        // policy.blacklist.uris
)

// blacklist is the first stage: it refuses sources that are banned or
// listed, and requests whose User-Agent or URIs match a pattern. A banned
// source is always dropped without an answer; the others get the
// configured action (drop, or 403). A User-Agent or URI hit counts toward
// a dynamic ban (policy.bans.blacklisted), so a scanner's next request
// costs one map lookup. A ban made on evidence from UDP covers UDP only
// (see security.Scope): such a ban does not stop the request of the same
// source over a connection.
type blacklist struct {
	bans     *security.Bans
	ips      map[netip.Addr]bool
	prefixes []netip.Prefix
	agents   *regexp.Regexp // nil: none configured
	uris     *regexp.Regexp
	reject   bool
	hit      func(src netip.Addr, transport, reason string)
}

// newBlacklist compiles cfg. hit counts a pattern hit toward a ban.
func newBlacklist(cfg BlacklistSpec, bans *security.Bans, hit func(src netip.Addr, transport, reason string)) (*blacklist, error) {
	b := &blacklist{bans: bans, ips: map[netip.Addr]bool{}, reject: cfg.Action == ActionReject, hit: hit}
	for i, s := range cfg.CIDRs {
		p, err := security.ParseBanAddr(s)
		if err != nil {
			return nil, fmt.Errorf("policy.blacklist.cidrs[%d]: %w", i, err)
		}
		if p.IsSingleIP() {
			b.ips[p.Addr()] = true
		} else {
			b.prefixes = append(b.prefixes, p)
		}
	}
	var err error
	if b.agents, err = anyOf(cfg.UserAgents); err != nil {
		return nil, fmt.Errorf("policy.blacklist.user_agents: %w", err)
	}
	if b.uris, err = anyOf(cfg.URIs); err != nil {
		return nil, fmt.Errorf("policy.blacklist.uris: %w", err)
	}
	return b, nil
}

// anyOf compiles patterns into one case-insensitive expression matching
// any of them, so a request costs one match however many are listed. Nil
// for no patterns.
func anyOf(patterns []string) (*regexp.Regexp, error) {
	if len(patterns) == 0 {
		return nil, nil
	}
	parts := make([]string, len(patterns))
	for i, p := range patterns {
		if _, err := regexp.Compile(p); err != nil {
			return nil, fmt.Errorf("pattern %d %q: %w", i, p, err)
		}
		parts[i] = "(?:" + p + ")"
	}
	return regexp.Compile("(?i)" + strings.Join(parts, "|"))
}

// Check implements Stage.
func (b *blacklist) Check(_ context.Context, r *Request) Decision {
	ip := r.Src.Addr().Unmap()
	if _, ok := b.bans.Banned(ip, datagram(r.Transport)); ok {
		return Decision{Action: Drop, Cause: causeBanned}
	}
	if b.listed(ip) {
		return b.refuse(causeCIDR)
	}
	if b.agents != nil && r.UserAgent != "" && b.agents.MatchString(r.UserAgent) {
		b.hit(ip, r.Transport, "scanner user-agent")
		return b.refuse(causeScannerUA)
	}
	if b.uris != nil && (b.uris.MatchString(r.RURI) || b.uris.MatchString(r.From) || b.uris.MatchString(r.To)) {
		b.hit(ip, r.Transport, "blacklisted uri")
		return b.refuse(causeURI)
	}
	return Pass
}

func (b *blacklist) listed(ip netip.Addr) bool {
	if b.ips[ip] {
		return true
	}
	for _, p := range b.prefixes {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

func (b *blacklist) refuse(cause string) Decision {
	if b.reject {
		return Decision{Action: Answer, Code: 403, Reason: "Forbidden", Cause: cause}
	}
	return Decision{Action: Drop, Cause: cause}
}
