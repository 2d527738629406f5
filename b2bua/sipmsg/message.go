package sipmsg

import (
	"strconv"
	"strings"

	"github.com/ghettovoice/gosip/log"
	"github.com/ghettovoice/gosip/sip"
)

// Request and Response are the SBC's own implementations of gosip's
// sip.Request and sip.Response: every message the SBC parses or builds is
// one of these, and the rest of the code sees only gosip's interfaces.
//
// Why not gosip's: its message keeps its headers in a map of slices plus
// an order list (a map and its growth per message, a slice per header
// name, a lower-cased copy of the name per header added), and copies a
// logrus field map into every message it creates. In the allocation
// profile of a call through the B2BUA core (BenchmarkCall) that container
// was 37 % of the bytes allocated; under 800 calls/s allocation and the
// garbage collector it drives were a third of the SBC's CPU. Here the
// headers are two slices in wire order (a message has a dozen names: a
// scan is cheaper than a hash), known names are lower-cased without
// allocating, and log fields exist only when gosip's own code asks. The
// behaviour of every method is gosip's (message_test.go holds them side
// by side).

// base is what requests and responses share besides the headers.
type base struct {
	headerList
	id      uint64 // MessageID renders it on demand
	version string
	body    string
	tp      string
	src     string
	dest    string
	fields  log.Fields // only when gosip's WithFields set some
}

func nextID() uint64 { return msgSeq.Add(1) }

// init gives a new message its id, version, headers and body.
func (m *base) init(version string, hdrs []sip.Header, body string) {
	m.id, m.version, m.body = nextID(), version, body
	for _, h := range hdrs {
		m.AppendHeader(h)
	}
}

// copyFrom takes o's transport, addresses and log fields, for a clone.
func (m *base) copyFrom(o *base) {
	o.mu.RLock()
	defer o.mu.RUnlock()
	m.tp, m.src, m.dest = o.tp, o.src, o.dest
	if o.fields != nil {
		m.fields = o.fields.WithFields(nil)
	}
}

// MessageID returns the message's id ("m" and a number), rendered each
// time it is asked for: only gosip's logs use it, and a field keeping it
// made every message 32 bytes larger (a size class up).
func (m *base) MessageID() sip.MessageID {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return sip.MessageID("m" + strconv.FormatUint(m.id, 36))
}

func (m *base) SipVersion() string {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.version
}

func (m *base) SetSipVersion(v string) {
	m.mu.Lock()
	m.version = v
	m.mu.Unlock()
}

func (m *base) Body() string {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.body
}

// SetBody sets the body and, if asked, Content-Length to its length.
func (m *base) SetBody(body string, setContentLength bool) {
	m.mu.Lock()
	m.body = body
	m.mu.Unlock()
	if !setContentLength {
		return
	}
	cl := sip.ContentLength(len(body))
	if len(m.GetHeaders("content-length")) == 0 {
		m.AppendHeader(&cl)
	} else {
		m.ReplaceHeaders("content-length", []sip.Header{&cl})
	}
}

func (m *base) SetTransport(tp string) {
	m.mu.Lock()
	m.tp = strings.ToUpper(tp)
	m.mu.Unlock()
}

func (m *base) SetSource(src string) {
	m.mu.Lock()
	m.src = src
	m.mu.Unlock()
}

func (m *base) SetDestination(dest string) {
	m.mu.Lock()
	m.dest = dest
	m.mu.Unlock()
}

func (m *base) stored() (tp, src, dest string) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.tp, m.src, m.dest
}

func (m *base) withFields(f log.Fields) {
	m.mu.Lock()
	m.fields = m.fields.WithFields(f)
	m.mu.Unlock()
}

func (m *base) logFields(tp, src, dest string) log.Fields {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.fields.WithFields(log.Fields{"transport": tp, "source": src, "destination": dest})
}

// viaAddr is host:port of the top Via with received and rport applied
// (a request's Source, a response's Destination, as gosip computes them).
func (m *base) viaAddr(tp string) string {
	hop, ok := m.ViaHop()
	if !ok {
		return ""
	}
	host := hop.Host
	port := sip.DefaultPort(tp)
	if hop.Port != nil {
		port = *hop.Port
	}
	if hop.Params != nil {
		if r, ok := hop.Params.Get("received"); ok && r.String() != "" {
			host = r.String()
		}
		if rp, ok := hop.Params.Get("rport"); ok && rp != nil && rp.String() != "" {
			if p, err := strconv.Atoi(rp.String()); err == nil {
				port = sip.Port(uint16(p))
			}
		}
	}
	return host + ":" + strconv.Itoa(int(port))
}

