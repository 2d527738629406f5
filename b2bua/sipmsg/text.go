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
	name     []byte // the header being checked, as written (aliases the message)
	known    string // its name as RFC 3261 spells it, if it is in grammars
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
	if !utf8.Valid(line) {
		return bad("Invalid UTF-8 in " + c.where())
	}
	for i := 0; i < len(value); i++ {
		b := value[i]
		if (c.inQuote || c.depth > 0) && b == '\\' && i+1 < len(value) && value[i+1] != '\r' && value[i+1] != '\n' {
			i++ // quoted-pair: the escaped byte may be any but CR and LF
			continue
		}
		if isCTL(b) && b != '\t' {
			return bad("Control character in " + c.where())
		}
		c.step(b)
	}
	return nil
}

// begin starts a new header called name.
func (c *lineChecker) begin(name []byte) {
	name = bytes.TrimSpace(name)
	g := grammarOf(name)
	*c = lineChecker{name: name, known: g.name, quoting: !g.unquoted, comments: g.comments}
}

// where names the header for a reason phrase: as RFC 3261 spells it,
// else as written when it is a short token, else "header".
func (c *lineChecker) where() string {
	switch {
	case c.known != "":
		return c.known
	case len(c.name) == 0 || len(c.name) > 40 || bytes.ContainsFunc(c.name, func(r rune) bool { return !isTokenChar(r) }):
		return "header"
	}
	return string(c.name)
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

// headerGrammar is what the grammar of a header allows besides text.
type headerGrammar struct {
	name, compact string // as RFC 3261 spells it, and its compact form
	unquoted      bool   // no quoted-string, so no quoted-pair either
	comments      bool   // comments, which may hold quoted-pairs
}

// grammars lists the RFC 3261 headers whose grammar has no quoted-string
// (in a Call-ID, DQUOTE and "\" are plain word characters), those with
// comments, and the others a reason phrase names. Any other header may
// hold quoted-strings (display names, generic parameter values).
var grammars = []headerGrammar{
	{name: "Call-ID", compact: "i", unquoted: true}, {name: "CSeq", unquoted: true},
	{name: "Content-Length", compact: "l", unquoted: true}, {name: "Max-Forwards", unquoted: true},
	{name: "Expires", unquoted: true}, {name: "Min-Expires", unquoted: true}, {name: "Date", unquoted: true},
	{name: "MIME-Version", unquoted: true}, {name: "Timestamp", unquoted: true},
	{name: "Subject", compact: "s", unquoted: true}, {name: "Organization", unquoted: true},
	{name: "Priority", unquoted: true}, {name: "Supported", compact: "k", unquoted: true},
	{name: "Require", unquoted: true}, {name: "Proxy-Require", unquoted: true}, {name: "Unsupported", unquoted: true},
	{name: "Allow", unquoted: true}, {name: "Content-Encoding", compact: "e", unquoted: true},
	{name: "Content-Language", unquoted: true}, {name: "In-Reply-To", unquoted: true},
	{name: "Server", comments: true}, {name: "User-Agent", comments: true},
	{name: "Via", compact: "v"}, {name: "From", compact: "f"}, {name: "To", compact: "t"},
	{name: "Contact", compact: "m"}, {name: "Content-Type", compact: "c"},
}

// grammarOf returns the entry of grammars for name; the zero value (may
// hold quoted-strings) for any other header.
func grammarOf(name []byte) headerGrammar {
	for _, g := range grammars {
		if equalFold(name, g.name) || g.compact != "" && equalFold(name, g.compact) {
			return g
		}
	}
	return headerGrammar{}
}

// equalFold is bytes.EqualFold for an ASCII s, without converting it.
func equalFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range b {
		x, y := b[i], s[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
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
