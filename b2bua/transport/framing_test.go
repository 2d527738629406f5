package transport

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"time"
)

// TestFramer runs the framer on byte strings directly.
func TestFramer(t *testing.T) {
	inv := sipMsg("INVITE", "Content-Length", "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\n")
	bye := sipMsg("BYE", "l", "")
	tests := []struct {
		name   string
		in     string
		frames []string // "" stands for a ping
		err    error    // after the frames; io.EOF for a clean end
	}{
		{"one message", inv, []string{inv}, io.EOF},
		{"two messages", inv + bye, []string{inv, bye}, io.EOF},
		{"compact l", bye + bye, []string{bye, bye}, io.EOF},
		{"case-insensitive name", "A sip:x SIP/2.0\r\ncOnTeNt-LeNgTh : 3\r\n\r\nabc", []string{"A sip:x SIP/2.0\r\ncOnTeNt-LeNgTh : 3\r\n\r\nabc"}, io.EOF},
		{"folded content-length", "A sip:x SIP/2.0\r\nContent-Length:\r\n 2\r\n\r\nab", []string{"A sip:x SIP/2.0\r\nContent-Length:\r\n 2\r\n\r\nab"}, io.EOF},
		{"missing content-length is empty body", "A sip:x SIP/2.0\r\nVia: x\r\n\r\nB sip:y SIP/2.0\r\n\r\n", []string{"A sip:x SIP/2.0\r\nVia: x\r\n\r\n", "B sip:y SIP/2.0\r\n\r\n"}, io.EOF},
		{"bare LF lines", "A sip:x SIP/2.0\nl: 1\n\nz", []string{"A sip:x SIP/2.0\nl: 1\n\nz"}, io.EOF},
		{"leading CRLF skipped", "\r\n" + bye + "\r\n" + bye, []string{bye, bye}, io.EOF},
		{"ping", "\r\n\r\n" + bye, []string{"", bye}, io.EOF},
		{"two pings", "\r\n\r\n\r\n\r\n", []string{"", ""}, io.EOF},
		{"same content-length twice", "A sip:x SIP/2.0\r\nl: 1\r\nContent-Length: 1\r\n\r\nz", []string{"A sip:x SIP/2.0\r\nl: 1\r\nContent-Length: 1\r\n\r\nz"}, io.EOF},
		{"conflicting content-length", "A sip:x SIP/2.0\r\nl: 1\r\nContent-Length: 2\r\n\r\nzz", nil, errBadFraming},
		{"non-numeric content-length", "A sip:x SIP/2.0\r\nContent-Length: 1x\r\n\r\n", nil, errBadFraming},
		{"negative content-length", "A sip:x SIP/2.0\r\nContent-Length: -1\r\n\r\n", nil, errBadFraming},
		{"empty content-length", "A sip:x SIP/2.0\r\nContent-Length: \r\n\r\n", nil, errBadFraming},
		{"content-length above limit", "A sip:x SIP/2.0\r\nContent-Length: 1001\r\n\r\n", nil, errOversize},
		{"huge content-length", "A sip:x SIP/2.0\r\nContent-Length: 99999999999999999999999\r\n\r\n", nil, errOversize},
		{"header plus body above limit", "A sip:x SIP/2.0\r\nContent-Length: 990\r\n\r\n" + strings.Repeat("a", 990), nil, errOversize},
		{"header block above limit", "A sip:x SIP/2.0\r\n" + strings.Repeat("X-Pad: "+strings.Repeat("p", 90)+"\r\n", 11), nil, errOversize},
		{"line too long", "A sip:x SIP/2.0\r\nX: " + strings.Repeat("a", 200) + "\r\n\r\n", nil, errLineTooLong},
		{"line too long without LF", strings.Repeat("a", 300), nil, errLineTooLong},
		{"longest line allowed", "A sip:x SIP/2.0\r\nX: " + strings.Repeat("a", 125) + "\r\n\r\n", []string{"A sip:x SIP/2.0\r\nX: " + strings.Repeat("a", 125) + "\r\n\r\n"}, io.EOF},
		{"truncated header", "A sip:x SIP/2.0\r\nVia: x", nil, io.ErrUnexpectedEOF},
		{"truncated body", "A sip:x SIP/2.0\r\nl: 5\r\n\r\nab", nil, io.ErrUnexpectedEOF},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFramer(strings.NewReader(tc.in), 1000, 128)
			for i, want := range tc.frames {
				msg, ping, err := f.next()
				if err != nil {
					t.Fatalf("frame %d: %v", i, err)
				}
				if want == "" {
					if !ping {
						t.Fatalf("frame %d: %q, want a ping", i, msg)
					}
					continue
				}
				if ping || string(msg) != want {
					t.Fatalf("frame %d: ping=%v %q, want %q", i, ping, msg, want)
				}
			}
			if _, _, err := f.next(); !errors.Is(err, tc.err) {
				t.Fatalf("end: %v, want %v", err, tc.err)
			}
		})
	}
}

