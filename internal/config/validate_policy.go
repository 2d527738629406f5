package config

import (
	"fmt"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/sbc-project/sbc/policy"
)

// validatePolicy checks the policy section, users[].group and
// routes[].trusted_sources.
func (c *Config) validatePolicy(ps *Problems) {
	p := c.Policy
	validateChain(ps, p.Chain)
	checkPositive(ps, "policy.log_interval", p.LogInterval)

	b := p.Blacklist
	checkAddrs(ps, "policy.blacklist.cidrs", b.CIDRs)
	checkPatterns(ps, "policy.blacklist.user_agents", b.UserAgents)
	checkPatterns(ps, "policy.blacklist.uris", b.URIs)
	checkOneOf(ps, "policy.blacklist.action", b.Action, []string{policy.ActionDrop, policy.ActionReject})

	r := p.RateLimit
	checkBucket(ps, "policy.rate_limit.requests", r.Requests)
	checkBucket(ps, "policy.rate_limit.invite", r.Invite)
	checkBucket(ps, "policy.rate_limit.register", r.Register)
	checkNonNegative(ps, "policy.rate_limit.drop_after", r.DropAfter)
	checkPositive(ps, "policy.rate_limit.retry_after", r.RetryAfter)
	if r.MaxSources < 1 {
		ps.add("policy.rate_limit.max_sources", strconv.Itoa(r.MaxSources), "want at least 1")
	}
	checkAddrs(ps, "policy.rate_limit.exempt_cidrs", r.ExemptCIDRs)

	n := p.Bans
	if hasControl(n.File) {
		ps.add("policy.bans.file", n.File, "must not contain control characters")
	}
	checkPositive(ps, "policy.bans.duration", n.Duration)
	checkPositive(ps, "policy.bans.window", n.Window)
	checkNonNegative(ps, "policy.bans.auth_failures", n.AuthFailures)
	checkNonNegative(ps, "policy.bans.not_found", n.NotFound)
	checkNonNegative(ps, "policy.bans.rate_limited", n.RateLimited)
	checkNonNegative(ps, "policy.bans.blacklisted", n.Blacklisted)
	checkAddrs(ps, "policy.bans.exempt_cidrs", n.ExemptCIDRs)

	a := p.Admission
	checkNonNegative(ps, "policy.admission.max_calls", a.MaxCalls)
	checkNonNegative(ps, "policy.admission.max_calls_per_trunk", a.MaxCallsPerTrunk)
	checkNonNegative(ps, "policy.admission.max_calls_per_user", a.MaxCallsPerUser)
	checkNonNegative(ps, "policy.admission.max_calls_per_ip", a.MaxCallsPerIP)
	if a.MaxDuration < 0 {
		ps.add("policy.admission.max_duration", a.MaxDuration.String(), "want 0 (unlimited) or a positive duration")
	}
	checkBucket(ps, "policy.admission.user_cps", a.UserCPS)
	checkBucket(ps, "policy.admission.trunk_cps", a.TrunkCPS)
	checkNonNegative(ps, "policy.admission.echo.max_calls", a.Echo.MaxCalls)
	checkNonNegative(ps, "policy.admission.echo.max_calls_per_ip", a.Echo.MaxCallsPerIP)

	c.validateDialRules(ps)
	for i, o := range p.WebSocket.AllowedOrigins {
		if !validOrigin(o) {
			ps.add("policy.websocket.allowed_origins["+strconv.Itoa(i)+"]", o,
				`want "*" or scheme://host[:port], such as https://app.example.com`)
		}
	}
	for i, rt := range c.Routes {
		checkAddrs(ps, "routes["+strconv.Itoa(i)+"].trusted_sources", rt.TrustedSources)
	}
}

// validateChain checks that every name is a stage, listed once, in
// policy.StageOrder.
func validateChain(ps *Problems, chain []string) {
	last := -1
	for i, name := range chain {
		key := "policy.chain[" + strconv.Itoa(i) + "]"
		j := slices.Index(policy.StageOrder, name)
		switch {
		case j < 0:
			ps.add(key, name, "want one of "+strings.Join(policy.StageOrder, ", "))
		case slices.Index(chain, name) < i:
			ps.add(key, name, "listed twice")
		case j < last:
			ps.add(key, name, "out of order: stages always run as "+strings.Join(policy.StageOrder, ", "))
		default:
			last = j
		}
	}
}

