package sipmsg

import (
	"bytes"
	"errors"
	"strconv"
	"strings"
	"unsafe"

	"github.com/ghettovoice/gosip/sip"
)

// Limits bound what Parse accepts.
type Limits struct {
	MaxMessageSize int // bytes, whole message
	MaxHeaders     int // header fields (continuation lines do not count)
	MaxLineLength  int // bytes per start line or header line
}

// Error is a message that cannot be used. Reason is short and safe to put in
// a 400 reason phrase or a Warning header.
type Error struct {
	Code   int // the response code to answer with: 400 unless said otherwise
	Reason string
	Err    error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Reason + ": " + e.Err.Error()
	}
	return e.Reason
}

func (e *Error) Unwrap() error { return e.Err }

func bad(reason string) *Error { return &Error{Reason: reason} }

// Parser parses SIP messages into gosip's message types with the grammar
// of RFC 3261 section 25 (header.go, addr.go, uri.go). It replaces gosip's
// packet parser, which refused valid messages of RFC 4475 and RFC 5118
// (escaped quotes in display names, IPv6 references, URIs of other
// schemes, '%' in tokens) and spent a third of its time building log
// entries nobody read. It is safe for concurrent use.
type Parser struct {
	lim Limits
}

// NewParser returns a Parser enforcing lim; zero fields take defaults of
// 65535 bytes, 128 headers and 8192-byte lines.
func NewParser(lim Limits) *Parser {
	if lim.MaxMessageSize <= 0 {
		lim.MaxMessageSize = 65535
	}
	if lim.MaxHeaders <= 0 {
		lim.MaxHeaders = 128
	}
	if lim.MaxLineLength <= 0 {
		lim.MaxLineLength = 8192
	}
	return &Parser{lim: lim}
}

// Parse turns one whole message into a sip.Message. On failure the error is
// an *Error whose Reason says what is wrong. The returned message's body is
// cut to Content-Length (RFC 3261 18.3: extra bytes on a datagram are
// ignored).
func (p *Parser) Parse(data []byte) (sip.Message, error) {
	data, err := p.frame(data)
	if err != nil {
		return nil, err
	}
	return p.parse(string(data))
}

// ParseOwned is Parse for a buffer the caller gives up: the message's
// strings (header values, body) point into data rather than into a copy
// of it, so data must never change afterwards. A transport.Packet's Data
// is such a buffer (its handler owns it); the copy Parse makes was, with
// the transport's own, one of two copies of every datagram received.
func (p *Parser) ParseOwned(data []byte) (sip.Message, error) {
	data, err := p.frame(data)
	if err != nil {
		return nil, err
	}
	return p.parse(unsafe.String(unsafe.SliceData(data), len(data)))
}

// parse reads a message that frame accepted.
func (p *Parser) parse(text string) (sip.Message, error) {
	end := strings.Index(text, "\r\n\r\n")
	head, body := text[:end], text[end+4:]
	start, fields, _ := strings.Cut(head, "\r\n")
	ar := newArena(head) // on the stack: what it hands out is on the heap
	bx := &ar
	msg, err := parseStartLine(bx, start)
	if err != nil {
		return nil, err
	}
	var buf [inlineHeaders]sip.Header // on the stack: the headers go into msg
	hdrs, err := parseFields(bx, fields, buf[:0])
	if err != nil {
		return nil, err
	}
	for _, h := range hdrs {
		msg.AppendHeader(h)
	}
	if strings.TrimSpace(body) != "" {
		msg.SetBody(body, false)
	}
	if err := check(msg); err != nil {
		return nil, err
	}
	return msg, nil
}

// parseFields parses the header fields, each unfolded first (a line
// break with the white space after it is one space, RFC 3261 7.3.1), and
// appends them to hdrs.
func parseFields(bx *arena, s string, hdrs []sip.Header) ([]sip.Header, error) {
	var err error
	for s != "" {
		var field string
		field, s = cutField(s)
		name, value, _ := strings.Cut(field, ":") // frame checked the colon
		name = strings.TrimRight(name, " \t")
		if tokenLen(name) != len(name) || name == "" {
			return nil, bad("Malformed header line")
		}
		if hdrs, err = parseHeader(bx, name, trimLWS(value), hdrs); err != nil {
			return nil, err
		}
	}
	return hdrs, nil
}