// Request is a SIP request; see the package's Request and Response above.
type Request struct {
	base
	method    sip.RequestMethod
	recipient sip.Uri
}

var _ sip.Request = (*Request)(nil)

// newRequest returns an empty request with the start line's parts.
func newRequest(method sip.RequestMethod, ruri sip.Uri, version string, hdrs []sip.Header, body string) *Request {
	r := &Request{method: method, recipient: ruri}
	r.init(version, hdrs, body)
	return r
}

func (r *Request) Method() sip.RequestMethod {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.method
}

func (r *Request) SetMethod(m sip.RequestMethod) {
	r.mu.Lock()
	r.method = m
	r.mu.Unlock()
}

func (r *Request) Recipient() sip.Uri {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.recipient
}

func (r *Request) SetRecipient(u sip.Uri) {
	r.mu.Lock()
	r.recipient = u
	r.mu.Unlock()
}

func (r *Request) IsInvite() bool { return r.Method() == sip.INVITE }
func (r *Request) IsAck() bool    { return r.Method() == sip.ACK }
func (r *Request) IsCancel() bool { return r.Method() == sip.CANCEL }

func (r *Request) StartLine() string {
	return string(r.Method()) + " " + r.Recipient().String() + " " + r.SipVersion()
}

func (r *Request) String() string { return string(Render(r)) }

func (r *Request) Short() string {
	seq := ""
	if cseq, ok := r.CSeq(); ok {
		seq = " " + strconv.FormatUint(uint64(cseq.SeqNo), 10)
	}
	return "sip.Request<" + string(r.Method()) + " " + r.Recipient().String() + seq + ">"
}

// Clone returns a deep copy with a new id.
func (r *Request) Clone() sip.Message { return r.clone(0) }

func (r *Request) clone(id uint64) *Request {
	c := newRequest(r.Method(), r.Recipient().Clone(), r.SipVersion(), r.cloneHeaders(), r.Body())
	if id != 0 {
		c.id = id
	}
	c.copyFrom(&r.base)
	return c
}

// Transport is the transport set on the request, or else the one its top
// Via, first Route or Request-URI implies (as gosip's).
func (r *Request) Transport() string {
	if tp, _, _ := r.stored(); tp != "" {
		return tp
	}
	tp := sip.DefaultProtocol
	if hop, ok := r.ViaHop(); ok && hop.Transport != "" {
		tp = hop.Transport
	}
	uri := r.Recipient()
	if rt, ok := r.first(codeRoute).(*sip.RouteHeader); ok && len(rt.Addresses) > 0 {
		uri = rt.Addresses[0]
	}
	if uri != nil {
		if ps := uri.UriParams(); ps != nil {
			if v, ok := ps.Get("transport"); ok && v != nil && !v.Equals("") {
				tp = strings.ToUpper(v.String())
			}
		}
		if uri.IsEncrypted() {
			switch tp {
			case "TCP":
				tp = "TLS"
			case "WS":
				tp = "WSS"
			}
		}
	}
	if tp == "UDP" && len(Render(r)) > int(sip.MTU)-200 {
		tp = "TCP"
	}
	return tp
}

func (r *Request) Source() string {
	if _, src, _ := r.stored(); src != "" {
		return src
	}
	return r.viaAddr(r.Transport())
}

func (r *Request) Destination() string {
	if _, _, dest := r.stored(); dest != "" {
		return dest
	}
	var uri *sip.SipUri
	if rt, ok := r.first(codeRoute).(*sip.RouteHeader); ok && len(rt.Addresses) > 0 {
		uri, _ = rt.Addresses[0].(*sip.SipUri)
	}
	if uri == nil {
		u, ok := r.Recipient().(*sip.SipUri)
		if !ok {
			return ""
		}
		uri = u
	}
	port := sip.DefaultPort(r.Transport())
	if uri.FPort != nil {
		port = *uri.FPort
	}
	return uri.FHost + ":" + strconv.Itoa(int(port))
}

func (r *Request) Fields() log.Fields {
	return r.logFields(r.Transport(), r.Source(), r.Destination())
}

func (r *Request) WithFields(f log.Fields) sip.Message {
	r.withFields(f)
	return r
}

// Response is a SIP response; see Request.
type Response struct {
	base
	status sip.StatusCode
	reason string
	// previous is SetPrevious's list, behind a pointer: gosip's
	// redirect handling alone sets one, and a slice here made every
	// response a size class larger (512 bytes, now 480).
	previous *[]sip.Response
}