func (c *Config) validateDialRules(ps *Problems) {
	d := c.Policy.DialRules
	const key = "policy.dial_rules"
	if !isDigits(d.CountryCode) || len(d.CountryCode) > 3 {
		ps.add(key+".country_code", d.CountryCode, "want the calling code as 1 to 3 digits, such as 1, 44 or 49")
	}
	if d.NationalPrefix != "" && !isDigits(d.NationalPrefix) {
		ps.add(key+".national_prefix", d.NationalPrefix, "want digits, such as 0 or 1, or empty")
	}
	if d.InternationalPrefix != "" && !isDigits(d.InternationalPrefix) {
		ps.add(key+".international_prefix", d.InternationalPrefix, "want digits, such as 00 or 011, or empty")
	}
	for i, code := range d.AccessCodes {
		if !isDigits(code) || len(code) > maxDialCode {
			ps.add(key+".access_codes["+strconv.Itoa(i)+"]", code, "want 1 to 4 digits, such as 9")
		}
	}
	for i, code := range d.FeatureCodes {
		if !isFeatureCode(code) {
			ps.add(key+".feature_codes["+strconv.Itoa(i)+"]", code, "want * or # then up to 4 digits, * or #, such as *67")
		}
	}
	if d.MaxShortDigits < 0 || d.MaxShortDigits > policy.MaxShortDigitsLimit {
		ps.add(key+".max_short_digits", strconv.Itoa(d.MaxShortDigits),
			fmt.Sprintf("want 0 to %d: %d digits can already name an international number", policy.MaxShortDigitsLimit, policy.MaxShortDigitsLimit+1))
	}
	for i, pfx := range d.PremiumPrefixes {
		if !isE164Prefix(pfx) {
			ps.add(key+".premium_prefixes["+strconv.Itoa(i)+"]", pfx, "want + and digits, such as +1900")
		}
	}
	groups := map[string]int{}
	for i, g := range d.Groups {
		gkey := key + ".groups[" + strconv.Itoa(i) + "]"
		switch j, dup := groups[g.Name]; {
		case strings.TrimSpace(g.Name) == "":
			ps.add(gkey+".name", g.Name, "must not be empty")
		case dup:
			ps.add(gkey+".name", g.Name, fmt.Sprintf("already names %s.groups[%d]", key, j))
		default:
			groups[g.Name] = i
		}
		checkDialPrefixes(ps, gkey+".allow", g.Allow)
		checkDialPrefixes(ps, gkey+".deny", g.Deny)
	}
	if _, ok := groups[d.DefaultGroup]; !ok {
		ps.add(key+".default_group", d.DefaultGroup, "no group in "+key+".groups has this name")
	}
	for i, u := range c.Users {
		if _, ok := groups[u.Group]; u.Group != "" && !ok {
			ps.add("users["+strconv.Itoa(i)+"].group", u.Group, "no group in "+key+".groups has this name")
		}
	}
}

func checkDialPrefixes(ps *Problems, key string, prefixes []string) {
	for i, p := range prefixes {
		if p != "*" && !isE164Prefix(p) {
			ps.add(key+"["+strconv.Itoa(i)+"]", p, `want + and digits, such as +4930, or "*" for any number`)
		}
	}
}

// maxDialCode bounds an access code's digits, and a feature code's
// characters after its first.
const maxDialCode = 4

// isFeatureCode reports whether s is "*" or "#" then 1 to maxDialCode
// digits, "*" or "#" ("*67", "#31#").
func isFeatureCode(s string) bool {
	if len(s) < 2 || len(s) > 1+maxDialCode || (s[0] != '*' && s[0] != '#') {
		return false
	}
	return strings.Trim(s[1:], "0123456789*#") == ""
}

func isE164Prefix(s string) bool {
	rest, ok := strings.CutPrefix(s, "+")
	return ok && isDigits(rest) && len(rest) <= 15
}

func isDigits(s string) bool {
	return s != "" && strings.Trim(s, "0123456789") == ""
}

// checkAddrs checks a list of IPs or CIDR prefixes, IPv4 or IPv6.
func checkAddrs(ps *Problems, key string, addrs []string) {
	for i, s := range addrs {
		if _, err := parseAddrOrPrefix(s); err != nil {
			ps.add(key+"["+strconv.Itoa(i)+"]", s, "want an IP or CIDR such as 192.0.2.7, 192.0.2.0/24 or 2001:db8::/32")
		}
	}
}

// parseAddrOrPrefix parses an IP (as a full-length prefix) or a prefix.
func parseAddrOrPrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		return netip.ParsePrefix(s)
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	if a.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("zone in %q", s)
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// checkPatterns checks case-insensitive regular expressions.
func checkPatterns(ps *Problems, key string, patterns []string) {
	for i, p := range patterns {
		k := key + "[" + strconv.Itoa(i) + "]"
		if p == "" {
			ps.add(k, p, "must not be empty: it would match everything")
			continue
		}
		if _, err := regexp.Compile("(?i)" + p); err != nil {
			ps.add(k, p, "not a regular expression: "+err.Error())
		}
	}
}

// checkBucket: rate 0 turns a bucket off; a positive rate needs burst >= 1.
func checkBucket(ps *Problems, key string, b policy.Bucket) {
	switch {
	case b.Rate < 0 || b.Rate != b.Rate: // NaN too
		ps.add(key+".rate", strconv.FormatFloat(b.Rate, 'g', -1, 64), "want 0 (off) or a positive rate per second")
	case b.Burst < 0:
		ps.add(key+".burst", strconv.Itoa(b.Burst), "want 0 or more")
	case b.Rate > 0 && b.Burst < 1:
		ps.add(key+".burst", strconv.Itoa(b.Burst), "want at least 1 when rate is set")
	}
}

func checkNonNegative(ps *Problems, key string, n int) {
	if n < 0 {
		ps.add(key, strconv.Itoa(n), "want 0 or more")
	}
}

// validOrigin reports whether s is "*" or an origin as browsers send it:
// scheme://host[:port], nothing after.
func validOrigin(s string) bool {
	if s == "*" {
		return true
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme == "" || u.Host == "" || u.User != nil ||
		u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return false
	}
	if port := u.Port(); port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return false
		}
	}
	return u.Hostname() != ""
}
