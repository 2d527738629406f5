package b2bua

import (
	"net/netip"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/ghettovoice/gosip/sip"

	"github.com/sbc-project/sbc/b2bua/sipmsg"
)

// maxDisplayName bounds a display name the SBC passes on, in bytes.
const maxDisplayName = 128

// reTelURI matches the tel: URIs passed on: RFC 3966 numbers of decimal
// digits, * and # with visual separators, and a few parameters of token
// characters.
var reTelURI = regexp.MustCompile(`^(?i:tel):\+?[0-9*#().-]{0,31}[0-9][0-9*#().-]{0,31}(;[A-Za-z0-9-]{1,32}(=[A-Za-z0-9+*#().%_-]{1,64})?){0,4}$`)

// reDNSHost matches a DNS name or an IPv4 address.
var reDNSHost = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$`)

// validURIHost reports whether h, the host of a sip: URI, is a DNS name,
// an IPv4 address or a bracketed IPv6 address.
func validURIHost(h string) bool {
	if inner, ok := strings.CutPrefix(h, "["); ok {
		inner, ok = strings.CutSuffix(inner, "]")
		ip, err := netip.ParseAddr(inner)
		return ok && err == nil && ip.Is6() && ip.Zone() == ""
	}
	return reDNSHost.MatchString(h)
}

// splitAddrList splits a header value into its comma-separated entries,
// leaving commas inside quotes and angle brackets alone.
func splitAddrList(v string) []string {
	var out []string
	inQuote, inAngle, escaped := false, false, false
	start := 0
	for i := 0; i < len(v); i++ {
		ch := v[i]
		switch {
		case escaped:
			escaped = false
		case inQuote && ch == '\\':
			escaped = true
		case ch == '"' && !inAngle:
			inQuote = !inQuote
		case inQuote:
		case ch == '<':
			inAngle = true
		case ch == '>':
			inAngle = false
		case ch == ',' && !inAngle:
			out = append(out, v[start:i])
			start = i + 1
		}
	}
	return append(out, v[start:])
}

// parseNameAddr parses one name-addr or addr-spec (RFC 3261 section 25.1)
// into its display name (unquoted) and its URI, rebuilt: a sip: or sips:
// URI without URI headers, or a tel: URI as matched by reTelURI. ok is
// false for anything else.
func parseNameAddr(entry string) (name, uri string, ok bool) {
	entry = strings.TrimSpace(entry)
	raw := entry
	if lt := strings.IndexByte(entry, '<'); lt >= 0 {
		gt := strings.IndexByte(entry[lt:], '>')
		if gt < 0 {
			return "", "", false
		}
		raw = entry[lt+1 : lt+gt]
		if name, ok = displayName(strings.TrimSpace(entry[:lt])); !ok {
			return "", "", false
		}
	}
	if reTelURI.MatchString(raw) {
		return name, raw, true
	}
	u, err := sipmsg.ParseURI(raw)
	if err != nil || !validURIHost(u.Host()) {
		return "", "", false
	}
	if su, isSIP := u.(*sip.SipUri); isSIP {
		su.FHeaders = sipmsg.NewParams()
	}
	uri = u.String()
	if strings.ContainsFunc(uri, func(r rune) bool { return r <= ' ' || r >= 0x7f || strings.ContainsRune(`<>",\`, r) }) {
		return "", "", false
	}
	// Only what reads back the same passes (gosip writes some URIs it
	// cannot read, such as an IPv6 host without a port).
	if again, err := sipmsg.ParseURI(uri); err != nil || again.String() != uri {
		return "", "", false
	}
	return name, uri, true
}

// displayName unquotes a quoted-string display name or takes a token list
// as it is; ok is false for an unterminated quote.
func displayName(s string) (string, bool) {
	if !strings.HasPrefix(s, `"`) {
		return s, !strings.ContainsAny(s, `"<>`)
	}
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		switch ch := s[i]; {
		case ch == '\\' && i+1 < len(s):
			i++
			b.WriteByte(s[i])
		case ch == '"':
			return b.String(), strings.TrimSpace(s[i+1:]) == ""
		default:
			b.WriteByte(ch)
		}
	}
	return "", false
}

// nameAddr writes a name-addr: the display name, cleaned (control
// characters dropped, at most maxDisplayName bytes) and quoted, is left
// out when nothing of it is left.
func nameAddr(name, uri string) string {
	var b strings.Builder
	for _, r := range name {
		if b.Len()+len(string(r)) > maxDisplayName {
			break
		}
		if r >= 0x20 && r != 0x7f && r != utf8.RuneError {
			b.WriteRune(r)
		}
	}
	name = strings.TrimSpace(b.String())
	if name == "" {
		return "<" + uri + ">"
	}
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(name) + `" <` + uri + ">"
}
