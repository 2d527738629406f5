package policy

import (
	"cmp"
	"net/url"
	"slices"
	"strings"
)

// maxE164Digits is the longest E.164 number (ITU-T E.164 section 6.1),
// country code included.
const maxE164Digits = 15

// maxDialLen bounds the input a dial plan reads: longer is unreadable.
const maxDialLen = 128

// maxShortLen bounds a short number's characters (digits, "*" and "#").
const maxShortLen = 16

// maxDialCode bounds an access code's digits, and a feature code's
// characters after its "*" or "#" (as the config validation does).
const maxDialCode = 4

// DialKind is what a dialed string is, as the dial plan reads it.
type DialKind uint8

const (
	// DialUnreadable: nothing the plan can read with certainty (a number
	// behind an unknown code, letters mixed with a long number, non-ASCII
	// digits, too long). A trunk might read it as any number at all.
	DialUnreadable DialKind = iota
	// DialNumber: a full number, in E.164.
	DialNumber
	// DialShort: a short number dialed as is: an extension, an emergency
	// or service code ("1000", "911", "*97"). It has too few digits to
	// name an international number.
	DialShort
	// DialName: a name ("alice"), or no user at all. It has too few
	// digits to name an international number.
	DialName
)

var dialKindNames = [...]string{"unreadable", "number", "short", "name"}

func (k DialKind) String() string {
	if int(k) < len(dialKindNames) {
		return dialKindNames[k]
	}
	return "unknown"
}

// Dialed is a dialed string as the dial plan reads it.
type Dialed struct {
	Kind DialKind
	// Number is the canonical form, the one the rules check and leg B
	// dials: "+" and 1 to 15 digits for DialNumber; digits, "*" and "#"
	// for DialShort; the user part unchanged for DialName; "" for
	// DialUnreadable. Reading Number again gives the same Dialed.
	Number string
}

// dialPlan is how callers write numbers: DialRulesSpec's country code,
// prefixes and codes. It is immutable.
type dialPlan struct {
	cc, np, ip string
	access     []string
	feature    []string
	maxShort   int
}

func newDialPlan(cfg DialRulesSpec) *dialPlan {
	return &dialPlan{
		cc: cfg.CountryCode, np: cfg.NationalPrefix, ip: cfg.InternationalPrefix,
		access: cfg.AccessCodes, feature: cfg.FeatureCodes, maxShort: cfg.MaxShortDigits,
	}
}

// read reads a request-URI user part (userinfo: "tel:+44..." arrives as
// user "tel" and password "+44...", and must be read whole). In order:
//
//   - URI escapes are undone once ("%2B44..."); what is left must be
//     printable ASCII: a trunk may fold other digits to ASCII ones;
//   - a full number: a "tel:", "sip:" or "sips:" scheme, an "@host" part
//     and URI parameters are dropped, a global phone-context is put in
//     front of a local number (RFC 3966), visual separators ( -.()) and
//     one trailing "#" (the send key) are removed; an access code and a
//     feature code of the plan may come first; then "+" and digits, the
//     international prefix and digits, the national prefix and digits,
//     or digits alone in a closed plan or as the ten digits of a North
//     American number give E.164. Numbers under +1 must be North American
//     (ten digits, area code and exchange starting 2-9);
//   - a short number: digits, "*" and "#", at most maxShort digits, not
//     starting with the international prefix (an incomplete number), and
//     not a full number by itself;
//   - a name: an ASCII letter then letters, digits and the user-unreserved
//     marks of RFC 3261, at most maxShort digits.
//
// Anything else is unreadable.
func (p *dialPlan) read(user string) Dialed {
	if user == "" {
		return Dialed{Kind: DialName}
	}
	s, ok := unescapeDial(user)
	if !ok {
		return Dialed{}
	}
	if n, ok := p.number(s); ok {
		return Dialed{Kind: DialNumber, Number: n}
	}
	if d, ok := p.short(s); ok {
		return Dialed{Kind: DialShort, Number: d}
	}
	if p.isName(user) {
		return Dialed{Kind: DialName, Number: user}
	}
	return Dialed{}
}

// unescapeDial undoes URI escapes once (a trunk may unescape "%2B4490..."
// and dial it) and refuses what is too long, badly escaped, still escaped,
// or not printable ASCII.
func unescapeDial(s string) (string, bool) {
	if len(s) > maxDialLen {
		return "", false
	}
	if strings.IndexByte(s, '%') >= 0 {
		u, err := url.PathUnescape(s)
		if err != nil || strings.IndexByte(u, '%') >= 0 {
			return "", false
		}
		s = u
	}
	for i := 0; i < len(s); i++ {
		if s[i] < ' ' || s[i] > '~' {
			return "", false
		}
	}
	return s, true
}

// number reads s as a full number and returns it in E.164.
func (p *dialPlan) number(s string) (string, bool) {
	num, pctx := splitDialString(s)
	num = strings.TrimSuffix(stripVisual(num), "#")
	if num == "" {
		return "", false
	}
	if num[0] != '+' && strings.HasPrefix(pctx, "+") {
		// A local number in a global context: no codes, the context's
		// digits come first.
		return p.e164(stripVisual(pctx) + num)
	}
	for _, rest := range p.withoutCodes(num) {
		if n, ok := p.e164(rest); ok {
			return n, true
		}
	}
	return "", false
}

