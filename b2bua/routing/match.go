package routing

import (
	"fmt"
	"net/netip"
	"regexp"
	"strings"
)

// matcher is a compiled MatchSpec: a conjunction of the conditions that
// were set. The zero matcher matches every request.
type matcher struct {
	listener   string
	trunk      *Trunk // nil: any source
	cidrs      []netip.Prefix
	ruriUser   *regexp.Regexp // nil: any user
	fromDomain string
}

// compileMatch checks m against the listener names and trunks of the
// table being built.
func compileMatch(m MatchSpec, listeners map[string]bool, trunks map[string]*Trunk) (matcher, error) {
	var c matcher
	if m.Listener != "" {
		if !listeners[m.Listener] {
			return c, fmt.Errorf("match.listener %q names no listener", m.Listener)
		}
		c.listener = m.Listener
	}
	if m.Trunk != "" {
		tr, ok := trunks[m.Trunk]
		if !ok {
			return c, fmt.Errorf("match.trunk %q names no trunk", m.Trunk)
		}
		c.trunk = tr
	}
	for i, s := range m.SourceCIDRs {
		p, err := parsePrefix(s)
		if err != nil {
			return c, fmt.Errorf("match.source_cidrs[%d] %q: %w", i, s, err)
		}
		c.cidrs = append(c.cidrs, p)
	}
	if m.RURIUser != "" {
		re, err := regexp.Compile(m.RURIUser)
		if err != nil {
			return c, fmt.Errorf("match.ruri_user %q: %w", m.RURIUser, err)
		}
		c.ruriUser = re
	}
	c.fromDomain = m.FromDomain
	return c, nil
}

// parsePrefix accepts a CIDR or a bare IP (a single-address prefix). The
// result is masked; an IPv4-mapped IPv6 prefix (::ffff:10.0.0.0/104) becomes
// the IPv4 prefix it covers, because sources are unmapped before matching.
func parsePrefix(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, err
		}
		a = a.Unmap().WithZone("")
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
		p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	return p.Masked(), nil
}

// holds reports whether every set condition holds for r.
//
// The ruri_user regexp is unanchored, as with regexp.MatchString: "^1\d+$"
// matches only users made of a 1 and digits, while "1\d+" matches any user
// containing such a run. Anchoring is the configuration's business.
func (c *matcher) holds(r Request) bool {
	if c.listener != "" && r.Listener != c.listener {
		return false
	}
	src := r.Src.Unmap().WithZone("")
	if c.trunk != nil && !c.trunk.hasIP(src) && !c.trunk.registeredUser(r.RURIUser) {
		return false
	}
	if len(c.cidrs) > 0 && !inAny(c.cidrs, src) {
		return false
	}
	if c.ruriUser != nil && !c.ruriUser.MatchString(r.RURIUser) {
		return false
	}
	if c.fromDomain != "" && !strings.EqualFold(r.FromDomain, c.fromDomain) {
		return false
	}
	return true
}

func inAny(prefixes []netip.Prefix, a netip.Addr) bool {
	if !a.IsValid() {
		return false
	}
	for _, p := range prefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// registeredUser reports whether user is the contact user the SBC
// registers at the trunk: the carrier sends its calls there, from
// addresses the trunk's URI may not resolve to.
func (tr *Trunk) registeredUser(user string) bool {
	return tr.Register != nil && user != "" && user == tr.Register.ContactUser
}
