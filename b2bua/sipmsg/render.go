package sipmsg

import (
	"strconv"
	"strings"
	"sync"

	"github.com/ghettovoice/gosip/sip"
)

// Render returns msg as the bytes msg.String() gives, built without fmt and
// with one growing buffer: gosip renders each header through fmt.Sprintf
// and a bytes.Buffer of its own, some 40 allocations for an INVITE, which
// profiles of the SBC under load showed as 12 % of its CPU. The headers a
// B2BUA sends on every call (Via, From, To, Contact, Call-ID, CSeq,
// Max-Forwards, Content-Length, Content-Type, Route, Record-Route, Allow,
// Supported, Require, Server, User-Agent, Accept, Expires and the generic
// ones) are rendered here; any other header, and a URI that is not a SIP URI,
// by its own String. render_test.go holds it to msg.String() byte for byte.
func Render(msg sip.Message) []byte {
	b := make([]byte, 0, 512+len(msg.Body()))
	return AppendMessage(b, msg)
}

// Wire is a message rendered into a pooled buffer (RenderWire): Bytes
// until Free, which gives the buffer back for the next message. Sending
// renders every message the SBC sends, about 1 kB each; a fresh buffer
// per message was the largest single source of allocated bytes of a call
// through the SBC (8.5 % at 200 calls/s, BENCHMARKS.md, fourth step).
type Wire struct{ b []byte }

// wireMax is the largest buffer Free keeps: a rare big message (a large
// SDP, a 64 kB stream message) does not pin its size in the pool.
const wireMax = 16 << 10

var wires = sync.Pool{New: func() any { return &Wire{b: make([]byte, 0, 2048)} }}

// RenderWire renders msg as Render does, into a buffer from a pool. The
// caller must not use Bytes after Free, nor call Free twice.
func RenderWire(msg sip.Message) *Wire {
	w := wires.Get().(*Wire)
	w.b = AppendMessage(w.b[:0], msg)
	return w
}

// Bytes is the rendered message; valid until Free.
func (w *Wire) Bytes() []byte { return w.b }

// Free gives the buffer back to the pool.
func (w *Wire) Free() {
	if cap(w.b) > wireMax {
		return
	}
	w.b = w.b[:0]
	wires.Put(w)
}

// AppendMessage appends what Render returns to b.
func AppendMessage(b []byte, msg sip.Message) []byte {
	switch m := msg.(type) {
	case sip.Request:
		b = append(b, m.Method()...)
		b = append(b, ' ')
		b = appendURI(b, m.Recipient())
		b = append(b, ' ')
		b = append(b, m.SipVersion()...)
	case sip.Response:
		b = append(b, m.SipVersion()...)
		b = append(b, ' ')
		b = strconv.AppendUint(b, uint64(m.StatusCode()), 10)
		b = append(b, ' ')
		b = append(b, m.Reason()...)
	default:
		b = append(b, msg.StartLine()...)
	}
	b = append(b, "\r\n"...)
	if hl := headersOf(msg); hl != nil {
		hl.mu.RLock()
		for _, h := range hl.hdrs {
			b = appendHeader(b, h)
			b = append(b, "\r\n"...)
		}
		hl.mu.RUnlock()
	} else {
		for _, h := range msg.Headers() {
			b = appendHeader(b, h)
			b = append(b, "\r\n"...)
		}
	}
	b = append(b, "\r\n"...)
	return append(b, msg.Body()...)
}

func appendHeader(b []byte, h sip.Header) []byte {
	switch h := h.(type) {
	case sip.ViaHeader:
		b = append(b, "Via: "...)
		for i, hop := range h {
			if i > 0 {
				b = append(b, ", "...)
			}
			b = appendViaHop(b, hop)
		}
		return b
	case *sip.ViaHeader:
		return appendHeader(b, *h)
	case *sip.FromHeader:
		if h.Address == nil {
			break
		}
		return appendNameAddr(append(b, "From: "...), h.DisplayName, h.Address, h.Params)
	case *sip.ToHeader:
		if h.Address == nil {
			break
		}
		return appendNameAddr(append(b, "To: "...), h.DisplayName, h.Address, h.Params)
	case *sip.ContactHeader:
		if h.Address == nil {
			break
		}
		b = append(b, "Contact: "...)
		if _, wild := h.Address.(*sip.WildcardUri); wild {
			b = appendDisplayName(b, h.DisplayName)
			b = append(b, '*')
			return appendParams(b, h.Params)
		}
		return appendNameAddr(b, h.DisplayName, h.Address, h.Params)
	case *sip.CallID:
		return append(append(b, "Call-ID: "...), string(*h)...)
	case *sip.CSeq:
		b = strconv.AppendUint(append(b, "CSeq: "...), uint64(h.SeqNo), 10)
		return append(append(b, ' '), h.MethodName...)
	case *sip.MaxForwards:
		return strconv.AppendUint(append(b, "Max-Forwards: "...), uint64(*h), 10)
	case *sip.ContentLength:
		return strconv.AppendUint(append(b, "Content-Length: "...), uint64(*h), 10)
	case *sip.GenericHeader:
		b = append(b, h.HeaderName...)
		return append(append(b, ": "...), h.Contents...)
	case *sip.ContentType:
		return append(append(b, "Content-Type: "...), string(*h)...)
	case *sip.Accept:
		return append(append(b, "Accept: "...), string(*h)...)
	case *sip.UserAgentHeader:
		return append(append(b, "User-Agent: "...), string(*h)...)
	case *sip.ServerHeader:
		return append(append(b, "Server: "...), string(*h)...)
	case *sip.Expires:
		return strconv.AppendUint(append(b, "Expires: "...), uint64(*h), 10)
	case *sip.SupportedHeader:
		return appendList(append(b, "Supported: "...), h.Options)
	case *sip.RequireHeader:
		return appendList(append(b, "Require: "...), h.Options)
	case sip.AllowHeader:
		b = append(b, "Allow: "...)
		for i, m := range h {
			if i > 0 {
				b = append(b, ", "...)
			}
			b = append(b, m...)
		}
		return b
	case *sip.RouteHeader:
		return appendRoutes(append(b, "Route: "...), h.Addresses)
	case *sip.RecordRouteHeader:
		return appendRoutes(append(b, "Record-Route: "...), h.Addresses)
	}
	return append(b, h.String()...)
}

