package sipmsg

import (
	"errors"
	"net/netip"
	"strconv"
	"strings"

	"github.com/ghettovoice/gosip/sip"
)

// URIs as RFC 3261 section 19.1 and 25 write them. A sip: or sips: URI
// becomes gosip's *sip.SipUri (user and password unescaped, as gosip keeps
// them; parameters and headers raw in a *Params); any other scheme (tel:,
// urn:, http:, an unknown one) is an *AbsoluteURI kept as written, which the
// SBC routes (tel:) or refuses with 416 (RFC 3261 8.2.2.1) instead of
// calling the message unparsable.

var (
	errURI  = errors.New("bad URI")
	errHost = errors.New("bad host")
	errPort = errors.New("bad port")
)

// parseURI reads one URI with nothing around it.
func parseURI(bx *arena, s string) (sip.Uri, error) {
	colon := strings.IndexByte(s, ':')
	if colon <= 0 || !isScheme(s[:colon]) {
		return nil, errURI
	}
	scheme, rest := s[:colon], s[colon+1:]
	switch {
	case strings.EqualFold(scheme, "sip"):
		return parseSIPURI(bx, rest, false)
	case strings.EqualFold(scheme, "sips"):
		return parseSIPURI(bx, rest, true)
	}
	if rest == "" || strings.ContainsAny(rest, " \t<>\"") {
		return nil, errURI
	}
	return &AbsoluteURI{Scheme: scheme, Opaque: rest}, nil
}

// isScheme: ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ).
func isScheme(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
		case i > 0 && (c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.'):
		default:
			return false
		}
	}
	return s != ""
}

// uriBlock is a parsed SIP URI with what its pointers point to, in one
// allocation instead of four: a message carries four to eight URIs.
type uriBlock struct {
	u       sip.SipUri
	port    sip.Port
	params  Params
	headers Params
}

// parseSIPURI reads what follows "sip:" or "sips:".
func parseSIPURI(bx *arena, s string, secure bool) (*sip.SipUri, error) {
	if strings.ContainsAny(s, " \t<>\"") {
		return nil, errURI
	}
	blk := bx.uriBlock()
	blk.u.FIsEncrypted = secure
	u := &blk.u
	// No '@' may stand unescaped in a user, a password, a parameter or
	// a header: the first one ends the userinfo.
	if at := strings.IndexByte(s, '@'); at >= 0 {
		if err := parseUserinfo(u, s[:at]); err != nil {
			return nil, err
		}
		s = s[at+1:]
	}
	host, port, hasPort, rest, err := parseHostPort(s)
	if err != nil {
		return nil, err
	}
	u.FHost = host
	if hasPort {
		blk.port = port
		u.FPort = &blk.port
	}
	params, headers, _ := strings.Cut(rest, "?")
	if err := parseURIParams(bx, &blk.params, params, ';'); err != nil {
		return nil, err
	}
	if err := parseURIParams(bx, &blk.headers, headers, '&'); err != nil {
		return nil, err
	}
	u.FUriParams, u.FHeaders = &blk.params, &blk.headers
	return u, nil
}

func parseUserinfo(u *sip.SipUri, s string) error {
	user, pass, hasPass := strings.Cut(s, ":")
	if user == "" {
		return errURI
	}
	name, err := sip.Unescape(user, sip.EncodeUserPassword)
	if err != nil {
		return errURI
	}
	u.FUser = sip.String{Str: name}
	if hasPass {
		p, err := sip.Unescape(pass, sip.EncodeUserPassword)
		if err != nil {
			return errURI
		}
		u.FPassword = sip.String{Str: p}
	}
	return nil
}

