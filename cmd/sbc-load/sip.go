package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
)

// sipMsg is a SIP message as the load tool reads it: the start line, the
// header lines as they came, and the body. The tool writes its own
// messages and reads only what a caller and a UAS need (Call-ID, CSeq,
// To tag, Contact, Record-Route), so a few string scans are enough.
type sipMsg struct {
	first   string
	headers []string
	body    string
}

// compact maps RFC 3261 compact header names to the full ones.
var compact = map[string]string{"i": "call-id", "v": "via", "f": "from", "t": "to", "m": "contact",
	"l": "content-length", "c": "content-type"}

// parseSIP splits a datagram or WebSocket message into a sipMsg.
func parseSIP(b []byte) (*sipMsg, error) {
	s := string(b)
	head, body, ok := strings.Cut(s, "\r\n\r\n")
	if !ok {
		return nil, errors.New("sip: no end of headers")
	}
	lines := strings.Split(head, "\r\n")
	if len(lines) == 0 || lines[0] == "" {
		return nil, errors.New("sip: empty start line")
	}
	m := &sipMsg{first: lines[0], headers: lines[1:], body: body}
	if n, err := strconv.Atoi(m.get("content-length")); err == nil && n >= 0 && n <= len(body) {
		m.body = body[:n]
	}
	return m, nil
}

func (m *sipMsg) isResponse() bool { return strings.HasPrefix(m.first, "SIP/2.0 ") }

// status is a response's status code (0 for a request).
func (m *sipMsg) status() int {
	if !m.isResponse() || len(m.first) < 11 {
		return 0
	}
	n, _ := strconv.Atoi(m.first[8:11])
	return n
}

// method is a request's method.
func (m *sipMsg) method() string {
	meth, _, _ := strings.Cut(m.first, " ")
	return meth
}

// requestUser is the user part of a request's URI.
func (m *sipMsg) requestUser() string {
	_, rest, _ := strings.Cut(m.first, " ")
	uri, _, _ := strings.Cut(rest, " ")
	uri = strings.TrimPrefix(strings.TrimPrefix(uri, "sips:"), "sip:")
	user, _, ok := strings.Cut(uri, "@")
	if !ok {
		return ""
	}
	return user
}

// headerName is a header line's name in lower case, compact forms expanded.
func headerName(line string) (name, value string) {
	n, v, _ := strings.Cut(line, ":")
	n = strings.ToLower(strings.TrimSpace(n))
	if full, ok := compact[n]; ok {
		n = full
	}
	return n, strings.TrimSpace(v)
}

// get is the value of the first header named name (lower case).
func (m *sipMsg) get(name string) string {
	for _, h := range m.headers {
		if n, v := headerName(h); n == name {
			return v
		}
	}
	return ""
}

// lines are the header lines named name, as they came.
func (m *sipMsg) lines(name string) []string {
	var out []string
	for _, h := range m.headers {
		if n, _ := headerName(h); n == name {
			out = append(out, h)
		}
	}
	return out
}

// values are the values of the headers named name, comma-separated
// values split (URIs in <> may not contain commas here).
func (m *sipMsg) values(name string) []string {
	var out []string
	for _, h := range m.lines(name) {
		_, v := headerName(h)
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}

// cseq is the CSeq number and method.
func (m *sipMsg) cseq() (int, string) {
	num, meth, _ := strings.Cut(m.get("cseq"), " ")
	n, _ := strconv.Atoi(strings.TrimSpace(num))
	return n, strings.TrimSpace(meth)
}

// param is the value of parameter name in a header value (outside <>).
func param(v, name string) string {
	if i := strings.LastIndexByte(v, '>'); i >= 0 {
		v = v[i+1:]
	}
	for _, p := range strings.Split(v, ";")[1:] {
		k, val, _ := strings.Cut(strings.TrimSpace(p), "=")
		if strings.EqualFold(k, name) {
			return val
		}
	}
	return ""
}

// uriOf is the URI in a name-addr (<...>) or addr-spec header value.
func uriOf(v string) string {
	if i := strings.IndexByte(v, '<'); i >= 0 {
		if j := strings.IndexByte(v[i:], '>'); j > 0 {
			return v[i+1 : i+j]
		}
	}
	u, _, _ := strings.Cut(v, ";")
	return strings.TrimSpace(u)
}

// token is n random bytes in hex.
func token(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// response renders the answer to req: its Via, From, Call-ID and CSeq, its
// To with toTag added when the To has no tag, a Contact and the body.
func response(req *sipMsg, code int, reason, toTag, contact, body string) []byte {
	var b strings.Builder
	b.WriteString("SIP/2.0 " + strconv.Itoa(code) + " " + reason + "\r\n")
	for _, h := range req.lines("via") {
		b.WriteString(h + "\r\n")
	}
	b.WriteString("From: " + req.get("from") + "\r\n")
	to := req.get("to")
	if param(to, "tag") == "" && toTag != "" {
		to += ";tag=" + toTag
	}
	b.WriteString("To: " + to + "\r\nCall-ID: " + req.get("call-id") + "\r\nCSeq: " + req.get("cseq") + "\r\n")
	if contact != "" {
		b.WriteString("Contact: <" + contact + ">\r\n")
	}
	writeBody(&b, body)
	return []byte(b.String())
}

// writeBody ends a message: Content-Type for SDP when there is a body,
// Content-Length, the blank line and the body.
func writeBody(b *strings.Builder, body string) {
	if body != "" {
		b.WriteString("Content-Type: application/sdp\r\n")
	}
	b.WriteString("Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body)
}

// sdpAudio is the connection address and port of the first m=audio of an
// SDP body: the c= of that media section, else the session's.
func sdpAudio(body string) (ip string, port int, ok bool) {
	session, media, inAudio := "", "", false
	for _, l := range strings.Split(strings.ReplaceAll(body, "\r\n", "\n"), "\n") {
		switch {
		case strings.HasPrefix(l, "m="):
			if port > 0 {
				inAudio = false
				break
			}
			if f := strings.Fields(l); len(f) > 1 && f[0] == "m=audio" {
				port, _ = strconv.Atoi(f[1])
				inAudio = true
			}
		case strings.HasPrefix(l, "c=IN IP4 ") || strings.HasPrefix(l, "c=IN IP6 "):
			f := strings.Fields(l[9:])
			if len(f) == 0 {
				continue
			}
			if port == 0 && !inAudio && session == "" {
				session = f[0]
			} else if inAudio && media == "" {
				media = f[0]
			}
		}
	}
	ip = session
	if media != "" {
		ip = media
	}
	return ip, port, ip != "" && port > 0
}

// sessionID is a random SDP o= session id (digits).
func sessionID() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return strconv.FormatUint(uint64(b[0])<<24|uint64(b[1])<<16|uint64(b[2])<<8|uint64(b[3]), 10)
}