// appendList is strings.Join(items, ", ") appended.
func appendList(b []byte, items []string) []byte {
	for i, it := range items {
		if i > 0 {
			b = append(b, ", "...)
		}
		b = append(b, it...)
	}
	return b
}

func appendViaHop(b []byte, hop *sip.ViaHop) []byte {
	b = append(b, hop.ProtocolName...)
	b = append(b, '/')
	b = append(b, hop.ProtocolVersion...)
	b = append(b, '/')
	b = append(b, hop.Transport...)
	b = append(b, ' ')
	b = append(b, hop.Host...)
	if hop.Port != nil {
		b = strconv.AppendUint(append(b, ':'), uint64(*hop.Port), 10)
	}
	return appendParams(b, hop.Params)
}

// appendNameAddr is To, From and Contact's value: ["name" ]<uri>[;params].
func appendNameAddr(b []byte, name sip.MaybeString, uri sip.Uri, params sip.Params) []byte {
	b = appendDisplayName(b, name)
	b = append(b, '<')
	b = appendURI(b, uri)
	b = append(b, '>')
	return appendParams(b, params)
}

func appendDisplayName(b []byte, name sip.MaybeString) []byte {
	if s, ok := name.(sip.String); ok && s.Str != "" {
		b = append(b, '"')
		b = append(b, s.Str...)
		b = append(b, `" `...)
	}
	return b
}

func appendRoutes(b []byte, uris []sip.Uri) []byte {
	for i, u := range uris {
		if i > 0 {
			b = append(b, ", "...)
		}
		b = append(b, '<')
		b = appendURI(b, u)
		b = append(b, '>')
	}
	return b
}

// appendParams appends ";" and the parameters, if there are any.
func appendParams(b []byte, p sip.Params) []byte {
	if p == nil || p.Length() == 0 {
		return b
	}
	return appendParamList(append(b, ';'), p, ';')
}

// appendParamList is p.ToString(sep) appended.
func appendParamList(b []byte, p sip.Params, sep byte) []byte {
	own, ok := p.(*Params)
	if !ok {
		return append(b, p.ToString(sep)...)
	}
	for i, kv := range own.list {
		if i > 0 {
			b = append(b, sep)
		}
		b = append(b, kv.key...)
		if kv.val == nil {
			continue
		}
		b = append(b, '=')
		v := kv.val.String()
		if own.inURI || len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' || !strings.ContainsAny(v, " \t;,\"\\") {
			b = append(b, v...)
		} else {
			b = append(b, Quote(v)...)
		}
	}
	return b
}

// URIString is u.String() (for a nil u, what fmt prints for it) in one
// allocation: gosip's String of a SIP URI goes through fmt and a
// bytes.Buffer, five allocations, and the early policy stages read three
// URIs of every request as text.
func URIString(u sip.Uri) string {
	var buf [128]byte
	return string(appendURI(buf[:0], u))
}

// appendURI is uri.String() appended; a SIP URI is rendered here.
func appendURI(b []byte, uri sip.Uri) []byte {
	u, ok := uri.(*sip.SipUri)
	if !ok || u == nil {
		if uri == nil {
			return append(b, "%!s(<nil>)"...) // what fmt's %s gives gosip
		}
		return append(b, uri.String()...)
	}
	if u.FIsEncrypted {
		b = append(b, "sips:"...)
	} else {
		b = append(b, "sip:"...)
	}
	if user, ok := u.FUser.(sip.String); ok && user.Str != "" {
		b = append(b, sip.Escape(user.Str, sip.EncodeUserPassword)...)
		if pass, ok := u.FPassword.(sip.String); ok && pass.Str != "" {
			b = append(b, ':')
			b = append(b, sip.Escape(pass.Str, sip.EncodeUserPassword)...)
		}
		b = append(b, '@')
	}
	b = append(b, sip.Escape(u.FHost, sip.EncodeHost)...)
	if u.FPort != nil {
		b = strconv.AppendUint(append(b, ':'), uint64(*u.FPort), 10)
	}
	if u.FUriParams != nil && u.FUriParams.Length() > 0 {
		b = appendParamList(append(b, ';'), u.FUriParams, ';')
	}
	if u.FHeaders != nil && u.FHeaders.Length() > 0 {
		b = appendParamList(append(b, '?'), u.FHeaders, '&')
	}
	return b
}
