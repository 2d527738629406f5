package policy

import (
	"net/url"
	"strings"

	"github.com/sbc-project/sbc/internal/config"
)

// maxE164Digits is the longest E.164 number (ITU-T E.164 section 6.1),
// country code included.
const maxE164Digits = 15

// maxDialLen bounds the input Normalize looks at: longer is not a number.
const maxDialLen = 128

// Normalize turns a dialed number, as found in a request-URI user part, into
// E.164 ("+" and digits) under the dialing plan of cfg, or reports ok false
// for what is not a number it can place (a name like "alice", a short code
// like "911" or "112", a local number without its area code, service codes
// with * or #).
//
// It undoes URI escapes ("%2B"), accepts a "sip:", "sips:" or "tel:" scheme and an "@host" part, and
// drops URI parameters, except that a phone-context that is a global number
// ("tel:5551234;phone-context=+1212", RFC 3966) is put in front of a local
// number. Visual separators (space - . ( )) are removed. Then:
//
//   - "+digits" is already international;
//   - cfg.InternationalPrefix then digits is international ("011 44 ...");
//   - cfg.NationalPrefix then digits is national: the home country code
//     cfg.CountryCode is put in front ("0 30 ..." → "+4930...");
//   - other digits are national too when the plan has no national prefix
//     (closed numbering plans) or is the North American one (country code
//     1), where ten digits are the national number ("212 555 1234");
//     elsewhere they are a local or short number: not ok.
//
// The result has 1 to 15 digits, the first of them not 0. Lengths are not
// checked per country: a short number is still placed in its country, so
// that premium and country rules see it.
func Normalize(number string, cfg config.DialRules) (e164 string, ok bool) {
	if len(number) > maxDialLen {
		return "", false
	}
	if strings.IndexByte(number, '%') >= 0 {
		// A trunk may unescape "%2B4490..." and dial it: so do we.
		u, err := url.PathUnescape(number)
		if err != nil {
			return "", false
		}
		number = u
	}
	s, pctx := splitDialString(number)
	s = stripVisual(s)
	if s == "" {
		return "", false
	}
	if s[0] != '+' && strings.HasPrefix(pctx, "+") {
		s = stripVisual(pctx) + s
	}
	var digits string
	switch ip, np := cfg.InternationalPrefix, cfg.NationalPrefix; {
	case s[0] == '+':
		digits = s[1:]
	case !allDigits(s):
		return "", false
	case ip != "" && strings.HasPrefix(s, ip):
		digits = s[len(ip):]
	case np != "" && strings.HasPrefix(s, np):
		digits = cfg.CountryCode + s[len(np):]
		if len(s) == len(np) {
			return "", false
		}
	case np == "" || (cfg.CountryCode == "1" && len(s) == 10):
		digits = cfg.CountryCode + s
	default:
		return "", false
	}
	if digits == "" || len(digits) > maxE164Digits || digits[0] == '0' || !allDigits(digits) {
		return "", false
	}
	return "+" + digits, true
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
		case ' ', '\t', '-', '.', '(', ')':
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
