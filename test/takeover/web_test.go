package takeover

import (
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"net"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/pion/webrtc/v4"
)

// The WebRTC calls: a browser as JsSIP or SIP.js is one, written in Go.
// Its media is pion (browser, ends_test.go); its signalling a SIP
// WebSocket to the service address, registered with digest and an RFC
// 5626 instance. When its WebSocket closes (its node died) it connects
// again to the service address, now on node 2, and registers again with
// the same instance and Call-ID: the SBC moves its calls' route there.

const (
	wsPort     = 5062
	webCalls   = 5
	webUser    = "alice"
	webPass    = "alice-secret"
	wsHost     = "df7jal23ls0d.invalid" // what JsSIP puts in Via and Contact
	regDomain  = "example.com"          // the browsers' REGISTERs From domain: the SBC's registrar route
	webCallFmt = "takeover-web-%02d"
)

// wsPhone is one browser's SIP stack over a WebSocket.
type wsPhone struct {
	t        *testing.T
	tp       *topology
	instance string
	regSeq   int
	conn     atomic.Pointer[websocket.Conn]
	msgs     chan string
	closed   chan struct{} // closed when the current connection's reader ends
}

func newWSPhone(t *testing.T, tp *topology, i int) *wsPhone {
	t.Helper()
	p := &wsPhone{t: t, tp: tp, instance: fmt.Sprintf("00000000-0000-4000-8000-0000000000%02d", i), msgs: make(chan string, 64)}
	p.connect(5 * time.Second)
	t.Cleanup(func() { _ = p.conn.Load().Close() })
	return p
}

// connect dials the service address from the world namespace until it
// answers (within timeout), as a browser's reconnect loop does.
func (p *wsPhone) connect(timeout time.Duration) {
	p.t.Helper()
	d := websocket.Dialer{Subprotocols: []string{"sip"}, HandshakeTimeout: time.Second}
	var c *websocket.Conn
	waitFor(p.t, "the WebSocket to the service address", timeout, func() bool {
		var err error
		inNamespace(p.t, p.tp.world, func() {
			d.NetDial = (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(worldIP)}, Timeout: time.Second}).Dial
			c, _, err = d.Dial(fmt.Sprintf("ws://%s:%d/", serviceIP, wsPort), nil)
		})
		return err == nil
	})
	p.conn.Store(c)
	closed := make(chan struct{})
	p.closed = closed
	go func() {
		defer close(closed)
		for {
			_, m, err := c.ReadMessage()
			if err != nil {
				return
			}
			p.msgs <- string(m)
		}
	}()
}

// send writes a SIP message with its Content-Length.
func (p *wsPhone) send(lines ...string) {
	p.t.Helper()
	head, body, _ := strings.Cut(strings.Join(lines, "\r\n"), "\r\n\r\n")
	msg := head + fmt.Sprintf("\r\nContent-Length: %d\r\n\r\n", len(body)) + body
	if err := p.conn.Load().WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
		p.t.Fatalf("browser %s: send: %v", p.instance, err)
	}
}

// recv waits for a message whose first line starts with first, of
// Call-ID callID (any when empty); requests it does not wait for are
// answered 200 (a refresher's OPTIONS, a session refresh), other
// responses dropped.
func (p *wsPhone) recv(first, callID string) string {
	p.t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case m := <-p.msgs:
			if strings.HasPrefix(m, first) && (callID == "" || header(m, "Call-ID") == callID) {
				return m
			}
			if !strings.HasPrefix(m, "SIP/2.0") && !strings.HasPrefix(m, "ACK ") {
				p.respond(m, "200 OK")
			}
		case <-timeout:
			p.t.Fatalf("browser %s: no %q for %q", p.instance, first, callID)
		}
	}
}

// respond answers req over the WebSocket.
func (p *wsPhone) respond(req, status string) {
	p.t.Helper()
	lines := []string{"SIP/2.0 " + status}
	for _, name := range []string{"Via", "From", "To", "Call-ID", "CSeq"} {
		for _, v := range headers(req, name) {
			lines = append(lines, name+": "+v)
		}
	}
	p.send(lines...)
}

func (p *wsPhone) via(branch string) string {
	return "Via: SIP/2.0/WS " + wsHost + ";branch=z9hG4bK" + branch + ";rport"
}

// register registers alice with the phone's instance, answering the
// MD5 challenge; the same Call-ID for every registration of the phone.
func (p *wsPhone) register() {
	p.t.Helper()
	ruri := "sip:" + serviceIP
	req := func(extra ...string) []string {
		p.regSeq++
		return append([]string{"REGISTER " + ruri + " SIP/2.0", p.via(fmt.Sprintf("reg%s%d", p.instance[len(p.instance)-2:], p.regSeq)),
			"Max-Forwards: 70", "From: <sip:" + webUser + "@" + regDomain + ">;tag=r" + p.instance[len(p.instance)-2:],
			"To: <sip:" + webUser + "@" + regDomain + ">", "Call-ID: reg-" + p.instance, fmt.Sprintf("CSeq: %d REGISTER", p.regSeq),
			"Contact: <sip:" + webUser + "@" + wsHost + ";transport=ws;ob>;+sip.instance=\"<urn:uuid:" + p.instance + ">\";reg-id=1",
			"Expires: 600"}, extra...)
	}
	p.send(req()...)
	ch := p.recv("SIP/2.0 401", "reg-"+p.instance)
	p.send(req("Authorization: " + digestMD5(p.t, ch, "REGISTER", ruri))...)
	p.recv("SIP/2.0 200", "reg-"+p.instance)
}

var reParam = regexp.MustCompile(`(\w+)="?([^",]*)"?`)

