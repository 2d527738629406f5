package policy

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// dialReason is the reason phrase of every refusal by the rules: the cause
// goes to logs and metrics, not to a caller probing the rules.
const dialReason = "Forbidden (dial rules)"

// Dial-rules causes.
const (
	causeUnknownGroup  = "unknown_group"
	causeUnreadable    = "unreadable"
	causeNotANumber    = "not_a_number"
	causeDenied        = "denied"
	causeNotAllowed    = "not_allowed"
	causePremium       = "premium"
	causeInternational = "international"
)

// DialRules is the dial_rules stage, against toll fraud. A call toward a
// trunk has its request-URI user read under the dialing plan (see
// dialPlan.read) into one canonical form, the rules of the caller's group
// (Request.Group; empty is the default group) are checked against that
// form and nothing else, and leg B dials that form (Request.Dial), so the
// trunk gets exactly what was checked. A full number is refused with 403
// Forbidden (dial rules), in this order:
//
//  1. a Deny prefix matches: cause denied;
//  2. Allow is not empty and no Allow prefix matches ("*" matches any):
//     cause not_allowed;
//  3. a premium prefix matches and the group has not Premium: premium;
//  4. the country code is not the home one and the group has not
//     International: international.
//
// A short number or a name is refused (403, cause not_a_number) when the
// group has an Allow list without "*": such a group says exactly what may
// be dialed. Otherwise it is dialed as is; it has too few digits to name
// an international number however a trunk reads it.
//
// An unreadable string is refused with 484 Address Incomplete (cause
// unreadable) unless the group may call anything (international and
// premium, no Deny list, no Allow list but "*"): RFC 3261 section 21.4.22,
// and RFC 3398 maps ISUP cause 28 "invalid number format (address
// incomplete)" to 484, so a gateway's caller gets the same answer. It is
// never let through a group the rules restrict, since a trunk may read it
// as any number at all.
//
// A group that does not exist is refused (403, unknown_group): the stage
// fails closed. Calls to other targets are not checked. A DialRules is
// immutable and safe for concurrent use.
//
// Note that the North American plan shares country code 1 among many
// countries: calls to the Caribbean are national here, and need Deny or
// premium prefixes ("+1876") to be stopped.
type DialRules struct {
	plan         *dialPlan
	premium      []string
	home         string // "+" and the home country code
	defaultGroup string
	groups       map[string]dialGroup
}

// dialGroup is a DialGroupSpec with its prefixes checked.
type dialGroup struct {
	allowAny      bool
	allow, deny   []string
	international bool
	premium       bool
}

// restricted reports whether the group's Allow list limits it to some
// numbers.
func (g dialGroup) restricted() bool { return len(g.allow) > 0 && !g.allowAny }

// unrestricted reports whether no number at all is refused to the group.
func (g dialGroup) unrestricted() bool {
	return g.international && g.premium && len(g.deny) == 0 && !g.restricted()
}

// DialDecision is the stage's verdict on one dialed string.
type DialDecision struct {
	// Decision is Pass or the refusal.
	Decision
	// Dialed is how the plan read the string.
	Dialed Dialed
	// Dial is what leg B must dial when the call passes: Dialed.Number,
	// or the string as dialed for an unreadable one in a group that may
	// call anything. "" on refusal.
	Dial string
}

// NewDialRules checks cfg and returns the dial_rules stage, or an error
// naming every bad field: prefixes must be "+" and digits (visual
// separators allowed; "*" in allow), codes as the config validation wants
// them, group names unique and the default group one of them.
func NewDialRules(cfg DialRulesSpec) (*DialRules, error) {
	errs := checkPlan(cfg)
	d := &DialRules{plan: newDialPlan(cfg), home: "+" + cfg.CountryCode, defaultGroup: cfg.DefaultGroup,
		groups: make(map[string]dialGroup, len(cfg.Groups))}
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

// checkPlan checks the dialing plan's prefixes and codes.
func checkPlan(cfg DialRulesSpec) []error {
	var errs []error
	for _, f := range [...]struct{ name, v string }{
		{"country_code", cfg.CountryCode}, {"national_prefix", cfg.NationalPrefix}, {"international_prefix", cfg.InternationalPrefix},
	} {
		if !allDigits(f.v) || (f.name == "country_code" && (f.v == "" || f.v[0] == '0')) {
			errs = append(errs, fmt.Errorf("dial rules %s %q: want digits", f.name, f.v))
		}
	}
	for i, c := range cfg.AccessCodes {
		if c == "" || len(c) > maxDialCode || !allDigits(c) {
			errs = append(errs, fmt.Errorf("dial rules access_codes[%d] %q: want 1 to %d digits", i, c, maxDialCode))
		}
	}
	for i, c := range cfg.FeatureCodes {
		if len(c) < 2 || len(c) > 1+maxDialCode || (c[0] != '*' && c[0] != '#') || strings.Trim(c[1:], "0123456789*#") != "" {
			errs = append(errs, fmt.Errorf("dial rules feature_codes[%d] %q: want * or # then up to %d digits, * or #", i, c, maxDialCode))
		}
	}
	if cfg.MaxShortDigits < 0 || cfg.MaxShortDigits > MaxShortDigitsLimit {
		errs = append(errs, fmt.Errorf("dial rules max_short_digits %d: want 0 to %d", cfg.MaxShortDigits, MaxShortDigitsLimit))
	}
	return errs
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

// Check implements Stage. On a call toward trunks that passes, it sets
// r.Dial to what leg B must dial.
func (d *DialRules) Check(_ context.Context, r *Request) Decision {
	if r.Target != TargetTrunks {
		return Pass
	}
	dd := d.Decide(r.Group, r.RURIUser)
	if dd.Action == Continue {
		r.Dial = dd.Dial
	}
	return dd.Decision
}

// Decide reads user (a request-URI user part, userinfo whole) under the
// plan and judges it for group ("" is the default group).
func (d *DialRules) Decide(group, user string) DialDecision {
	if group == "" {
		group = d.defaultGroup
	}
	g, ok := d.groups[group]
	if !ok {
		return DialDecision{Decision: deny403(StageDialRules, causeUnknownGroup, dialReason)}
	}
	dialed := d.plan.read(user)
	out := DialDecision{Decision: Pass, Dialed: dialed, Dial: dialed.Number}
	switch dialed.Kind {
	case DialNumber:
		if cause := g.check(dialed.Number, d.premium, d.home); cause != "" {
			out.Decision = deny403(StageDialRules, cause, dialReason)
		}
	case DialShort, DialName:
		if g.restricted() {
			out.Decision = deny403(StageDialRules, causeNotANumber, dialReason)
		}
	default:
		if !g.unrestricted() {
			out.Decision = Decision{Action: Answer, Code: 484, Reason: "Address Incomplete",
				Stage: StageDialRules, Cause: causeUnreadable}
		}
		out.Dial = user
	}
	if out.Action != Continue {
		out.Dial = ""
	}
	return out
}

// check returns the cause refusing an E.164 number, or "".
func (g dialGroup) check(number string, premium []string, home string) string {
	switch {
	case hasAnyPrefix(number, g.deny):
		return causeDenied
	case g.restricted() && !hasAnyPrefix(number, g.allow):
		return causeNotAllowed
	case !g.premium && hasAnyPrefix(number, premium):
		return causePremium
	case !g.international && !strings.HasPrefix(number, home):
		return causeInternational
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
