package sipmsg

import (
	"errors"
	"strings"

	"github.com/ghettovoice/gosip/sip"
)

// The grammar shared by the address headers (To, From, Contact, Route,
// Record-Route, RFC 3261 20.10) and Via: a value, its ";name=value"
// parameters, and a comma before the next value. Header values reach here
// unfolded (every line break with its white space is one space).

var errAddr = errors.New("bad address")

// nameAddr is one value of an address header.
type nameAddr struct {
	display sip.MaybeString // as written inside the quotes (escapes kept), or the tokens; nil when absent
	uri     sip.Uri
	params  Params // copied into the header's own block (appendAddresses)
}

// parseNameAddrs reads a comma-separated list of addresses and appends
// them to out (the caller's array on its stack: one value is the rule).
func parseNameAddrs(bx *arena, s string, out []nameAddr) ([]nameAddr, error) {
	for {
		a, rest, err := parseNameAddr(bx, s)
		if bx != nil {
			bx.uri = nil // for the first value only (appendAddresses)
		}
		if err != nil {
			return nil, err
		}
		out = append(out, a)
		rest = trimLWS(rest)
		if rest == "" {
			return out, nil
		}
		if rest[0] != ',' {
			return nil, errAddr
		}
		s = rest[1:]
	}
}

// parseNameAddr reads ( name-addr / addr-spec ) *( SEMI param ) and
// returns what follows (at a ',' or the end).
func parseNameAddr(bx *arena, s string) (a nameAddr, rest string, err error) {
	s = trimLWS(s)
	if s == "*" { // Contact: * (RFC 3261 10.2.2)
		a.uri = &sip.WildcardUri{}
		return a, "", nil
	}
	var uriText string
	switch lt := strings.IndexByte(s, '<'); {
	case strings.HasPrefix(s, `"`):
		q, after, ok := cutQuoted(s)
		if !ok {
			return a, "", errAddr
		}
		a.display = sip.String{Str: q[1 : len(q)-1]}
		after = trimLWS(after)
		if !strings.HasPrefix(after, "<") {
			return a, "", errAddr
		}
		uriText, rest, err = cutAngle(after)
	case lt >= 0 && !strings.ContainsAny(s[:lt], ",;\""):
		if name := trimLWS(s[:lt]); name != "" {
			if !isDisplayTokens(name) {
				return a, "", errAddr
			}
			a.display = sip.String{Str: name}
		}
		uriText, rest, err = cutAngle(s[lt:])
	default:
		// addr-spec: the URI ends at the first ';' or ',' (its own
		// parameters would be the header's, RFC 3261 20.10).
		end := strings.IndexAny(s, ";,")
		if end < 0 {
			end = len(s)
		}
		uriText, rest = strings.TrimRight(s[:end], " \t"), s[end:]
	}
	if err != nil {
		return a, "", err
	}
	if a.uri, err = parseURI(bx, uriText); err != nil {
		return a, "", err
	}
	rest, err = parseHeaderParams(bx, &a.params, rest, 0)
	return a, rest, err
}

// cutAngle reads "<" URI ">" at the start of s.
func cutAngle(s string) (uri, rest string, err error) {
	end := strings.IndexByte(s, '>')
	if end < 0 {
		return "", "", errAddr
	}
	return s[1:end], s[end+1:], nil
}

// cutQuoted splits a quoted-string (quotes included) off the start of s.
func cutQuoted(s string) (q, rest string, ok bool) {
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '"':
			return s[:i+1], s[i+1:], true
		}
	}
	return "", "", false
}

// isDisplayTokens: *(token LWS), the unquoted display-name, and, as phones
// write names in their own language without quotes, UTF-8 letters beyond
// ASCII (the lines are valid UTF-8 already). The name is rendered quoted.
func isDisplayTokens(s string) bool {
	for _, r := range s {
		if r != ' ' && r != '\t' && r < 0x80 && !isTokenChar(r) {
			return false
		}
	}
	return true
}

// parseHeaderParams reads *( SEMI generic-param ), generic-param = token [
// EQUAL gen-value ], gen-value = token / host / quoted-string, and returns
// what follows (a ',' or the end). Values are kept as written, quotes
// included.
// They go into p, whose list is sized for them and room more (a Via's
// received, which the transaction layer adds in place).
func parseHeaderParams(bx *arena, p *Params, s string, room int) (string, error) {
	field := s
	if comma := strings.IndexByte(s, ','); comma >= 0 {
		field = s[:comma]
	}
	if n := strings.Count(field, ";"); n > 0 {
		p.list = bx.list(n + room)
	}
	for {
		s = trimLWS(s)
		if s == "" || s[0] == ',' {
			return s, nil
		}
		if s[0] != ';' {
			return "", errAddr
		}
		s = trimLWS(s[1:])
		n := tokenLen(s)
		if n == 0 {
			return "", errAddr
		}
		name := s[:n]
		s = trimLWS(s[n:])
		if !strings.HasPrefix(s, "=") {
			p.Add(name, nil)
			continue
		}
		s = trimLWS(s[1:])
		var value string
		if strings.HasPrefix(s, `"`) {
			q, rest, ok := cutQuoted(s)
			if !ok {
				return "", errAddr
			}
			value, s = q, rest
		} else {
			end := strings.IndexAny(s, " \t;,")
			if end < 0 {
				end = len(s)
			}
			value, s = s[:end], s[end:]
			if value == "" {
				return "", errAddr
			}
		}
		p.Add(name, sip.String{Str: value})
	}
}

// tokenLen is the length of the token at the start of s.
func tokenLen(s string) int {
	for i := 0; i < len(s); i++ {
		if !isTokenChar(rune(s[i])) {
			return i
		}
	}
	return len(s)
}

func trimLWS(s string) string { return strings.Trim(s, " \t") }
