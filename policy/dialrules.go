package policy

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/sbc-project/sbc/internal/config"
)

// dialReason is the reason phrase of every dial-rules refusal: the cause
// goes to logs and metrics, not to a caller probing the rules.
const dialReason = "Forbidden (dial rules)"

// DialRules is the dial_rules stage, against toll fraud: a call toward a
// trunk has its request-URI user normalized to E.164 (see Normalize), then
// checked against the rules of the caller's group (Request.Group; empty is
// the default group), in this order, each refusal a 403:
//
//  1. a Deny prefix matches: cause denied;
//  2. Allow is not empty and no Allow prefix matches ("*" matches any):
//     cause not_allowed;
//  3. a premium prefix matches and the group has not Premium: premium;
//  4. the country code is not the home one and the group has not
//     International: international.
//
// A group that does not exist is refused (cause unknown_group): the stage
// fails closed. A user part that is not a number Normalize can place (a
// name, a short code) is refused (cause not_a_number) when the group has an
// Allow list without "*", and goes on otherwise: such a group says exactly
// what may be dialed, while an open group trusts the trunk with its own
// numbering (emergency and service codes). Calls to other targets are not
// checked. A DialRules is immutable and safe for concurrent use.
//
// Note that the North American plan shares country code 1 among many
// countries: calls to the Caribbean are national here, and need Deny or
// premium prefixes ("+1876") to be stopped.
type DialRules struct {
	plan         config.DialRules // the dialing plan, for Normalize
	premium      []string
	defaultGroup string
	groups       map[string]dialGroup
}

// dialGroup is a config.DialGroup with its prefixes checked.
type dialGroup struct {
	allowAny      bool
	allow, deny   []string
	international bool
	premium       bool
}

// NewDialRules checks cfg and returns the dial_rules stage, or an error
// naming every bad field: prefixes must be "+" and digits (visual
// separators allowed; "*" in allow), codes digits, group names unique and
// the default group one of them.
func NewDialRules(cfg config.DialRules) (*DialRules, error) {
	var errs []error
	for _, f := range [...]struct{ name, v string }{
		{"country_code", cfg.CountryCode}, {"national_prefix", cfg.NationalPrefix}, {"international_prefix", cfg.InternationalPrefix},
	} {
		if !allDigits(f.v) || (f.name == "country_code" && (f.v == "" || f.v[0] == '0')) {
			errs = append(errs, fmt.Errorf("dial rules %s %q: want digits", f.name, f.v))
		}
	}
	d := &DialRules{plan: cfg, defaultGroup: cfg.DefaultGroup, groups: make(map[string]dialGroup, len(cfg.Groups))}
	d.premium = prefixes("premium_prefixes", cfg.PremiumPrefixes, false, &errs)
	for i, g := range cfg.Groups {
		if _, dup := d.groups[g.Name]; dup || g.Name == "" {
			errs = append(errs, fmt.Errorf("dial rules groups[%d] name %q: empty or defined twice", i, g.Name))
			continue
		}
		key := fmt.Sprintf("groups[%d]", i)
		dg := dialGroup{
			deny:          prefixes(key+".deny", g.Deny, false, &errs),
			allow:         prefixes(key+".allow", g.Allow, true, &errs),
			international: g.International,
			premium:       g.Premium,
		}
		for _, p := range dg.allow {
			dg.allowAny = dg.allowAny || p == "*"
		}
		d.groups[g.Name] = dg
	}
	if _, ok := d.groups[cfg.DefaultGroup]; !ok {
		errs = append(errs, fmt.Errorf("dial rules default group %q is not defined", cfg.DefaultGroup))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return d, nil
}

// prefixes checks and normalizes a list of E.164 prefixes.
func prefixes(key string, in []string, star bool, errs *[]error) []string {
	out := make([]string, 0, len(in))
	for i, p := range in {
		s := stripVisual(p)
		switch {
		case star && s == "*":
		case len(s) < 2 || s[0] != '+' || !allDigits(s[1:]):
			*errs = append(*errs, fmt.Errorf("dial rules %s[%d] %q: want + and digits", key, i, p))
			continue
		}
		out = append(out, s)
	}
	return out
}

// Check implements Stage.
func (d *DialRules) Check(_ context.Context, r *Request) Decision {
	if r.Target != config.TargetTrunks {
		return Pass
	}
	name := r.Group
	if name == "" {
		name = d.defaultGroup
	}
	g, ok := d.groups[name]
	if !ok {
		return deny403(config.StageDialRules, "unknown_group", dialReason)
	}
	number, ok := Normalize(r.RURIUser, d.plan)
	if !ok {
		if len(g.allow) > 0 && !g.allowAny {
			return deny403(config.StageDialRules, "not_a_number", dialReason)
		}
		return Pass
	}
	if cause := g.check(number, d.premium, d.plan.CountryCode); cause != "" {
		return deny403(config.StageDialRules, cause, dialReason)
	}
	return Pass
}

// check returns the cause refusing an E.164 number, or "".
func (g dialGroup) check(number string, premium []string, home string) string {
	switch {
	case hasAnyPrefix(number, g.deny):
		return "denied"
	case len(g.allow) > 0 && !g.allowAny && !hasAnyPrefix(number, g.allow):
		return "not_allowed"
	case !g.premium && hasAnyPrefix(number, premium):
		return "premium"
	case !g.international && !strings.HasPrefix(number, "+"+home):
		return "international"
	}
	return ""
}

func hasAnyPrefix(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}