// parseHostPort reads host [":" port] at the start of s (a URI's or a
// Via's) and returns what follows. An IPv6 reference keeps its brackets:
// "[2001:db8::10]" (RFC 5118 4.3: a port is only ever after the "]").
// hasPort is false when s names no port.
func parseHostPort(s string) (host string, port sip.Port, hasPort bool, rest string, err error) {
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return "", 0, false, "", errHost
		}
		addr, perr := netip.ParseAddr(s[1:end])
		if perr != nil || !addr.Is6() || addr.Zone() != "" {
			return "", 0, false, "", errHost
		}
		host, rest = s[:end+1], s[end+1:]
	} else {
		end := strings.IndexAny(s, ":;?")
		if end < 0 {
			end = len(s)
		}
		host, rest = s[:end], s[end:]
		if !isHostname(host) {
			return "", 0, false, "", errHost
		}
	}
	if !strings.HasPrefix(rest, ":") {
		return host, 0, false, rest, nil
	}
	rest = rest[1:]
	end := strings.IndexAny(rest, ";?")
	if end < 0 {
		end = len(rest)
	}
	n, perr := strconv.ParseUint(rest[:end], 10, 16)
	if perr != nil {
		return "", 0, false, "", errPort
	}
	return host, sip.Port(n), true, rest[end:], nil
}

// isHostname accepts a hostname or an IPv4 address: letters, digits, '-',
// '.' and, as deployed DNS names carry them, '_'.
func isHostname(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_') {
			return false
		}
	}
	return true
}

// parseURIParams reads ";name[=value]" parameters (sep ';') or URI
// headers (sep '&', without the leading '?'), values raw, into p.
func parseURIParams(bx *arena, p *Params, s string, sep byte) error {
	p.inURI = true
	if n := strings.Count(s, string(sep)); n > 0 {
		if sep == '&' {
			n++ // "a&b" is two, ";a;b" two
		}
		p.list = bx.list(n)
	}
	if sep == ';' {
		if s == "" {
			return nil
		}
		if s[0] != ';' {
			return errURI
		}
		s = s[1:]
	}
	for s != "" {
		var item string
		item, s, _ = strings.Cut(s, string(sep))
		name, value, hasValue := strings.Cut(item, "=")
		if name == "" {
			if item == "" && sep == ';' {
				continue // ";;" (RFC 4475 3.1.1.2's URI): an empty parameter
			}
			return errURI
		}
		if hasValue {
			p.Add(name, sip.String{Str: value})
		} else {
			p.Add(name, nil)
		}
	}
	return nil
}

// AbsoluteURI is a URI of a scheme other than sip and sips, as written
// (RFC 3261 absoluteURI). For tel: (RFC 3966) User is the number and
// UriParams its parameters; other schemes have neither. Host is empty.
type AbsoluteURI struct {
	Scheme string // as written, e.g. "tel"
	Opaque string // everything after the first ':'
}

var _ sip.Uri = (*AbsoluteURI)(nil)

// IsTel reports whether u is a tel: URI.
func (u *AbsoluteURI) IsTel() bool { return strings.EqualFold(u.Scheme, "tel") }

func (u *AbsoluteURI) String() string { return u.Scheme + ":" + u.Opaque }

// Equals compares scheme case-insensitively and the rest exactly.
func (u *AbsoluteURI) Equals(other interface{}) bool {
	o, ok := other.(*AbsoluteURI)
	return ok && strings.EqualFold(u.Scheme, o.Scheme) && u.Opaque == o.Opaque
}

func (u *AbsoluteURI) Clone() sip.Uri { c := *u; return &c }

func (u *AbsoluteURI) IsEncrypted() bool   { return false }
func (u *AbsoluteURI) SetEncrypted(bool)   {}
func (u *AbsoluteURI) IsWildcard() bool    { return false }
func (u *AbsoluteURI) Host() string        { return "" }
func (u *AbsoluteURI) SetHost(string)      {}
func (u *AbsoluteURI) Port() *sip.Port     { return nil }
func (u *AbsoluteURI) SetPort(*sip.Port)   {}
func (u *AbsoluteURI) Headers() sip.Params { return NewParams() }
func (u *AbsoluteURI) SetHeaders(sip.Params) {
}
func (u *AbsoluteURI) Password() sip.MaybeString   { return nil }
func (u *AbsoluteURI) SetPassword(sip.MaybeString) {}

// User is a tel: URI's number (visual separators kept), nil otherwise.
func (u *AbsoluteURI) User() sip.MaybeString {
	if !u.IsTel() {
		return nil
	}
	number, _, _ := strings.Cut(u.Opaque, ";")
	return sip.String{Str: number}
}

