package trunkreg

import (
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"strings"
)

// maxChallengeLen bounds a challenge header value this client reads.
const maxChallengeLen = 4096

// challenge is one Digest challenge (RFC 3261 section 22.4, RFC 8760 for
// SHA-256).
type challenge struct {
	realm, nonce, opaque, algorithm string
	qopAuth                         bool // qop offered and includes auth
	stale                           bool
}

// parseChallenge reads a WWW-Authenticate or Proxy-Authenticate value.
func parseChallenge(v string) (challenge, error) {
	var c challenge
	if len(v) > maxChallengeLen {
		return c, errors.New("challenge too long")
	}
	scheme, rest, _ := strings.Cut(strings.TrimSpace(v), " ")
	if !strings.EqualFold(scheme, "Digest") {
		return c, fmt.Errorf("scheme %q is not Digest", scheme)
	}
	params, err := parseParams(rest)
	if err != nil {
		return c, err
	}
	for name, value := range params {
		if strings.ContainsFunc(value, func(r rune) bool { return r < ' ' || r == 0x7f }) {
			return c, fmt.Errorf("parameter %s has a control character", name)
		}
	}
	c.realm, c.nonce, c.opaque = params["realm"], params["nonce"], params["opaque"]
	c.algorithm = strings.ToUpper(params["algorithm"])
	if c.algorithm == "" {
		c.algorithm = "MD5"
	}
	for q := range strings.SplitSeq(params["qop"], ",") {
		if strings.EqualFold(strings.TrimSpace(q), "auth") {
			c.qopAuth = true
		}
	}
	c.stale = strings.EqualFold(params["stale"], "true")
	if c.nonce == "" {
		return c, errors.New("challenge has no nonce")
	}
	return c, nil
}

// parseParams reads comma-separated name=value pairs, values quoted
// (with backslash escapes) or tokens; names lower-cased; repeats refused.
func parseParams(s string) (map[string]string, error) {
	out := map[string]string{}
	for {
		s = strings.TrimLeft(s, " \t,")
		if s == "" {
			return out, nil
		}
		eq := strings.IndexByte(s, '=')
		if eq <= 0 {
			return nil, fmt.Errorf("parameter %q has no value", s)
		}
		name := strings.ToLower(strings.TrimSpace(s[:eq]))
		s = strings.TrimLeft(s[eq+1:], " \t")
		var value string
		if strings.HasPrefix(s, `"`) {
			var b strings.Builder
			i, closed := 1, false
			for ; i < len(s); i++ {
				if s[i] == '\\' && i+1 < len(s) {
					i++
					b.WriteByte(s[i])
					continue
				}
				if s[i] == '"' {
					closed = true
					break
				}
				b.WriteByte(s[i])
			}
			if !closed {
				return nil, fmt.Errorf("parameter %s: unterminated quoted value", name)
			}
			value, s = b.String(), s[i+1:]
		} else {
			end := strings.IndexAny(s, ", \t")
			if end < 0 {
				end = len(s)
			}
			value, s = s[:end], s[end:]
		}
		if _, dup := out[name]; dup {
			return nil, fmt.Errorf("parameter %s given twice", name)
		}
		out[name] = value
	}
}

// credentials answers c for a request: the Authorization (or
// Proxy-Authorization) value, with qop=auth when offered, nc counting the
// uses of the nonce.
type credentials struct {
	user, password, method, uri, cnonce string
	nc                                  uint32
}

// answer computes the header value answering c.
func (cr credentials) answer(c challenge) (string, error) {
	var newHash func() hash.Hash
	switch c.algorithm {
	case "MD5":
		newHash = md5.New
	case "SHA-256":
		newHash = sha256.New
	default:
		return "", fmt.Errorf("digest algorithm %q not supported (MD5, SHA-256)", c.algorithm)
	}
	h := func(s string) string {
		x := newHash()
		x.Write([]byte(s))
		return hex.EncodeToString(x.Sum(nil))
	}
	ha1 := h(cr.user + ":" + c.realm + ":" + cr.password)
	ha2 := h(cr.method + ":" + cr.uri)
	nc := fmt.Sprintf("%08x", cr.nc)
	var resp string
	if c.qopAuth {
		resp = h(ha1 + ":" + c.nonce + ":" + nc + ":" + cr.cnonce + ":auth:" + ha2)
	} else {
		resp = h(ha1 + ":" + c.nonce + ":" + ha2)
	}
	var b strings.Builder
	fmt.Fprintf(&b, `Digest username=%s, realm=%s, nonce=%s, uri=%s, response="%s", algorithm=%s`,
		quote(cr.user), quote(c.realm), quote(c.nonce), quote(cr.uri), resp, c.algorithm)
	if c.qopAuth {
		fmt.Fprintf(&b, `, qop=auth, nc=%s, cnonce=%s`, nc, quote(cr.cnonce))
	}
	if c.opaque != "" {
		fmt.Fprintf(&b, `, opaque=%s`, quote(c.opaque))
	}
	return b.String(), nil
}

// quote writes a quoted-string, escaping " and \.
func quote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}
