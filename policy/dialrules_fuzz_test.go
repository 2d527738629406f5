package policy

import (
	"strings"
	"testing"
)

// fuzzGroups are dial groups of every kind: restricted to the home
// country, international with a deny list, limited by an allow list, and
// allowed anything.
var fuzzGroups = []DialGroupSpec{
	{Name: "national"},
	{Name: "intl", International: true, Deny: []string{"+7", "+44 20 7946"}},
	{Name: "london", Allow: []string{"+4420"}},
	{Name: "open", International: true, Premium: true},
}

// fuzzRules builds the dial rules of plan with fuzzGroups.
func fuzzRules(t testing.TB, plan DialRulesSpec) *DialRules {
	plan.PremiumPrefixes = DefaultPremiumPrefixes
	plan.DefaultGroup = "national"
	plan.Groups = fuzzGroups
	d, err := NewDialRules(plan)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// FuzzDialRules checks the dial_rules contract on any dialed string, for
// plans with and without access and feature codes and groups of every
// kind: either the call is refused, or what leg B dials is the canonical
// form that the group's rules were checked against (a full number in
// E.164 that a reference reading of the rules allows; a short number or a
// name with too few digits to name an international number; or, only for
// a group allowed anything, the string as dialed), and reading that form
// again gives it back unchanged.
func FuzzDialRules(f *testing.F) {
	for _, s := range []string{"2125551234", "011442079460958", "+44 20 7946 0958", "tel:5551234;phone-context=+1212", "911", "alice"} {
		f.Add(s)
	}
	plans := []DialRulesSpec{planNANP, planUK, planPBX, planDEPBX}
	rules := make([]*DialRules, len(plans))
	for i, p := range plans {
		rules[i] = fuzzRules(f, p)
	}
	f.Fuzz(func(t *testing.T, in string) {
		for i, d := range rules {
			for _, g := range fuzzGroups {
				checkDialContract(t, d, plans[i], g, in)
			}
		}
	})
}

// checkDialContract checks Decide(g, in) against the contract of
// FuzzDialRules.
func checkDialContract(t *testing.T, d *DialRules, plan DialRulesSpec, g DialGroupSpec, in string) {
	t.Helper()
	dd := d.Decide(g.Name, in)
	n := dd.Dialed.Number
	if dd.Action != Continue {
		if dd.Dial != "" || (dd.Code != 403 && dd.Code != 484) {
			t.Fatalf("%s %q: refused with %d, dial %q", g.Name, in, dd.Code, dd.Dial)
		}
		if dd.Dialed.Kind == DialNumber && refAllows(n, g, plan.CountryCode) {
			t.Fatalf("%s %q: %s refused, the rules allow it", g.Name, in, n)
		}
		return
	}
	switch dd.Dialed.Kind {
	case DialNumber:
		if digits := strings.TrimPrefix(n, "+"); digits == n || digits == "" || len(digits) > maxE164Digits || digits[0] == '0' || !allDigits(digits) {
			t.Fatalf("%s %q: number %q is not E.164", g.Name, in, n)
		}
		if !refAllows(n, g, plan.CountryCode) {
			t.Fatalf("%s %q: %s let through, the rules refuse it", g.Name, in, n)
		}
	case DialShort, DialName:
		if len(g.Allow) > 0 {
			t.Fatalf("%s %q: %v %q let through an allow list", g.Name, in, dd.Dialed.Kind, n)
		}
		if countDigits(n) > plan.MaxShortDigits {
			t.Fatalf("%s %q: %v %q has more than %d digits", g.Name, in, dd.Dialed.Kind, n, plan.MaxShortDigits)
		}
	default:
		if !g.International || !g.Premium || len(g.Deny) > 0 || len(g.Allow) > 0 || dd.Dial != in {
			t.Fatalf("%s %q: unreadable let through as %q", g.Name, in, dd.Dial)
		}
		return
	}
	if dd.Dial != n {
		t.Fatalf("%s %q: leg B dials %q, the rules checked %q", g.Name, in, dd.Dial, n)
	}
	if again := d.Decide(g.Name, n); again.Action != Continue || again.Dialed != dd.Dialed || again.Dial != n {
		t.Fatalf("%s %q: read as %v %q, which reads as %v %q (%+v)", g.Name, in, dd.Dialed.Kind, n,
			again.Dialed.Kind, again.Dialed.Number, again.Decision)
	}
}

// refAllows is the rules of g applied to an E.164 number, written
// independently of dialGroup.check.
func refAllows(number string, g DialGroupSpec, cc string) bool {
	has := func(prefixes []string) bool {
		for _, p := range prefixes {
			if p == "*" || strings.HasPrefix(number, strings.ReplaceAll(p, " ", "")) {
				return true
			}
		}
		return false
	}
	switch {
	case has(g.Deny), len(g.Allow) > 0 && !has(g.Allow):
		return false
	case !g.Premium && has(DefaultPremiumPrefixes):
		return false
	}
	return g.International || strings.HasPrefix(number, "+"+cc)
}
