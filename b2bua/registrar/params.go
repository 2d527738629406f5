package registrar

import (
	"errors"
	"strings"
)

// maxCredentialsLen bounds one Authorization header value: real ones are a
// few hundred bytes, and nothing longer is worth parsing.
const maxCredentialsLen = 4096

// maxParams bounds the auth-params of one header value.
const maxParams = 32

var (
	errNotDigest   = errors.New("scheme is not Digest")
	errMalformed   = errors.New("malformed auth-param list")
	errTooLong     = errors.New("credentials too long")
	errDuplicate   = errors.New("duplicate auth-param")
	errTooMany     = errors.New("too many auth-params")
	errUnterminate = errors.New("unterminated quoted string")
)

// parseDigest parses a Digest credentials value (RFC 7235 section 2.1,
// RFC 7616 section 3.4): the scheme "Digest" followed by a comma separated
// list of name=token or name="quoted-string". Names are returned lower case,
// quoted values unescaped. A repeated name is an error: which one a server
// should believe is undefined, so it believes neither.
func parseDigest(v string) (map[string]string, error) {
	if len(v) > maxCredentialsLen {
		return nil, errTooLong
	}
	v = strings.TrimLeft(v, " \t")
	scheme, rest, _ := strings.Cut(v, " ")
	if !strings.EqualFold(scheme, "Digest") {
		return nil, errNotDigest
	}
	params := make(map[string]string, 10)
	for {
		rest = skipSpaceComma(rest)
		if rest == "" {
			return params, nil
		}
		name, value, tail, err := nextParam(rest)
		if err != nil {
			return nil, err
		}
		if _, dup := params[name]; dup {
			return nil, errDuplicate
		}
		if len(params) == maxParams {
			return nil, errTooMany
		}
		params[name] = value
		rest = tail
	}
}

// nextParam reads one name=value from the front of s.
func nextParam(s string) (name, value, rest string, err error) {
	i := 0
	for i < len(s) && isTokenChar(s[i]) {
		i++
	}
	if i == 0 {
		return "", "", "", errMalformed
	}
	name = strings.ToLower(s[:i])
	s = strings.TrimLeft(s[i:], " \t")
	if s == "" || s[0] != '=' {
		return "", "", "", errMalformed
	}
	s = strings.TrimLeft(s[1:], " \t")
	if s != "" && s[0] == '"' {
		value, rest, err = quoted(s)
	} else {
		j := 0
		for j < len(s) && (isTokenChar(s[j]) || strings.IndexByte("/:=@;?", s[j]) >= 0) {
			j++
		}
		if j == 0 {
			return "", "", "", errMalformed
		}
		value, rest = s[:j], s[j:]
	}
	if err != nil {
		return "", "", "", err
	}
	rest = strings.TrimLeft(rest, " \t")
	if rest != "" && rest[0] != ',' {
		return "", "", "", errMalformed
	}
	return name, value, rest, nil
}

// quoted reads a quoted-string at the front of s (which starts with '"').
func quoted(s string) (value, rest string, err error) {
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		switch c := s[i]; c {
		case '"':
			return b.String(), s[i+1:], nil
		case '\\':
			i++
			if i == len(s) {
				return "", "", errUnterminate
			}
			b.WriteByte(s[i])
		default:
			b.WriteByte(c)
		}
	}
	return "", "", errUnterminate
}

func skipSpaceComma(s string) string {
	return strings.TrimLeft(s, " \t,")
}

// isTokenChar reports whether c may appear in an RFC 7230 token. Unquoted
// values also accept "/:=@;?", because clients leave base64 nonces and URIs
// unquoted.
func isTokenChar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}
