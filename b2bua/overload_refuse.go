package b2bua

import (
	"bytes"
	"strconv"

	"github.com/sbc-project/sbc/b2bua/transport"
)

// overloadRetryAfter is the Retry-After of a call refused in overload, in
// seconds: long enough for the queue to drain.
const overloadRetryAfter = "5"

// overloadTag starts the To tag of the 503s sent in overload, so that
// their ACKs are known without parsing.
var overloadTag = []byte("ovl")

// refuseEarly is the overload control's gate on new calls, before a
// message is parsed: a new INVITE (no To tag) that the control refuses is
// answered 503 with Retry-After statelessly, before it costs a
// transaction, a call or a media session, and so is each retransmission
// of it (same answer, same To tag); the ACK of such a 503 is absorbed.
// Everything else (in-dialog requests, responses, CANCEL, the INVITEs of
// calls already let through) goes on, so calls in progress complete. True
// when p needs nothing more.
func (s *Server) refuseEarly(p transport.Packet, src transport.Target) bool {
	var ack bool
	switch {
	case bytes.HasPrefix(p.Data, []byte("INVITE ")):
	case bytes.HasPrefix(p.Data, []byte("ACK ")):
		ack = true
	default:
		return false
	}
	h := scanHeaders(p.Data)
	tag := toTag(h.to)
	if ack {
		return bytes.HasPrefix(tag, overloadTag)
	}
	if tag != nil || h.callID == nil || s.load.admit(h.callID) {
		return false
	}
	if res := refusal(p.Data, h, s.cfg.UserAgent); res != nil {
		_ = s.tp.Send(s.unparsableTarget(res, src), res)
	} // else too broken to answer: dropped, as RFC 7339 lets an overloaded server do
	return true
}

// rawHeaders are the header lines of a raw request the early gate reads,
// each the whole line ("To: <sip:b@x>"), nil when absent; to and callID
// are the values.
type rawHeaders struct {
	from, toLine, callIDLine, cseq []byte
	to, callID                     []byte
}

// scanHeaders reads the first From, To, Call-ID and CSeq lines of a raw
// message's header, in full or compact form, without allocating.
func scanHeaders(msg []byte) rawHeaders {
	var h rawHeaders
	rest := msg
	if i := bytes.Index(rest, []byte("\r\n")); i >= 0 {
		rest = rest[i+2:] // the start line
	}
	for {
		i := bytes.Index(rest, []byte("\r\n"))
		if i <= 0 {
			return h // end of the headers (or of the datagram)
		}
		line := rest[:i]
		rest = rest[i+2:]
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		name, value = bytes.TrimRight(name, " \t"), bytes.TrimSpace(value)
		switch {
		case h.from == nil && (bytes.EqualFold(name, []byte("From")) || bytes.EqualFold(name, []byte("f"))):
			h.from = line
		case h.to == nil && (bytes.EqualFold(name, []byte("To")) || bytes.EqualFold(name, []byte("t"))):
			h.toLine, h.to = line, value
		case h.callID == nil && (bytes.EqualFold(name, []byte("Call-ID")) || bytes.EqualFold(name, []byte("i"))):
			h.callIDLine, h.callID = line, value
		case h.cseq == nil && bytes.EqualFold(name, []byte("CSeq")):
			h.cseq = line
		}
	}
}

// toTag is the tag parameter of a To (or From) value; nil when it has
// none. Parameters inside <...> belong to the URI.
func toTag(v []byte) []byte {
	if i := bytes.LastIndexByte(v, '>'); i >= 0 {
		v = v[i+1:]
	}
	for {
		i := bytes.IndexByte(v, ';')
		if i < 0 {
			return nil
		}
		v = v[i+1:]
		name, val, _ := bytes.Cut(v, []byte("="))
		if bytes.EqualFold(bytes.TrimSpace(name), []byte("tag")) {
			val, _, _ = bytes.Cut(val, []byte(";"))
			return bytes.TrimSpace(val)
		}
	}
}

// refusal renders the stateless 503 for a raw INVITE: its Via lines as
// they came, From, To with a tag of our own (the same for every copy of
// the request), Call-ID and CSeq, and Retry-After. Nil when the request
// lacks one of them.
func refusal(msg []byte, h rawHeaders, userAgent string) []byte {
	if h.from == nil || h.toLine == nil || h.cseq == nil {
		return nil
	}
	var b bytes.Buffer
	b.Grow(len(msg) / 2)
	b.WriteString("SIP/2.0 503 Service Unavailable\r\n")
	vias := 0
	rest := msg
	if i := bytes.Index(rest, []byte("\r\n")); i >= 0 {
		rest = rest[i+2:]
	}
	for {
		i := bytes.Index(rest, []byte("\r\n"))
		if i <= 0 {
			break
		}
		line := rest[:i]
		rest = rest[i+2:]
		name, _, _ := bytes.Cut(line, []byte(":"))
		if name = bytes.TrimRight(name, " \t"); bytes.EqualFold(name, []byte("Via")) || bytes.EqualFold(name, []byte("v")) {
			b.Write(line)
			b.WriteString("\r\n")
			vias++
		}
	}
	if vias == 0 {
		return nil
	}
	b.Write(h.from)
	b.WriteString("\r\n")
	b.Write(h.toLine)
	b.WriteString(";tag=")
	b.Write(overloadTag)
	b.WriteString(strconv.FormatUint(hash64(h.callID), 36))
	b.WriteString("\r\n")
	b.Write(h.callIDLine)
	b.WriteString("\r\n")
	b.Write(h.cseq)
	b.WriteString("\r\nRetry-After: " + overloadRetryAfter + "\r\n")
	if userAgent != "" {
		b.WriteString("Server: " + userAgent + "\r\n")
	}
	b.WriteString("Content-Length: 0\r\n\r\n")
	return b.Bytes()
}
