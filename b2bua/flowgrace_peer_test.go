package b2bua

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ghettovoice/gosip/sip"
	"github.com/gorilla/websocket"

	"github.com/sbc-project/sbc/b2bua/sipmsg"
	"github.com/sbc-project/sbc/b2bua/transport"
	"github.com/sbc-project/sbc/b2bua/trunkreg"
)

// The caller of the flow grace tests (flowgrace_test.go): a SIP client
// on a real WebSocket or TCP connection to the server.

// streamPeer is a SIP client on one WebSocket or TCP connection.
type streamPeer struct {
	t     testing.TB
	kind  transport.Kind
	ws    *websocket.Conn
	tcp   net.Conn
	host  string // its Via and Contact host
	msgs  chan sip.Message
	seq   atomic.Int64 // for branches
	sbc   netip.AddrPort
	user  string
	regCS int
}

func (g *graceSBC) dial(t testing.TB, kind transport.Kind, ip, user string) *streamPeer {
	t.Helper()
	p := &streamPeer{t: t, kind: kind, msgs: make(chan sip.Message, 32), user: user}
	local := &net.TCPAddr{IP: net.ParseIP(ip)}
	var next func() ([]byte, error)
	switch kind {
	case transport.WS:
		p.sbc = g.ws
		d := websocket.Dialer{Subprotocols: []string{"sip"}, HandshakeTimeout: 3 * time.Second, NetDial: func(_, addr string) (net.Conn, error) {
			return (&net.Dialer{LocalAddr: local}).Dial("tcp", addr)
		}}
		ws, resp, err := d.Dial("ws://"+g.ws.String()+"/", nil)
		if err != nil {
			t.Fatalf("websocket dial: %v", err)
		}
		_ = resp.Body.Close()
		p.ws, p.host = ws, sipmsg.NewToken(8)+".invalid"
		next = func() ([]byte, error) { _, b, err := ws.ReadMessage(); return b, err }
	default:
		p.sbc = g.tcp
		c, err := (&net.Dialer{LocalAddr: local}).Dial("tcp", g.tcp.String())
		if err != nil {
			t.Fatal(err)
		}
		p.tcp, p.host = c, c.LocalAddr().String()
		br := bufio.NewReader(c)
		next = func() ([]byte, error) { return readStreamMessage(br) }
	}
	go func() {
		defer close(p.msgs)
		for {
			b, err := next()
			if err != nil {
				return
			}
			if m, err := sipmsg.NewParser(sipmsg.Limits{}).Parse(b); err == nil {
				p.msgs <- m
			}
		}
	}()
	t.Cleanup(p.close)
	return p
}

// readStreamMessage reads one SIP message framed by Content-Length.
func readStreamMessage(br *bufio.Reader) ([]byte, error) {
	var head strings.Builder
	n := 0
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return nil, err
		}
		if line == "\r\n" && head.Len() == 0 {
			continue // keepalive
		}
		head.WriteString(line)
		if name, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(strings.TrimSpace(name), "Content-Length") {
			n, _ = strconv.Atoi(strings.TrimSpace(v))
		}
		if line == "\r\n" {
			break
		}
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(br, body); err != nil {
		return nil, err
	}
	return append([]byte(head.String()), body...), nil
}

func (p *streamPeer) close() {
	if p.ws != nil {
		_ = p.ws.Close()
	} else {
		_ = p.tcp.Close()
	}
}

func (p *streamPeer) send(lines ...string) {
	p.t.Helper()
	msg := strings.Join(lines, "\r\n")
	head, body, _ := strings.Cut(msg, "\r\n\r\n")
	msg = head + fmt.Sprintf("\r\nContent-Length: %d\r\n\r\n", len(body)) + body
	var err error
	if p.ws != nil {
		err = p.ws.WriteMessage(websocket.TextMessage, []byte(msg))
	} else {
		_, err = p.tcp.Write([]byte(msg))
	}
	if err != nil {
		p.t.Fatal(err)
	}
}

// answer sends a response to req.
func (p *streamPeer) answer(req sip.Message, status string) {
	p.t.Helper()
	lines := []string{"SIP/2.0 " + status}
	for _, v := range sipmsg.Values(req, "Via") {
		lines = append(lines, "Via: "+v)
	}
	p.send(append(lines, "From: "+sipmsg.Header(req, "From"), "To: "+sipmsg.Header(req, "To"), "Call-ID: "+sipmsg.CallID(req),
		"CSeq: "+sipmsg.Header(req, "CSeq"))...)
}

// recv returns the next message match accepts, skipping others.
func (p *streamPeer) recv(what string, match func(sip.Message) bool) sip.Message {
	p.t.Helper()
	timeout := time.After(wait)
	for {
		select {
		case m, ok := <-p.msgs:
			if !ok {
				p.t.Fatalf("waiting for %s: connection closed", what)
			}
			if match(m) {
				return m
			}
		case <-timeout:
			p.t.Fatalf("no %s", what)
		}
	}
}

func (p *streamPeer) via() string {
	return fmt.Sprintf("Via: SIP/2.0/%s %s;branch=z9hG4bKfg%s%d;rport", p.kind, p.host, sipmsg.NewToken(6), p.seq.Add(1))
}

// register registers the peer's user on its connection, with an RFC 5626
// instance unless instance is "", answering the digest challenge.
func (p *streamPeer) register(instance string) {
	p.t.Helper()
	ruri := "sip:" + p.sbc.String()
	contact := fmt.Sprintf("<sip:%s@%s;transport=%s;ob>", p.user, p.host, p.kind.Param())
	if instance != "" {
		contact += `;+sip.instance="<urn:uuid:` + instance + `>";reg-id=1`
	}
	req := func(extra ...string) []string {
		p.regCS++
		return append([]string{"REGISTER " + ruri + " SIP/2.0", p.via(), "Max-Forwards: 70",
			"From: <sip:" + p.user + "@example.com>;tag=r" + p.host, "To: <sip:" + p.user + "@example.com>",
			"Call-ID: reg-" + p.host, fmt.Sprintf("CSeq: %d REGISTER", p.regCS), "Contact: " + contact, "Expires: 600"}, extra...)
	}
	p.send(req()...)
	ch := p.recv("401 to REGISTER", isResponse(401, sip.REGISTER)).(sip.Response)
	h, err := trunkreg.Answer(ch, trunkreg.Credentials{User: p.user, Password: passwords[p.user], Method: "REGISTER", URI: ruri}, false)
	if err != nil {
		p.t.Fatal(err)
	}
	p.send(req(h.Name() + ": " + h.Value())...)
	p.recv("200 to REGISTER", isResponse(200, sip.REGISTER))
}

var passwords = map[string]string{"alice": "secret", "mallory": "secret2"}
