package config

import (
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/sbc-project/sbc/b2bua/routing"
)

// rebuiltHeaders are the headers the B2BUA always rebuilds on each leg
// (full and compact forms, lower case). Passing them through would leak one
// side's topology to the other, so no whitelist may name them.
var rebuiltHeaders = []string{
	"via", "v", "route", "record-route", "contact", "m", "call-id", "i",
	"cseq", "from", "f", "to", "t", "max-forwards", "content-length", "l",
}

func (c *Config) validateTrunks(ps *Problems) {
	names := map[string]int{}
	for i, t := range c.Trunks {
		key := "trunks[" + strconv.Itoa(i) + "]"
		switch j, dup := names[t.Name]; {
		case t.Name == "":
			ps.add(key+".name", "", "must not be empty")
		case dup:
			ps.add(key+".name", t.Name, fmt.Sprintf("already names trunks[%d]", j))
		default:
			names[t.Name] = i
		}
		if _, err := routing.ParseURI(t.URI); err != nil {
			ps.add(key+".uri", t.URI, err.Error())
		}
		if (t.Username == "") != (t.Password == "") {
			// The value is never shown: it may be the password.
			ps.add(key+".username", t.Username, "username and password must be set together")
		}
		if t.FromDomain != "" && !routing.ValidHost(t.FromDomain) {
			ps.add(key+".from_domain", t.FromDomain, "want an IP address or DNS name")
		}
		if t.OptionsInterval < 0 {
			ps.add(key+".options_interval", t.OptionsInterval.String(), "want 0 (no probing) or a positive duration")
		}
		switch {
		case t.OptionsTimeout < 0:
			ps.add(key+".options_timeout", t.OptionsTimeout.String(), "want 0 or a positive duration")
		case t.OptionsInterval > 0 && t.OptionsTimeout == 0:
			ps.add(key+".options_timeout", t.OptionsTimeout.String(), "want a positive duration when options_interval is set")
		}
		if t.FailureThreshold < 1 {
			ps.add(key+".failure_threshold", strconv.Itoa(t.FailureThreshold), "want at least 1")
		}
		checkHeaderNames(ps, key+".pass_headers", t.PassHeaders)
		validateTrunkIdentity(ps, key, t.Identity)
		validateTrunkTLS(ps, key, t)
		if t.Media != "" && t.Media != MediaRTP && t.Media != MediaSRTP {
			ps.add(key+".media", t.Media, "want rtp or srtp")
		}
		if t.DTMF != "" && t.DTMF != DTMFRFC4733 && t.DTMF != DTMFInfo {
			ps.add(key+".dtmf", t.DTMF, "want rfc4733 or info")
		}
		if !routing.ValidTransfer(t.Transfer) {
			ps.add(key+".transfer", t.Transfer, "want "+routing.TransferModes)
		}
	}
}

func (c *Config) validateRoutes(ps *Problems) {
	names := map[string]int{}
	for i, r := range c.Routes {
		key := "routes[" + strconv.Itoa(i) + "]"
		switch j, dup := names[r.Name]; {
		case r.Name == "":
			ps.add(key+".name", "", "must not be empty")
		case dup:
			ps.add(key+".name", r.Name, fmt.Sprintf("already names routes[%d]", j))
		default:
			names[r.Name] = i
		}
		if checkOneOf(ps, key+".target", r.Target, targets) {
			c.validateRouteTrunks(ps, key, r)
		}
		c.validateMatch(ps, key+".match", r.Match)
		if !routing.ValidTransfer(r.Transfer) {
			ps.add(key+".transfer", r.Transfer, "want "+routing.TransferModes)
		}
	}
}

func (c *Config) validateRouteTrunks(ps *Problems, key string, r Route) {
	if r.Target != TargetTrunks {
		if len(r.Trunks) > 0 {
			ps.add(key+".trunks", strings.Join(r.Trunks, ","), "only target "+TargetTrunks+" takes trunks")
		}
		return
	}
	if len(r.Trunks) == 0 {
		ps.add(key+".trunks", "", "target "+TargetTrunks+" needs at least one trunk")
	}
	for j, name := range r.Trunks {
		tkey := key + ".trunks[" + strconv.Itoa(j) + "]"
		switch {
		case !c.hasTrunk(name):
			ps.add(tkey, name, "no trunk has this name")
		case slices.Index(r.Trunks, name) < j:
			ps.add(tkey, name, "listed twice")
		}
	}
}