// withoutCodes returns num with every way of removing one access code
// and one feature code (either first) from its front, the most removed
// first, and num itself last.
func (p *dialPlan) withoutCodes(num string) []string {
	out := []string{num}
	for _, a := range p.access {
		if rest, ok := strings.CutPrefix(num, a); ok {
			out = append(out, rest)
			out = append(out, cutAny(rest, p.feature)...)
		}
	}
	for _, f := range p.feature {
		if rest, ok := strings.CutPrefix(num, f); ok {
			out = append(out, rest)
			out = append(out, cutAny(rest, p.access)...)
		}
	}
	slices.SortStableFunc(out, func(a, b string) int { return cmp.Compare(len(a), len(b)) })
	return out
}

// cutAny returns s without each of the codes that begins it.
func cutAny(s string, codes []string) []string {
	var out []string
	for _, c := range codes {
		if rest, ok := strings.CutPrefix(s, c); ok {
			out = append(out, rest)
		}
	}
	return out
}

// e164 reads a number without codes, separators or parameters.
func (p *dialPlan) e164(s string) (string, bool) {
	var digits string
	switch {
	case s == "":
		return "", false
	case s[0] == '+':
		digits = s[1:]
	case !allDigits(s):
		return "", false
	case p.ip != "" && strings.HasPrefix(s, p.ip):
		digits = s[len(p.ip):]
	case p.np != "" && strings.HasPrefix(s, p.np):
		if len(s) == len(p.np) {
			return "", false
		}
		digits = p.cc + s[len(p.np):]
	case p.np == "" || (p.cc == "1" && len(s) == 10):
		digits = p.cc + s
	default:
		return "", false
	}
	if !validE164(digits) {
		return "", false
	}
	return "+" + digits, true
}

// validE164 checks the digits of an E.164 number: 1 to 15, the first not
// 0, and under country code 1 the North American form NXX NXX XXXX (a
// trunk could read "+1 011 44..." as an international call).
func validE164(d string) bool {
	if d == "" || len(d) > maxE164Digits || d[0] == '0' || !allDigits(d) {
		return false
	}
	if d[0] == '1' {
		return len(d) == 11 && d[1] >= '2' && d[4] >= '2'
	}
	return true
}

// short reads s as a short number: digits, "*" and "#" with at most
// maxShort digits (and at least one), not beginning with the
// international prefix, and not a full number by itself (so that reading
// the short number again gives it back).
func (p *dialPlan) short(s string) (string, bool) {
	num, _ := splitDialString(s)
	num = stripVisual(num)
	if num == "" || len(num) > maxShortLen || strings.Trim(num, "0123456789*#") != "" {
		return "", false
	}
	if n := countDigits(num); n == 0 || n > p.maxShort {
		return "", false
	}
	if p.ip != "" && strings.HasPrefix(num, p.ip) {
		return "", false
	}
	if _, ok := p.number(num); ok {
		return "", false
	}
	return num, true
}

// isName reports whether s is a name: an ASCII letter first, then
// letters, digits and the marks RFC 3261 allows unescaped in a user part
// (no ":" "@" "%" or space), with at most maxShort digits.
func (p *dialPlan) isName(s string) bool {
	if len(s) > maxDialLen || !isLetter(s[0]) || countDigits(s) > p.maxShort {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !isLetter(c) && !(c >= '0' && c <= '9') && strings.IndexByte("-_.!~*'()&=+$,;?/", c) < 0 {
			return false
		}
	}
	return true
}

func isLetter(c byte) bool { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') }

func countDigits(s string) int {
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] >= '0' && s[i] <= '9' {
			n++
		}
	}
	return n
}

// splitDialString removes a URI scheme, the host and the parameters from a
// user part, returning the number and the phone-context parameter if any.
func splitDialString(s string) (number, phoneContext string) {
	s = strings.TrimSpace(s)
	for _, scheme := range []string{"tel:", "sip:", "sips:"} {
		if len(s) >= len(scheme) && strings.EqualFold(s[:len(scheme)], scheme) {
			s = s[len(scheme):]
			break
		}
	}
	if i := strings.IndexByte(s, '@'); i >= 0 {
		s = s[:i]
	}
	number, params, _ := strings.Cut(s, ";")
	for params != "" {
		var p string
		p, params, _ = strings.Cut(params, ";")
		name, value, _ := strings.Cut(p, "=")
		if strings.EqualFold(strings.TrimSpace(name), "phone-context") {
			phoneContext = strings.TrimSpace(value)
		}
	}
	return number, phoneContext
}

// stripVisual removes the visual separators of RFC 3966 and of habit.
func stripVisual(s string) string {
	return strings.Map(func(r rune) rune {
		switch r {
		case ' ', '-', '.', '(', ')':
			return -1
		}
		return r
	}, s)
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
