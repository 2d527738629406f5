package sipmsg

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/ghettovoice/gosip/sip"
	"github.com/ghettovoice/gosip/sip/parser"
)

// CallID returns the Call-ID value, or "".
func CallID(m sip.Message) string {
	if id, ok := m.CallID(); ok {
		return string(*id)
	}
	return ""
}

// FromTag returns the From tag, or "".
func FromTag(m sip.Message) string {
	if f, ok := m.From(); ok {
		return tag(f.Params)
	}
	return ""
}

// ToTag returns the To tag, or "".
func ToTag(m sip.Message) string {
	if t, ok := m.To(); ok {
		return tag(t.Params)
	}
	return ""
}

func tag(p sip.Params) string {
	if p == nil {
		return ""
	}
	if v, ok := p.Get("tag"); ok && v != nil {
		return v.String()
	}
	return ""
}

// RFC3261Branch reports whether m's top Via has a branch of RFC 3261
// (the magic cookie "z9hG4bK" and more).
func RFC3261Branch(m sip.Message) bool {
	hop, ok := m.ViaHop()
	if !ok || hop.Params == nil {
		return false
	}
	b, ok := hop.Params.Get("branch")
	return ok && b != nil && IsRFC3261Branch(b.String())
}

// IsRFC3261Branch reports whether b was made by an RFC 3261 element: the
// magic cookie and more, the only branches unique enough to key a
// transaction on.
func IsRFC3261Branch(b string) bool {
	return len(b) > len(sip.RFC3261BranchMagicCookie) && strings.HasPrefix(b, sip.RFC3261BranchMagicCookie)
}

// CSeq returns the CSeq number and method.
func CSeq(m sip.Message) (uint32, sip.RequestMethod) {
	if c, ok := m.CSeq(); ok {
		return c.SeqNo, c.MethodName
	}
	return 0, ""
}

// Header returns the value of the first header called name, or "".
func Header(m sip.Message, name string) string {
	if hs := m.GetHeaders(name); len(hs) > 0 {
		return hs[0].Value()
	}
	return ""
}

// Values returns the values of every header field named name, in order.
func Values(m sip.Message, name string) []string {
	hs := m.GetHeaders(name)
	out := make([]string, 0, len(hs))
	for _, h := range hs {
		out = append(out, h.Value())
	}
	return out
}

// HeaderInt returns the leading integer of the first header called name
// (e.g. "1800;refresher=uac" gives 1800), and whether there was one.
// An absent header costs no allocation (Atoi's error for "" was four a
// call: Session-Expires is asked of most requests and responses that
// have none).
func HeaderInt(m sip.Message, name string) (int, bool) {
	v := Header(m, name)
	if i := strings.IndexByte(v, ';'); i >= 0 {
		v = v[:i]
	}
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	n, err := strconv.Atoi(v)
	return n, err == nil
}

// HasOption reports whether a Supported or Require style header lists opt.
func HasOption(m sip.Message, header, opt string) bool {
	for _, h := range m.GetHeaders(header) {
		for _, o := range strings.Split(h.Value(), ",") {
			if strings.EqualFold(strings.TrimSpace(o), opt) {
				return true
			}
		}
	}
	return false
}

// ContactURI returns the URI of the first Contact, or nil.
func ContactURI(m sip.Message) sip.Uri {
	if c, ok := m.Contact(); ok && c.Address != nil {
		return c.Address
	}
	return nil
}

// ParseURI parses a sip: or sips: URI. gosip's parser slices its input
// before checking the length and can panic on short or odd input, so the
// scheme is checked first and a panic becomes an error.
func ParseURI(s string) (u sip.Uri, err error) {
	if l := strings.ToLower(s); !strings.HasPrefix(l, "sip:") && !strings.HasPrefix(l, "sips:") {
		return nil, fmt.Errorf("parse uri %q: not a sip: or sips: URI", s)
	}
	defer func() {
		if r := recover(); r != nil {
			u, err = nil, fmt.Errorf("parse uri %q: %v", s, r)
		}
	}()
	su, err := parser.ParseSipUri(s)
	if err != nil {
		return nil, err
	}
	return &su, nil
}

// SetTag sets the tag parameter of a From or To header, replacing any.
func SetTag(h sip.Header, tag string) {
	switch v := h.(type) {
	case *sip.ToHeader:
		v.Params = withTag(v.Params, tag)
	case *sip.FromHeader:
		v.Params = withTag(v.Params, tag)
	}
}