// cutField splits the first header field (with its continuation lines,
// unfolded) off s.
func cutField(s string) (field, rest string) {
	end := 0
	folded := false
	for {
		i := strings.Index(s[end:], "\r\n")
		if i < 0 {
			end = len(s)
			rest = ""
			break
		}
		end += i
		if next := s[end+2:]; next != "" && (next[0] == ' ' || next[0] == '\t') {
			folded = true
			end += 2
			continue
		}
		rest = s[end+2:]
		break
	}
	field = s[:end]
	if folded {
		field = unfold(field)
	}
	return field, rest
}

func unfold(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for {
		i := strings.Index(s, "\r\n")
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		b.WriteString(strings.TrimRight(s[:i], " \t"))
		b.WriteByte(' ')
		s = strings.TrimLeft(s[i+2:], " \t")
	}
}

// parseStartLine reads Method SP Request-URI SP SIP-Version, or
// SIP-Version SP Status-Code SP Reason-Phrase (RFC 3261 7.1, 7.2).
func parseStartLine(bx *arena, line string) (sip.Message, error) {
	if len(line) > 4 && strings.EqualFold(line[:4], "SIP/") {
		return parseStatusLine(line)
	}
	method, rest, ok1 := strings.Cut(line, " ")
	ruri, version, ok2 := strings.Cut(rest, " ")
	if !ok1 || !ok2 || method == "" || tokenLen(method) != len(method) || strings.ContainsAny(version, " \t") {
		return nil, bad("Malformed start line")
	}
	if err := checkVersion(version); err != nil {
		return nil, err
	}
	uri, err := parseURI(bx, ruri)
	if err != nil {
		return nil, bad("Bad Request-URI")
	}
	return newRequest(sip.RequestMethod(method), uri, "SIP/2.0", nil, ""), nil
}

func parseStatusLine(line string) (sip.Message, error) {
	version, rest, _ := strings.Cut(line, " ")
	code, reason, _ := strings.Cut(rest, " ")
	n, ok := digits(code, 699)
	if !ok || len(code) != 3 || n < 100 {
		return nil, bad("Malformed status line")
	}
	if err := checkVersion(version); err != nil {
		return nil, err
	}
	return newResponse("SIP/2.0", sip.StatusCode(n), reason, nil, ""), nil
}

// checkVersion accepts SIP/2.0 (the literal is case-insensitive, RFC
// 3261 7.1); another version of SIP gets 505.
func checkVersion(v string) error {
	if strings.EqualFold(v, "SIP/2.0") {
		return nil
	}
	major, minor, ok := strings.Cut(v[min(4, len(v)):], ".")
	if len(v) > 4 && strings.EqualFold(v[:4], "SIP/") && ok {
		if _, ok1 := digits(major, 1<<31); ok1 {
			if _, ok2 := digits(minor, 1<<31); ok2 {
				return &Error{Code: 505, Reason: "Version Not Supported"}
			}
		}
	}
	return bad("Malformed start line")
}

// frame checks sizes and Content-Length on the raw bytes and returns the
// message cut to its declared length.
func (p *Parser) frame(data []byte) ([]byte, error) {
	if len(data) > p.lim.MaxMessageSize {
		return nil, bad("Message Too Large")
	}
	end := bytes.Index(data, []byte("\r\n\r\n"))
	if end < 0 {
		return nil, bad("Missing end of headers")
	}
	head := data[:end]
	declared := -1
	headers := 0
	var text lineChecker
	for i := 0; len(head) > 0 || i == 0; i++ {
		var line []byte
		line, head, _ = bytes.Cut(head, []byte("\r\n"))
		if len(line) > p.lim.MaxLineLength {
			return nil, bad("Header line too long")
		}
		if i == 0 {
			if err := text.startLine(line); err != nil {
				return nil, err
			}
			continue
		}
		if folded := len(line) == 0 || line[0] == ' ' || line[0] == '\t'; folded {
			if err := text.header(line, true); err != nil {
				return nil, err
			}
			continue
		}
		headers++
		if headers > p.lim.MaxHeaders {
			return nil, bad("Too many headers")
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			return nil, bad("Malformed header line")
		}
		if err := text.header(line, false); err != nil {
			return nil, err
		}
		name = bytes.TrimSpace(name)
		if !bytes.EqualFold(name, []byte("Content-Length")) && !bytes.EqualFold(name, []byte("l")) {
			continue
		}
		n, err := strconv.Atoi(string(bytes.TrimSpace(value)))
		if err != nil || n < 0 {
			return nil, bad("Bad Content-Length")
		}
		if declared >= 0 && declared != n {
			return nil, bad("Conflicting Content-Length")
		}
		declared = n
	}
	body := len(data) - end - 4
	switch {
	case declared < 0:
		// Allowed on datagrams (RFC 3261 20.14); the stream framer already
		// delimited the message, so the rest is the body.
	case declared > body:
		return nil, bad("Content-Length larger than body")
	case declared < body:
		data = data[:end+4+declared]
	}
	return data, nil
}

