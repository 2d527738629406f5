package takeover

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"
)

// sipEnd is a SIP endpoint in the world namespace speaking text over
// UDP: a caller, or the PBX the SBC's trunk points to.
type sipEnd struct {
	t    *testing.T
	conn *net.UDPConn
	msgs chan string
}

func newSIPEnd(t *testing.T, tp *topology, ip string) *sipEnd {
	t.Helper()
	var err error
	e := &sipEnd{t: t, msgs: make(chan string, 256)}
	inNamespace(t, tp.world, func() { e.conn, err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.ParseIP(ip)}) })
	if err != nil {
		t.Fatalf("sip socket on %s: %v", ip, err)
	}
	t.Cleanup(func() { _ = e.conn.Close() })
	go func() {
		buf := make([]byte, 65535)
		for {
			n, err := e.conn.Read(buf)
			if err != nil {
				close(e.msgs)
				return
			}
			e.msgs <- string(buf[:n])
		}
	}()
	return e
}

func (e *sipEnd) addr() string { return e.conn.LocalAddr().String() }

// send sends a SIP message to dst, with its Content-Length.
func (e *sipEnd) send(dst string, lines ...string) {
	e.t.Helper()
	head, body, _ := strings.Cut(strings.Join(lines, "\r\n"), "\r\n\r\n")
	msg := head + fmt.Sprintf("\r\nContent-Length: %d\r\n\r\n", len(body)) + body
	to, err := net.ResolveUDPAddr("udp4", dst)
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.conn.WriteToUDP([]byte(msg), to); err != nil {
		e.t.Fatal(err)
	}
}

// recv waits for the message whose first line starts with first and that
// has Call-ID callID (any when empty); others are dropped (retransmissions).
func (e *sipEnd) recv(first, callID string) string {
	e.t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case m, ok := <-e.msgs:
			if !ok {
				e.t.Fatalf("%s: closed waiting for %q", e.addr(), first)
			}
			if strings.HasPrefix(m, first) && (callID == "" || header(m, "Call-ID") == callID) {
				return m
			}
		case <-timeout:
			e.t.Fatalf("%s: no %q for %q", e.addr(), first, callID)
		}
	}
}

// respond answers req with status, echoing its dialog headers; toTag
// tags a To header that has none.
func (e *sipEnd) respond(dst, req, status, toTag string, extra ...string) {
	e.t.Helper()
	lines := []string{"SIP/2.0 " + status}
	for _, name := range []string{"Via", "From", "To", "Call-ID", "CSeq"} {
		for _, v := range headers(req, name) {
			if name == "To" && !strings.Contains(v, "tag=") {
				v += ";tag=" + toTag
			}
			lines = append(lines, name+": "+v)
		}
	}
	lines = append(lines, "Contact: <sip:end@"+e.addr()+">")
	e.send(dst, append(lines, extra...)...)
}

// replyTo is where a response to msg goes: its top Via's address (the
// SBC's listener, whichever node holds it).
func replyTo(msg string) string {
	via := header(msg, "Via")
	_, rest, _ := strings.Cut(via, " ")
	host, _, _ := strings.Cut(rest, ";")
	return host
}

func headers(msg, name string) []string {
	var out []string
	for _, l := range strings.Split(msg, "\r\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.EqualFold(k, name) {
			out = append(out, strings.TrimSpace(v))
		}
	}
	return out
}

func header(msg, name string) string {
	if h := headers(msg, name); len(h) > 0 {
		return h[0]
	}
	return ""
}

func tagOf(h string) string {
	_, tag, _ := strings.Cut(h, "tag=")
	tag, _, _ = strings.Cut(tag, ";")
	return tag
}

// body is a SIP message's body.
func body(msg string) string {
	_, b, _ := strings.Cut(msg, "\r\n\r\n")
	return b
}
