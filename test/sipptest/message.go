package sipptest

import (
	"strconv"
	"strings"
)

// Direction says whether SIPp sent or received a message.
type Direction int

// Directions. The zero value is not a direction.
const (
	Received Direction = iota + 1
	Sent
)

func (d Direction) String() string {
	switch d {
	case Received:
		return "received"
	case Sent:
		return "sent"
	default:
		return "Direction(" + strconv.Itoa(int(d)) + ")"
	}
}

// Message is one SIP message from SIPp's message log.
type Message struct {
	Dir Direction
	// Transport is "UDP" or "TCP", as SIPp logs it.
	Transport string
	// Text is the message with CRLF line ends: the headers end with an empty
	// line, and a body ends with one CRLF whatever trailing blank lines it had.
	Text string
}

// StartLine is the request line or status line.
func (m Message) StartLine() string {
	line, _, _ := strings.Cut(m.Text, "\n")
	return strings.TrimRight(line, "\r")
}

// Method is the request method, or "" for a response.
func (m Message) Method() string {
	line := m.StartLine()
	if strings.HasPrefix(line, "SIP/") {
		return ""
	}
	method, _, _ := strings.Cut(line, " ")
	return method
}

// StatusCode is the response status code, or 0 for a request.
func (m Message) StatusCode() int {
	line := m.StartLine()
	if !strings.HasPrefix(line, "SIP/") {
		return 0
	}
	fields := strings.Fields(line)
	if len(fields) < 2 {
		return 0
	}
	code, err := strconv.Atoi(fields[1])
	if err != nil {
		return 0
	}
	return code
}

// compact maps RFC 3261 compact header names to their full names.
var compact = map[string]string{
	"i": "call-id", "f": "from", "t": "to", "v": "via", "m": "contact",
	"l": "content-length", "c": "content-type", "k": "supported",
	"s": "subject", "e": "content-encoding",
}

// Headers returns the values of every header field called name (case
// insensitive, compact forms included), in order, without folding or
// splitting comma-separated values.
func (m Message) Headers(name string) []string {
	want := canonical(name)
	head, _, _ := strings.Cut(strings.ReplaceAll(m.Text, "\r\n", "\n"), "\n\n")
	lines := strings.Split(head, "\n")
	var out []string
	for _, line := range lines[1:] {
		n, v, ok := strings.Cut(line, ":")
		if ok && canonical(n) == want {
			out = append(out, strings.TrimSpace(v))
		}
	}
	return out
}

// Header returns the value of the first header field called name, or "".
func (m Message) Header(name string) string {
	if v := m.Headers(name); len(v) > 0 {
		return v[0]
	}
	return ""
}

func canonical(name string) string {
	n := strings.ToLower(strings.TrimSpace(name))
	if full, ok := compact[n]; ok {
		return full
	}
	return n
}

// Body is everything after the blank line that ends the headers.
func (m Message) Body() string {
	_, body, _ := strings.Cut(m.Text, "\r\n\r\n")
	return body
}

// logSeparator starts every entry of SIPp's -trace_msg file.
const logSeparator = "-----------------------------------------------"

// parseMessages splits a SIPp -trace_msg file into messages. An entry is a
// separator line with a timestamp, a line such as "UDP message sent (592
// bytes):" or "TCP message received [307] bytes :", a blank line and the
// message. Entries of any other kind (SIPp notes such as ignored
// retransmissions) are skipped.
func parseMessages(log string) []Message {
	var out []Message
	for _, entry := range splitEntries(log) {
		first, rest, ok := strings.Cut(entry, "\n")
		if !ok {
			continue
		}
		transport, kind, ok := strings.Cut(first, " message ")
		if !ok {
			continue
		}
		var dir Direction
		switch {
		case strings.HasPrefix(kind, "sent"):
			dir = Sent
		case strings.HasPrefix(kind, "received"):
			dir = Received
		default:
			continue
		}
		text := strings.TrimLeft(rest, "\n")
		text = strings.TrimRight(text, "\r\n") + "\r\n"
		if !strings.Contains(text, "\r\n\r\n") {
			text += "\r\n" // a message without a body ends its headers here
		}
		out = append(out, Message{Dir: dir, Transport: transport, Text: text})
	}
	return out
}

// splitEntries returns the text after each separator line.
func splitEntries(log string) []string {
	var entries []string
	var cur *strings.Builder
	for _, line := range strings.SplitAfter(log, "\n") {
		if strings.HasPrefix(line, logSeparator) {
			if cur != nil {
				entries = append(entries, cur.String())
			}
			cur = &strings.Builder{}
			continue
		}
		if cur != nil {
			cur.WriteString(line)
		}
	}
	if cur != nil {
		entries = append(entries, cur.String())
	}
	return entries
}