// check makes sure the headers transactions and dialogs rely on are there,
// once each.
func check(msg sip.Message) error {
	for _, name := range singleHeaders {
		if len(msg.GetHeaders(name)) > 1 {
			return bad("Duplicate " + name + " header") // RFC 4475 3.3.8
		}
	}
	via, ok := msg.ViaHop()
	if !ok || via.Host == "" {
		return bad("Missing or bad Via")
	}
	if from, ok := msg.From(); !ok || from.Address == nil {
		return bad("Missing or bad From")
	}
	if to, ok := msg.To(); !ok || to.Address == nil {
		return bad("Missing or bad To")
	}
	if _, ok := msg.CallID(); !ok {
		return bad("Missing Call-ID")
	}
	if err := checkRecorded(msg); err != nil {
		return err
	}
	cseq, ok := msg.CSeq()
	if !ok {
		return bad("Missing or bad CSeq")
	}
	if req, ok := msg.(sip.Request); ok && req.Method() != cseq.MethodName {
		if !KnownMethod(req.Method()) {
			// An unknown method is not implemented whatever its CSeq
			// says (RFC 4475 3.1.2.18).
			return &Error{Code: 501, Reason: "Not Implemented"}
		}
		return bad("CSeq method does not match")
	}
	return nil
}

// singleHeaders may appear once in a message (RFC 3261 7.3.1, 20).
var singleHeaders = []string{"From", "To", "Call-ID", "CSeq", "Max-Forwards", "Content-Type", "Content-Length"}

// KnownMethod reports whether m is a method of RFC 3261 or of the RFCs
// that extend it (RFC 3262, 3265, 3311, 3428, 3515, 3903, 6086): one the
// SBC may not support (405) but does not call unknown (501, RFC 3261
// 8.2.1). Methods are case-sensitive.
func KnownMethod(m sip.RequestMethod) bool {
	switch m {
	case sip.INVITE, sip.ACK, sip.CANCEL, sip.BYE, sip.OPTIONS, sip.REGISTER, sip.PRACK, sip.SUBSCRIBE,
		sip.NOTIFY, sip.PUBLISH, sip.INFO, sip.REFER, sip.MESSAGE, sip.UPDATE:
		return true
	}
	return false
}

// checkRecorded makes sure the values a call detail record keeps are
// printable text. The raw lines were checked already; this holds the
// promise whatever gosip decodes or re-encodes on the way (it decodes
// %-escapes in a URI's user part, and must escape them again in String).
func checkRecorded(msg sip.Message) error {
	if !Printable(CallID(msg)) {
		return bad("Bad Call-ID")
	}
	from, _ := msg.From()
	if !printableURI(from.Address) {
		return bad("Bad From URI")
	}
	to, _ := msg.To()
	if !printableURI(to.Address) {
		return bad("Bad To URI")
	}
	return nil
}

// printableURI is Printable(u.String()), rendered on the stack by
// appendURI (which render_test.go holds to String) instead of gosip's
// String: a dozen allocations per message less.
func printableURI(u sip.Uri) bool {
	var buf [256]byte
	b := appendURI(buf[:0], u)
	return Printable(unsafe.String(unsafe.SliceData(b), len(b)))
}

// ReasonOf returns the reason for err, or "Bad Request".
func ReasonOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Reason
	}
	return "Bad Request"
}

// CodeOf returns the response code for err: 400 unless the error says
// otherwise (505 for a SIP version other than 2.0).
func CodeOf(err error) int {
	var e *Error
	if errors.As(err, &e) && e.Code != 0 {
		return e.Code
	}
	return 400
}
