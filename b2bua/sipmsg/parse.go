package sipmsg

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	gosiplog "github.com/ghettovoice/gosip/log"
	"github.com/ghettovoice/gosip/sip"
	"github.com/ghettovoice/gosip/sip/parser"
	"github.com/sirupsen/logrus"
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

// Parser parses SIP messages. It is safe for concurrent use.
type Parser struct {
	lim Limits
	pp  *parser.PacketParser
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
	return &Parser{lim: lim, pp: parser.NewPacketParser(silentLogger())}
}

// silentLogger keeps gosip's parser from writing to stderr: our own counters
// and logs report bad messages, once per flood rather than once per header.
func silentLogger() gosiplog.Logger {
	l := logrus.New()
	l.Out = io.Discard
	l.Level = logrus.PanicLevel
	return gosiplog.NewLogrusLogger(l, "", nil)
}

// Parse turns one whole message into a sip.Message. On failure the error is
// an *Error whose Reason says what is wrong. The returned message's body is
// cut to Content-Length (RFC 3261 18.3: extra bytes on a datagram are
// ignored).
func (p *Parser) Parse(data []byte) (msg sip.Message, err error) {
	data, err = p.frame(data)
	if err != nil {
		return nil, err
	}
	defer func() {
		// gosip was not written for hostile input: a panic in it is a bad
		// message, not a dead SBC. Fuzzing keeps such inputs in testdata.
		if r := recover(); r != nil {
			msg, err = nil, &Error{Reason: "Malformed message", Err: fmt.Errorf("parser panic: %v", r)}
		}
	}()
	msg, err = p.pp.ParseMessage(data)
	if err != nil {
		return nil, &Error{Reason: "Malformed start line or headers", Err: err}
	}
	if msg.SipVersion() != "SIP/2.0" {
		return nil, &Error{Code: 505, Reason: "Version Not Supported"}
	}
	if err := check(msg); err != nil {
		return nil, err
	}
	return msg, nil
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
	for i, line := range bytes.Split(head, []byte("\r\n")) {
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

// check makes sure the headers transactions and dialogs rely on are there.
func check(msg sip.Message) error {
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
	if id, ok := msg.CallID(); !ok || strings.TrimSpace(string(*id)) == "" {
		return bad("Missing Call-ID")
	}
	if err := checkRecorded(msg); err != nil {
		return err
	}
	cseq, ok := msg.CSeq()
	if !ok || cseq.MethodName == "" {
		return bad("Missing or bad CSeq")
	}
	if cseq.SeqNo > 1<<31-1 {
		return bad("CSeq number out of range")
	}
	if req, ok := msg.(sip.Request); ok {
		if req.Recipient() == nil {
			return bad("Bad Request-URI")
		}
		if !strings.EqualFold(string(req.Method()), string(cseq.MethodName)) {
			return bad("CSeq method does not match")
		}
		if mf := msg.GetHeaders("Max-Forwards"); len(mf) > 0 {
			if _, ok := mf[0].(*sip.MaxForwards); !ok {
				return bad("Bad Max-Forwards")
			}
		}
	}
	return nil
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
	if !Printable(from.Address.String()) {
		return bad("Bad From URI")
	}
	to, _ := msg.To()
	if !Printable(to.Address.String()) {
		return bad("Bad To URI")
	}
	return nil
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