func (c *Config) validateMatch(ps *Problems, key string, m Match) {
	if m.Listener != "" && !slices.ContainsFunc(c.SIP.Listeners, func(l Listener) bool { return l.Name == m.Listener }) {
		ps.add(key+".listener", m.Listener, "no listener has this name")
	}
	if m.Trunk != "" && !c.hasTrunk(m.Trunk) {
		ps.add(key+".trunk", m.Trunk, "no trunk has this name")
	}
	for j, cidr := range m.SourceCIDRs {
		if _, err := netip.ParsePrefix(cidr); err != nil {
			ps.add(key+".source_cidrs["+strconv.Itoa(j)+"]", cidr, "want a CIDR such as 192.0.2.0/24 or 2001:db8::/32")
		}
	}
	if m.RURIUser != "" {
		if _, err := regexp.Compile(m.RURIUser); err != nil {
			ps.add(key+".ruri_user", m.RURIUser, "not a regular expression: "+err.Error())
		}
	}
	if m.FromDomain != "" && !routing.ValidHost(m.FromDomain) {
		ps.add(key+".from_domain", m.FromDomain, "want an IP address or DNS name")
	}
}

func (c *Config) hasTrunk(name string) bool {
	return slices.ContainsFunc(c.Trunks, func(t Trunk) bool { return t.Name == name })
}

// socket is one bound address, for conflict checks.
type socket struct {
	key     string
	network string // udp or tcp
	addr    netip.AddrPort
}

// validateSockets reports listeners (and the admin server) that would bind
// the same port twice: the same IP, or a wildcard that covers the other.
// UDP and TCP never conflict; every stream transport is TCP. Port 0 never
// conflicts.
func (c *Config) validateSockets(ps *Problems) {
	var socks []socket
	for i, l := range c.SIP.Listeners {
		ap, err := parseBindAddr(l.Addr)
		if err != nil || !slices.Contains(transports, l.Transport) {
			continue
		}
		network := "tcp"
		if l.Transport == "udp" {
			network = "udp"
		}
		socks = append(socks, socket{"sip.listeners[" + strconv.Itoa(i) + "]", network, ap})
	}
	if ap, err := parseBindAddr(c.Admin.Addr); err == nil {
		socks = append(socks, socket{"admin", "tcp", ap})
	}
	for i, s := range socks {
		for _, prev := range socks[:i] {
			if s.network == prev.network && s.addr.Port() != 0 && s.addr.Port() == prev.addr.Port() &&
				overlap(s.addr.Addr(), prev.addr.Addr()) {
				ps.add(s.key+".addr", s.addr.String(),
					fmt.Sprintf("%s port already bound by %s (%s)", s.network, prev.key, prev.addr))
				break
			}
		}
	}
}

// overlap reports whether binding a and b on one port would collide: the
// same IP, or a wildcard of the other's family, or :: (dual-stack in Go).
func overlap(a, b netip.Addr) bool {
	a, b = a.Unmap(), b.Unmap()
	switch {
	case a == b:
		return true
	case a == netip.IPv6Unspecified() || b == netip.IPv6Unspecified():
		return true
	case a.IsUnspecified() || b.IsUnspecified():
		return a.Is4() == b.Is4()
	}
	return false
}

// checkHeaderNames checks a list of header names: tokens, neither rebuilt
// ones nor the identity headers the SBC asserts itself.
func checkHeaderNames(ps *Problems, key string, names []string) {
	for i, h := range names {
		hkey := key + "[" + strconv.Itoa(i) + "]"
		switch {
		case !isToken(h):
			ps.add(hkey, h, "want a header name such as Diversion")
		case slices.Contains(rebuiltHeaders, strings.ToLower(h)):
			ps.add(hkey, h, "the SBC always rebuilds this header; it cannot be passed")
		case slices.Contains(identityHeaders, strings.ToLower(h)):
			ps.add(hkey, h, "the SBC asserts caller identity itself (RFC 3325) and honours Privacy; see trunks[].identity")
		}
	}
}

// isToken reports whether s is a non-empty RFC 3261 token.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isAlnum(s[i]) && strings.IndexByte("-.!%*_+`'~", s[i]) < 0 {
			return false
		}
	}
	return true
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}
