package sipmsg

import (
	"bytes"
	"strconv"
	"strings"
)

// BadRequest builds a 400 (or code) response to a request that could not be parsed,
// from the request's raw header lines: its Via, From, To, Call-ID and CSeq,
// as many of those as it has (RFC 4475 3.3.1: a request without From, To
// and Call-ID is still answered 400). It returns nil when the bytes do not
// look like a request (a response, an ACK, garbage) or lack the Via and
// CSeq a response needs to reach its client transaction: those are
// dropped, as RFC 3261 leaves nothing to answer.
func BadRequest(data []byte, code int, reason, userAgent string) []byte {
	end := bytes.Index(data, []byte("\r\n\r\n"))
	if end < 0 {
		end = len(data)
	}
	lines := bytes.Split(data[:end], []byte("\r\n"))
	if len(lines) < 2 || !looksLikeRequest(lines[0]) {
		return nil
	}
	var via, rest [][]byte
	seen := map[string]bool{}
	for _, line := range lines[1:] {
		name, _, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		switch canon := canonical(string(bytes.TrimSpace(name))); canon {
		case "Via":
			via = append(via, line)
			seen[canon] = true
		case "From", "To", "Call-ID", "CSeq":
			if !seen[canon] {
				rest = append(rest, line)
				seen[canon] = true
			}
		}
	}
	for _, h := range []string{"Via", "CSeq"} {
		if !seen[h] {
			return nil
		}
	}
	var b bytes.Buffer
	if code < 400 || code > 699 {
		code = 400
	}
	b.WriteString("SIP/2.0 " + strconv.Itoa(code) + " ")
	b.WriteString(safeReason(reason))
	b.WriteString("\r\n")
	for _, l := range append(via, rest...) {
		b.Write(l)
		b.WriteString("\r\n")
	}
	if userAgent != "" {
		b.WriteString("Server: " + userAgent + "\r\n")
	}
	b.WriteString("Content-Length: 0\r\n\r\n")
	return b.Bytes()
}

func looksLikeRequest(start []byte) bool {
	f := bytes.Fields(start)
	if len(f) != 3 || !bytes.HasPrefix(f[2], []byte("SIP/")) {
		return false
	}
	m := string(f[0])
	if m == "ACK" {
		return false // never answered
	}
	for _, c := range m {
		if c < 'A' || c > 'Z' {
			return false
		}
	}
	return true
}

func canonical(name string) string {
	switch strings.ToLower(name) {
	case "via", "v":
		return "Via"
	case "from", "f":
		return "From"
	case "to", "t":
		return "To"
	case "call-id", "i":
		return "Call-ID"
	case "cseq":
		return "CSeq"
	}
	return ""
}

// safeReason keeps a reason phrase to printable ASCII on one line.
func safeReason(s string) string {
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s) && len(b) < 80; i++ {
		if c := s[i]; c >= 0x20 && c < 0x7f {
			b = append(b, c)
		}
	}
	if len(b) == 0 {
		return "Bad Request"
	}
	return string(b)
}