// digestMD5 answers the MD5 challenge of a 401 (qop=auth).
func digestMD5(t *testing.T, res, method, uri string) string {
	t.Helper()
	var p map[string]string
	for _, h := range headers(res, "WWW-Authenticate") {
		if strings.Contains(strings.ToUpper(h), "ALGORITHM=MD5") {
			p = map[string]string{}
			for _, m := range reParam.FindAllStringSubmatch(h, -1) {
				p[strings.ToLower(m[1])] = m[2]
			}
		}
	}
	if p == nil {
		t.Fatalf("no MD5 challenge in %q", res)
	}
	h := func(s string) string { sum := md5.Sum([]byte(s)); return hex.EncodeToString(sum[:]) }
	cnonce, nc := "0a4f113b", "00000001"
	resp := h(h(webUser+":"+p["realm"]+":"+webPass) + ":" + p["nonce"] + ":" + nc + ":" + cnonce + ":auth:" + h(method+":"+uri))
	auth := fmt.Sprintf(`Digest username="%s", realm="%s", nonce="%s", uri="%s", response="%s", algorithm=MD5, cnonce="%s", qop=auth, nc=%s`,
		webUser, p["realm"], p["nonce"], uri, resp, cnonce, nc)
	if p["opaque"] != "" {
		auth += fmt.Sprintf(`, opaque="%s"`, p["opaque"])
	}
	return auth
}

// webCall is a browser's call to the PBX.
type webCall struct {
	id             string
	ph             *wsPhone
	br             *browser
	b              *rtpEnd
	aTag, target   string // the SBC's tag and Contact toward the browser
	bCallID, bFrom string // the B leg's dialog at the PBX
	bTo            string
}

// setupWebCall registers browser i, places its call through the service
// address to the PBX, which answers; media starts once ICE and DTLS are
// up.
func setupWebCall(t *testing.T, tp *topology, pbx *sipEnd, i int) *webCall {
	t.Helper()
	c := &webCall{id: fmt.Sprintf(webCallFmt, i), ph: newWSPhone(t, tp, i), br: newBrowser(t, tp, worldIP),
		b: newRTPEnd(t, tp, worldIP2, 0xc1000000+uint32(i))}
	c.ph.register()
	c.ph.send(append(c.request("INVITE", 1), "Content-Type: application/sdp", "", string(c.br.offer(t)))...)
	inv := pbx.recv("INVITE ", "")
	c.bCallID, c.bFrom, c.bTo = header(inv, "Call-ID"), header(inv, "From"), header(inv, "To")+";tag=pbx"+c.id
	pbx.respond(replyTo(inv), inv, "200 OK", "pbx"+c.id, "Content-Type: application/sdp", "", string(c.b.sdp()))
	pbx.recv("ACK ", c.bCallID)
	ok := c.ph.recv("SIP/2.0 200", c.id)
	c.aTag = tagOf(header(ok, "To"))
	c.target = strings.Trim(strings.SplitN(header(ok, "Contact"), ">", 2)[0], "<")
	c.ph.send(c.request("ACK", 1)...)
	if err := c.br.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: body(ok)}); err != nil {
		t.Fatalf("%s: browser: set answer: %v\n%s", c.id, err, body(ok))
	}
	c.b.dst <- servicePort(t, body(inv))
	return c
}

// request is a request of the browser's dialog.
func (c *webCall) request(method string, cseq int) []string {
	ruri, to := fmt.Sprintf("sip:1000@%s:%d", serviceIP, sipPort), fmt.Sprintf("<sip:1000@%s>", serviceIP)
	if c.aTag != "" {
		ruri, to = c.target, to+";tag="+c.aTag
	}
	return []string{fmt.Sprintf("%s %s SIP/2.0", method, ruri), c.ph.via(fmt.Sprintf("%s%s%d", c.id, strings.ToLower(method), cseq)),
		"Max-Forwards: 70", "From: <sip:" + webUser + "@" + serviceIP + ">;tag=w" + c.id, "To: " + to, "Call-ID: " + c.id,
		fmt.Sprintf("CSeq: %d %s", cseq, method), "Contact: <sip:" + webUser + "@" + wsHost + ";transport=ws;ob>"}
}

// reconnect waits for the phone's WebSocket to close (its node died),
// connects again to the service address and registers again.
func (c *webCall) reconnect(t *testing.T) {
	t.Helper()
	select {
	case <-c.ph.closed:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: the WebSocket to the dead node did not close", c.id)
	}
	c.ph.connect(10 * time.Second)
	c.ph.register()
}

// hangUp ends c through node 2: the browser's BYE over its new WebSocket
// (byBrowser) or the PBX's, which must reach the browser there; each is
// answered end to end.
func (c *webCall) hangUp(t *testing.T, pbx *sipEnd, byBrowser bool) {
	t.Helper()
	if byBrowser {
		c.ph.send(c.request("BYE", 2)...)
		bye := pbx.recv("BYE ", c.bCallID)
		pbx.respond(replyTo(bye), bye, "200 OK", "")
		c.ph.recv("SIP/2.0 200", c.id)
		return
	}
	sbc := fmt.Sprintf("%s:%d", serviceIP, sipPort)
	pbx.send(sbc, fmt.Sprintf("BYE sip:sbc@%s SIP/2.0", sbc), "Via: SIP/2.0/UDP "+pbx.addr()+";branch=z9hG4bKpbxbye"+c.id,
		"Max-Forwards: 70", "From: "+c.bTo, "To: "+c.bFrom, "Call-ID: "+c.bCallID, "CSeq: 9 BYE")
	bye := c.ph.recv("BYE ", c.id)
	c.ph.respond(bye, "200 OK")
	pbx.recv("SIP/2.0 200", c.bCallID)
}