// SetUser replaces a tel: URI's number.
func (u *AbsoluteURI) SetUser(user sip.MaybeString) {
	if !u.IsTel() || user == nil {
		return
	}
	_, params, found := strings.Cut(u.Opaque, ";")
	u.Opaque = user.String()
	if found {
		u.Opaque += ";" + params
	}
}

// UriParams are a tel: URI's parameters (a copy), empty otherwise.
func (u *AbsoluteURI) UriParams() sip.Params {
	if !u.IsTel() {
		return NewParams()
	}
	_, params, found := strings.Cut(u.Opaque, ";")
	if !found {
		return NewParams()
	}
	p := NewParams()
	if err := parseURIParams(nil, p, ";"+params, ';'); err != nil {
		return NewParams()
	}
	return p
}

// SetUriParams replaces a tel: URI's parameters.
func (u *AbsoluteURI) SetUriParams(p sip.Params) {
	if !u.IsTel() {
		return
	}
	number, _, _ := strings.Cut(u.Opaque, ";")
	u.Opaque = number
	if p != nil && p.Length() > 0 {
		u.Opaque += ";" + p.ToString(';')
	}
}

// OwnSIPURI returns a copy of u whose strings are its own, all in one
// allocation, with its port and parameter lists in another (as the
// parser lays a URI out): a URI taken from a message points into the
// message's text, which a copy kept longer would keep whole. ok is false
// when u's parameters are not this package's (Params).
func OwnSIPURI(u *sip.SipUri) (own *sip.SipUri, ok bool) {
	up, ok1 := u.FUriParams.(*Params)
	hp, ok2 := u.FHeaders.(*Params)
	if (u.FUriParams != nil && !ok1) || (u.FHeaders != nil && !ok2) {
		return nil, false
	}
	var user, pass string
	if u.FUser != nil {
		user = u.FUser.String()
	}
	if u.FPassword != nil {
		pass = u.FPassword.String()
	}
	var b strings.Builder
	b.Grow(len(u.FHost) + len(user) + len(pass) + up.textLen() + hp.textLen())
	b.WriteString(u.FHost)
	b.WriteString(user)
	b.WriteString(pass)
	up.writeText(&b)
	hp.writeText(&b)
	t := ownText{all: b.String()}
	blk := &uriBlock{u: sip.SipUri{FIsEncrypted: u.FIsEncrypted, FHost: t.take(len(u.FHost))}}
	if u.FUser != nil {
		blk.u.FUser = sip.String{Str: t.take(len(user))}
	}
	if u.FPassword != nil {
		blk.u.FPassword = sip.String{Str: t.take(len(pass))}
	}
	if u.FPort != nil {
		blk.port = *u.FPort
		blk.u.FPort = &blk.port
	}
	if up != nil {
		blk.params = up.ownOn(&t)
		blk.u.FUriParams = &blk.params
	}
	if hp != nil {
		blk.headers = hp.ownOn(&t)
		blk.u.FHeaders = &blk.headers
	}
	return &blk.u, true
}

// ownText hands out consecutive parts of all.
type ownText struct {
	all string
	off int
}

func (t *ownText) take(n int) string {
	t.off += n
	return t.all[t.off-n : t.off]
}

// textLen is the length of p's names and values; 0 for nil.
func (p *Params) textLen() int {
	if p == nil {
		return 0
	}
	n := 0
	for _, x := range p.list {
		n += len(x.key)
		if x.val != nil {
			n += len(x.val.String())
		}
	}
	return n
}

// writeText writes p's names and values, in order, as textLen counts them.
func (p *Params) writeText(b *strings.Builder) {
	if p == nil {
		return
	}
	for _, x := range p.list {
		b.WriteString(x.key)
		if x.val != nil {
			b.WriteString(x.val.String())
		}
	}
}

// ownOn is p with its names and values taken from t, in writeText's order.
func (p *Params) ownOn(t *ownText) Params {
	out := Params{inURI: p.inURI}
	if len(p.list) > 0 {
		out.list = make([]param, len(p.list))
	}
	for i, x := range p.list {
		out.list[i].key = t.take(len(x.key))
		if x.val != nil {
			out.list[i].val = sip.String{Str: t.take(len(x.val.String()))}
		}
	}
	return out
}