var _ sip.Response = (*Response)(nil)

func newResponse(version string, code sip.StatusCode, reason string, hdrs []sip.Header, body string) *Response {
	r := &Response{status: code, reason: reason}
	r.init(version, hdrs, body)
	return r
}

func (r *Response) StatusCode() sip.StatusCode {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.status
}

func (r *Response) SetStatusCode(c sip.StatusCode) {
	r.mu.Lock()
	r.status = c
	r.mu.Unlock()
}

func (r *Response) Reason() string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.reason
}

func (r *Response) SetReason(s string) {
	r.mu.Lock()
	r.reason = s
	r.mu.Unlock()
}

func (r *Response) Previous() []sip.Response {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.previous == nil {
		return nil
	}
	return *r.previous
}

func (r *Response) SetPrevious(rs []sip.Response) {
	r.mu.Lock()
	r.previous = nil
	if rs != nil {
		r.previous = &rs
	}
	r.mu.Unlock()
}

func (r *Response) IsProvisional() bool { return r.StatusCode() < 200 }
func (r *Response) IsSuccess() bool     { c := r.StatusCode(); return c >= 200 && c < 300 }
func (r *Response) IsRedirection() bool { c := r.StatusCode(); return c >= 300 && c < 400 }
func (r *Response) IsClientError() bool { c := r.StatusCode(); return c >= 400 && c < 500 }
func (r *Response) IsServerError() bool { c := r.StatusCode(); return c >= 500 && c < 600 }
func (r *Response) IsGlobalError() bool { return r.StatusCode() >= 600 }

func (r *Response) IsAck() bool {
	cseq, ok := r.CSeq()
	return ok && cseq.MethodName == sip.ACK
}

func (r *Response) IsCancel() bool {
	cseq, ok := r.CSeq()
	return ok && cseq.MethodName == sip.CANCEL
}

func (r *Response) StartLine() string {
	return r.SipVersion() + " " + strconv.Itoa(int(r.StatusCode())) + " " + r.Reason()
}

func (r *Response) String() string { return string(Render(r)) }

func (r *Response) Short() string {
	s := "sip.Response<" + strconv.Itoa(int(r.StatusCode())) + " " + r.Reason()
	if cseq, ok := r.CSeq(); ok {
		s += " " + strconv.FormatUint(uint64(cseq.SeqNo), 10) + " " + string(cseq.MethodName)
	}
	return s + ">"
}

func (r *Response) Clone() sip.Message { return r.clone(0) }

func (r *Response) clone(id uint64) *Response {
	c := newResponse(r.SipVersion(), r.StatusCode(), r.Reason(), r.cloneHeaders(), r.Body())
	if id != 0 {
		c.id = id
	}
	if prev := r.Previous(); prev != nil {
		c.previous = &prev
	}
	c.copyFrom(&r.base)
	return c
}

// Transport is the transport set on the response, or its top Via's.
func (r *Response) Transport() string {
	if tp, _, _ := r.stored(); tp != "" {
		return tp
	}
	if hop, ok := r.ViaHop(); ok && hop.Transport != "" {
		return hop.Transport
	}
	return sip.DefaultProtocol
}

func (r *Response) Source() string {
	_, src, _ := r.stored()
	return src
}

func (r *Response) Destination() string {
	if _, _, dest := r.stored(); dest != "" {
		return dest
	}
	return r.viaAddr(r.Transport())
}

func (r *Response) Fields() log.Fields {
	return r.logFields(r.Transport(), r.Source(), r.Destination())
}

func (r *Response) WithFields(f log.Fields) sip.Message {
	r.withFields(f)
	return r
}

// CopyRequest returns a deep copy of req with the same id, as
// sip.CopyRequest, in the SBC's own message type.
func CopyRequest(req sip.Request) sip.Request {
	if r, ok := req.(*Request); ok {
		return r.clone(r.id)
	}
	c := newRequest(req.Method(), req.Recipient().Clone(), req.SipVersion(), nil, req.Body())
	for _, h := range req.Headers() {
		c.AppendHeader(h.Clone())
	}
	return c
}

// EmptyRequest returns a request with a start line and nothing else (no
// Content-Length either): the caller adds headers in the order they go
// on the wire.
func EmptyRequest(method sip.RequestMethod, ruri sip.Uri, version string) sip.Request {
	return newRequest(method, ruri, version, nil, "")
}

// EmptyResponse is EmptyRequest for a response.
func EmptyResponse(version string, code int, reason string) sip.Response {
	return newResponse(version, sip.StatusCode(code), reason, nil, "")
}