// tagBlock is a parameter list with room for a tag: what SetTag adds to
// a header without parameters (that of a request the SBC builds, or of its
// response) in one allocation, and one for the tag's value.
type tagBlock struct {
	p  Params
	in [1]param
}

// withTag returns p with tag set, p itself unless p is nil.
func withTag(p sip.Params, tag string) sip.Params {
	if p == nil {
		blk := &tagBlock{}
		blk.in[0] = param{key: "tag", val: sip.String{Str: tag}}
		blk.p.list = blk.in[:1:1]
		return &blk.p
	}
	if own, ok := p.(*Params); ok && own != nil && cap(own.list) == 0 {
		room := &[1]param{{key: "tag", val: sip.String{Str: tag}}}
		own.list = room[:1:1]
		return own
	}
	return p.Add("tag", sip.String{Str: tag})
}

// StampVia adds received=addr (when received) and rport=port (when
// rport) to a Via hop's parameters p, replacing any there, with the two
// values' text in one allocation (gosip's strings would be one each).
func StampVia(p sip.Params, addr netip.Addr, received bool, port uint16, rport bool) {
	if !received && !rport {
		return
	}
	var buf [64]byte
	b := buf[:0]
	if received {
		b = addr.AppendTo(b)
	}
	k := len(b)
	if rport {
		b = strconv.AppendUint(b, uint64(port), 10)
	}
	text := string(b)
	if received {
		p.Add("received", sip.String{Str: text[:k]})
	}
	if rport {
		p.Add("rport", sip.String{Str: text[k:]})
	}
}

// NewToken returns a random token of 2n hex characters from crypto/rand,
// for Call-IDs, tags, branches and binding tokens (n random bytes: 12 give
// 96 bits, unguessable to an off-path attacker). Safe for concurrent use;
// one allocation for n up to 32.
func NewToken(n int) string { return PrefixedToken("", n) }

// PrefixedToken is prefix + NewToken(n) in one allocation (a branch: the
// magic cookie and a token) for a prefix and n up to 32 bytes each.
func PrefixedToken(prefix string, n int) string {
	var small [32]byte
	var b []byte
	if n <= len(small) {
		b = small[:n]
	} else {
		b = make([]byte, n)
	}
	_, _ = rand.Read(b) // never fails since Go 1.24: a broken system RNG crashes instead
	var out [96]byte
	if len(prefix)+2*n <= len(out) {
		k := copy(out[:], prefix)
		hex.Encode(out[k:k+2*n], b)
		return string(out[:k+2*n])
	}
	return prefix + hex.EncodeToString(b)
}

var msgSeq atomic.Uint64

// MessageID is a cheap unique id for a message the SBC builds: gosip
// otherwise draws a UUID from the system's random source for every
// message, and only uses it in its own logs.
func MessageID() sip.MessageID {
	return sip.MessageID("m" + strconv.FormatUint(msgSeq.Add(1), 36))
}

// NewRequest builds a request with the given headers and body; it sets
// Content-Length (and Content-Type when contentType is not empty).
func NewRequest(method sip.RequestMethod, ruri sip.Uri, hdrs []sip.Header, contentType, body string) sip.Request {
	req := newRequest(method, ruri, "SIP/2.0", hdrs, "")
	SetBody(req, contentType, body)
	return req
}

// NewResponse builds a response with the given headers and body.
func NewResponse(code int, reason string, hdrs []sip.Header, contentType, body string) sip.Response {
	res := newResponse("SIP/2.0", sip.StatusCode(code), reason, hdrs, "")
	SetBody(res, contentType, body)
	return res
}

// SetBody replaces the body, Content-Type and Content-Length.
func SetBody(m sip.Message, contentType, body string) {
	m.RemoveHeader("Content-Type")
	m.RemoveHeader("Content-Length")
	if body == "" || contentType == "" {
		m.SetBody(body, true)
		return
	}
	// Both headers in one allocation; Content-Length after
	// Content-Type, as SetBody(body, true) would add it.
	blk := &bodyHeaders{ct: sip.ContentType(contentType), cl: sip.ContentLength(len(body))}
	m.AppendHeader(&blk.ct)
	m.SetBody(body, false)
	m.AppendHeader(&blk.cl)
}

// bodyHeaders are the Content-Type and Content-Length of a body.
type bodyHeaders struct {
	ct sip.ContentType
	cl sip.ContentLength
}

// Generic returns a header with a raw value.
func Generic(name, value string) sip.Header {
	return &sip.GenericHeader{HeaderName: name, Contents: value}
}