// TestTCPFraming sends byte streams over a real TCP connection.
func TestTCPFraming(t *testing.T) {
	withBody := sipMsg("MESSAGE", "Content-Length", "hello\r\nworld")
	compact := sipMsg("MESSAGE", "l", "hi")
	plain := sipMsg("OPTIONS", "Content-Length", "")
	tests := []struct {
		name    string
		writes  []string // each is one Write
		want    []string // messages delivered, in order
		closed  bool     // the layer closes the connection
		counter func(Drops) uint64
	}{
		{name: "two messages in one write", writes: []string{plain + withBody}, want: []string{plain, withBody}},
		{name: "byte by byte", writes: strings.Split(withBody, ""), want: []string{withBody}},
		{name: "body with content-length", writes: []string{withBody}, want: []string{withBody}},
		{name: "compact l", writes: []string{compact, compact}, want: []string{compact, compact}},
		{name: "split inside the body", writes: []string{withBody[:len(withBody)-4], withBody[len(withBody)-4:] + plain}, want: []string{withBody, plain}},
		{name: "oversize content-length", writes: []string{"INVITE sip:x SIP/2.0\r\nContent-Length: 5000\r\n\r\n"},
			closed: true, counter: func(d Drops) uint64 { return d.Oversize }},
		{name: "line too long", writes: []string{"INVITE sip:x SIP/2.0\r\nSubject: " + strings.Repeat("s", 300) + "\r\n\r\n"},
			closed: true, counter: func(d Drops) uint64 { return d.LineTooLong }},
		{name: "bad content-length", writes: []string{"INVITE sip:x SIP/2.0\r\nContent-Length: ten\r\n\r\n"},
			closed: true, counter: func(d Drops) uint64 { return d.BadFraming }},
		{name: "message before a bad one is delivered", writes: []string{plain + "X sip:x SIP/2.0\r\nl: -1\r\n\r\n"}, want: []string{plain},
			closed: true, counter: func(d Drops) uint64 { return d.BadFraming }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checkRoutines(t)
			l, rec := newTestLayer(t, Limits{MaxMessageSize: 1024, MaxLineLength: 256})
			addr := listen(t, l, "tcp", TCP, nil)
			c := dialClient(t, TCP, addr, nil).(*streamClient)
			for _, w := range tc.writes {
				c.send(t, []byte(w))
			}
			for _, want := range tc.want {
				if p := rec.next(t); string(p.Data) != want {
					t.Fatalf("got %q, want %q", p.Data, want)
				}
			}
			if !tc.closed {
				rec.none(t)
				if l.Stats().Open[TCP] != 1 {
					t.Fatal("connection closed")
				}
				return
			}
			waitClosed(t, c.c, 2*time.Second)
			if got := tc.counter(l.Stats().Dropped); got != 1 {
				t.Fatalf("drop counter = %d, want 1", got)
			}
			eventually(t, "conn removed", func() bool { return l.Stats().Open[TCP] == 0 })
		})
	}
}

func TestStreamKeepalive(t *testing.T) {
	serverTLS, clientTLS := testTLS(t)
	for _, kind := range []Kind{TCP, TLS} {
		t.Run(kind.String(), func(t *testing.T) {
			checkRoutines(t)
			l, rec := newTestLayer(t, Limits{})
			addr := listen(t, l, "s", kind, serverTLS)
			c := dialClient(t, kind, addr, clientTLS)
			c.send(t, []byte("\r\n\r\n"))
			if got := c.recv(t, 2); !bytes.Equal(got, []byte("\r\n")) {
				t.Fatalf("pong %q, want CRLF", got)
			}
			rec.none(t)
			if s := l.Stats(); s.Keepalives != 1 || s.Received != 0 {
				t.Fatalf("keepalives=%d received=%d, want 1 0", s.Keepalives, s.Received)
			}
		})
	}
}
