package sipmsg

import (
	"bytes"
	"strings"
	"unicode/utf8"
)

// RFC 3261 section 25 lets no control character (CTL: %x00-1F and %x7F)
// into a start line or a header field except HTAB, which is white space
// (LWS), and except as the escaped character of a quoted-pair ("\" and any
// byte but CR and LF) inside a quoted-string, or inside a comment of the
// two headers whose grammar has comments (Server, User-Agent). Text beyond
// ASCII must be UTF-8 (UTF8-NONASCII). The message body is not text of
// this grammar and is not checked here.
//
// The check runs on the raw lines before gosip sees them: gosip copies a
// Call-ID or a display name byte for byte, so a NUL sent in a header
// would otherwise travel to dialogs, logs and call detail records (and
// PostgreSQL refuses text holding NUL).

// lineChecker checks the lines of a header section in order, carrying the
// quoting state of a header across its continuation lines (a quoted-string
// may contain folded white space).
type lineChecker struct {
	name     string // the header being checked, as named in reasons
	quoting  bool   // its grammar has quoted-strings
	comments bool   // its grammar has comments
	inQuote  bool
	inAngle  bool // inside <...>: an addr-spec, which has no quoted-string
	depth    int  // comment nesting
}

// startLine checks the request or status line: no CTL but HTAB (the
// reason phrase may hold one), UTF-8 only.
func (c *lineChecker) startLine(line []byte) *Error {
	if !utf8.Valid(line) {
		return bad("Invalid UTF-8 in start line")
	}
	for _, b := range line {
		if isCTL(b) && b != '\t' {
			return bad("Control character in start line")
		}
	}
	return nil
}

// header checks one header line; folded tells a continuation line.
func (c *lineChecker) header(line []byte, folded bool) *Error {
	value := line
	if !folded {
		name, rest, _ := bytes.Cut(line, []byte(":")) // frame checked the colon
		c.begin(name)
		for _, b := range name {
			if isCTL(b) && b != '\t' {
				return bad("Control character in header name")
			}
		}
		value = rest
	}
	if c.name == "" {
		c.name = "header" // a continuation line before any header
	}
	if !utf8.Valid(value) {
		return bad("Invalid UTF-8 in " + c.name)
	}
	for i := 0; i < len(value); i++ {
		b := value[i]
		if (c.inQuote || c.depth > 0) && b == '\\' && i+1 < len(value) && value[i+1] != '\r' && value[i+1] != '\n' {
			i++ // quoted-pair: the escaped byte may be any but CR and LF
			continue
		}
		if isCTL(b) && b != '\t' {
			return bad("Control character in " + c.name)
		}
		c.step(b)
	}
	return nil
}

// begin starts a new header called name.
func (c *lineChecker) begin(name []byte) {
	canon := canonicalName(string(bytes.TrimSpace(name)))
	*c = lineChecker{name: canon, quoting: !unquoted[canon], comments: commented[canon]}
}

// step moves the quoting state past one byte that is not part of a
// quoted-pair.
func (c *lineChecker) step(b byte) {
	switch {
	case c.inQuote:
		c.inQuote = b != '"'
	case c.depth > 0:
		switch b {
		case '(':
			c.depth++
		case ')':
			c.depth--
		}
	case c.inAngle:
		c.inAngle = b != '>'
	case b == '"' && c.quoting:
		c.inQuote = true
	case b == '(' && c.comments:
		c.depth = 1
	case b == '<':
		c.inAngle = true
	}
}

// unquoted lists the RFC 3261 headers whose grammar has no quoted-string,
// so no quoted-pair either. In a Call-ID, DQUOTE and "\" are plain word
// characters.
var unquoted = map[string]bool{
	"Call-ID": true, "CSeq": true, "Content-Length": true, "Max-Forwards": true, "Expires": true,
	"Min-Expires": true, "Date": true, "MIME-Version": true, "Timestamp": true, "Subject": true,
	"Organization": true, "Priority": true, "Supported": true, "Require": true, "Proxy-Require": true,
	"Unsupported": true, "Allow": true, "Content-Encoding": true, "Content-Language": true, "In-Reply-To": true,
}

// commented lists the RFC 3261 headers whose grammar has comments.
var commented = map[string]bool{"Server": true, "User-Agent": true}

// compact maps the compact forms of RFC 3261 (7.3.3) that matter here to
// their names.
var compact = map[string]string{
	"m": "Contact", "l": "Content-Length", "s": "Subject", "k": "Supported", "e": "Content-Encoding",
	"c": "Content-Type",
}

// canonicalName spells a header name as RFC 3261 does for the headers
// named above and in canonical (compact forms expanded), and returns any other name as written
// when it is a short token, "header" otherwise: the name goes into a
// reason phrase.
func canonicalName(name string) string {
	if c := canonical(name); c != "" { // Via, From, To, Call-ID, CSeq
		return c
	}
	if c, ok := compact[strings.ToLower(name)]; ok {
		return c
	}
	for _, known := range []map[string]bool{unquoted, commented} {
		for h := range known {
			if strings.EqualFold(name, h) {
				return h
			}
		}
	}
	if name == "" || len(name) > 40 || strings.IndexFunc(name, func(r rune) bool { return !isTokenChar(r) }) >= 0 {
		return "header"
	}
	return name
}

// isTokenChar reports whether r may appear in an RFC 3261 token.
func isTokenChar(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-.!%*_+`'~", r)
}

func isCTL(b byte) bool { return b < 0x20 || b == 0x7f }

// Printable reports whether s is UTF-8 text without control characters
// other than HTAB: what Parse guarantees of the Call-ID and of the From
// and To URIs of a message it returns (the fields a call detail record
// keeps).
func Printable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if isCTL(s[i]) && s[i] != '\t' {
			return false
		}
	}
	return true
}
