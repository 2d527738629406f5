package e2e

import (
	"crypto/md5"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ghettovoice/gosip/sip"
	"github.com/gorilla/websocket"

	"github.com/sbc-project/sbc/b2bua/sipmsg"
	"github.com/sbc-project/sbc/internal/config"
)

// UA is a minimal SIP user agent for tests: it writes raw messages and
// reads whole ones back, over UDP or a WebSocket, the way a phone or a
// browser would. It records everything it received.
type UA struct {
	T        *testing.T
	Kind     string // UDP, WS or WSS
	UDP      *net.UDPConn
	WS       *websocket.Conn
	SBC      string
	Parser   *sipmsg.Parser
	Received []string
	Host     string // what it puts in Via/Contact
}

func DialUA(t *testing.T, kind, sbc string) *UA {
	t.Helper()
	return DialUAFrom(t, kind, sbc, CallerIP())
}

// DialUAFrom is DialUA from another loopback source address (an attacker,
// a second phone).
func DialUAFrom(t *testing.T, kind, sbc, ip string) *UA {
	t.Helper()
	u := &UA{T: t, Kind: kind, SBC: sbc, Parser: sipmsg.NewParser(sipmsg.Limits{})}
	switch kind {
	case "UDP":
		c, err := net.DialUDP("udp", &net.UDPAddr{IP: net.ParseIP(ip)}, MustUDPAddr(t, sbc))
		if err != nil {
			t.Fatal(err)
		}
		u.UDP = c
		u.Host = c.LocalAddr().String()
	case "WS", "WSS":
		d := websocket.Dialer{Subprotocols: []string{"sip"}, HandshakeTimeout: 5 * time.Second,
			TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, // the SBC's self-signed default
			NetDial: func(network, addr string) (net.Conn, error) {
				return (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}).Dial(network, addr)
			}}
		scheme := "ws"
		if kind == "WSS" {
			scheme = "wss"
		}
		c, resp, err := d.Dial(scheme+"://"+sbc+"/", http.Header{})
		if err != nil {
			t.Fatalf("websocket dial: %v (%v)", err, resp)
		}
		if c.Subprotocol() != "sip" {
			t.Fatalf("subprotocol %q", c.Subprotocol())
		}
		u.WS = c
		u.Host = "df7jal23ls0d.invalid" // what JsSIP puts in Via and Contact
	}
	t.Cleanup(u.Close)
	return u
}

func MustUDPAddr(t *testing.T, s string) *net.UDPAddr {
	a, err := net.ResolveUDPAddr("udp", s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func (u *UA) Close() {
	if u.UDP != nil {
		u.UDP.Close()
	}
	if u.WS != nil {
		u.WS.Close()
	}
}

func (u *UA) Send(msg string) {
	u.T.Helper()
	msg = strings.ReplaceAll(msg, "\n", "\r\n")
	var err error
	if u.UDP != nil {
		_, err = u.UDP.Write([]byte(msg))
	} else {
		err = u.WS.WriteMessage(websocket.TextMessage, []byte(msg))
	}
	if err != nil {
		u.T.Fatalf("send: %v", err)
	}
}

// recv returns the next message, parsed.
func (u *UA) Recv(timeout time.Duration) sip.Message {
	u.T.Helper()
	m, err := u.TryRecv(timeout)
	if err != nil {
		u.T.Fatalf("recv: %v", err)
	}
	return m
}

// tryRecv returns the next message, parsed, or the read error (a timeout
// when nothing came: what a test expects of a party that must get nothing).
func (u *UA) TryRecv(timeout time.Duration) (sip.Message, error) {
	u.T.Helper()
	buf := make([]byte, 65535)
	var data []byte
	if u.UDP != nil {
		_ = u.UDP.SetReadDeadline(time.Now().Add(timeout))
		n, err := u.UDP.Read(buf)
		if err != nil {
			return nil, err
		}
		data = buf[:n]
	} else {
		// A WebSocket read that timed out leaves the connection unusable
		// for reading (gorilla/websocket): a timeout is the end of it.
		_ = u.WS.SetReadDeadline(time.Now().Add(timeout))
		_, d, err := u.WS.ReadMessage()
		if err != nil {
			return nil, err
		}
		data = d
	}
	u.Received = append(u.Received, string(data))
	m, err := u.Parser.Parse(data)
	if err != nil {
		u.T.Fatalf("bad message from sbc: %v\n%s", err, data)
	}
	return m, nil
}

// expect reads messages until a response with the given code arrives,
// skipping provisional ones below it.
func (u *UA) Expect(code int) sip.Response {
	u.T.Helper()
	for {
		m := u.Recv(10 * time.Second)
		res, ok := m.(sip.Response)
		if !ok {
			u.T.Fatalf("want %d, got request %s", code, m.Short())
		}
		if int(res.StatusCode()) == code {
			return res
		}
		if res.StatusCode() >= 200 {
			u.T.Fatalf("want %d, got %d %s", code, res.StatusCode(), res.Reason())
		}
	}
}

// call is one dialog the test UA runs as caller.
type UACall struct {
	U       *UA
	CallID  string
	FromTag string
	toTag   string
	Branch  string
	target  string // remote target from the 2xx Contact
	To      string
	Seq     int
}

// CallerSDP is alice's offer: PCMU and telephone-event from CallerIP
// port 49170.
func CallerSDP() string {
	return `v=0
o=alice 2890844526 2890844526 IN IP4 ` + CallerIP() + `
s=-
c=IN IP4 ` + CallerIP() + `
t=0 0
m=audio 49170 RTP/AVP 0 101
a=rtpmap:0 PCMU/8000
a=rtpmap:101 telephone-event/8000
a=sendrecv
`
}

func (u *UA) Invite(user string, extra string) *UACall {
	c := &UACall{U: u, CallID: sipmsg.NewToken(8) + "@caller.example", FromTag: sipmsg.NewToken(4),
		Branch: "z9hG4bK" + sipmsg.NewToken(6), To: "sip:" + user + "@" + u.SBC, Seq: 1}
	body := strings.ReplaceAll(CallerSDP(), "\n", "\r\n")
	u.Send(fmt.Sprintf(`INVITE %s SIP/2.0
Via: SIP/2.0/%s %s;branch=%s;rport
Max-Forwards: 70
From: "Alice" <sip:alice@caller.example>;tag=%s
To: <%s>
Call-ID: %s
CSeq: 1 INVITE
Contact: <sip:alice@%s;transport=%s>
User-Agent: SecretPhone/1.0
%sContent-Type: application/sdp
Content-Length: %d

`, c.To, u.Kind, u.Host, c.Branch, c.FromTag, c.To, c.CallID, u.Host, strings.ToLower(u.Kind), extra, len(body)) + strings.ReplaceAll(body, "\r\n", "\n"))
	return c
}

func (c *UACall) Answered(res sip.Response) {
	c.toTag = sipmsg.ToTag(res)
	if u := sipmsg.ContactURI(res); u != nil {
		c.target = u.String()
	}
}

func (c *UACall) Ack() {
	c.c("ACK", 1, "")
}

func (c *UACall) Bye() {
	c.Seq++
	c.c("BYE", c.Seq, "")
}

// c sends an in-dialog request with CSeq seq.
func (c *UACall) c(method string, seq int, body string) {
	c.send(method, seq, "application/sdp", body)
}

// cancel sends CANCEL for the call's INVITE (same branch, RFC 3261 9.1).
func (c *UACall) Cancel() { c.sameBranch("CANCEL") }

// ackFailure sends the ACK of a non-2xx final answer (same branch).
func (c *UACall) AckFailure(toTag string) {
	c.toTag = toTag
	c.sameBranch("ACK")
	c.toTag = ""
}

func (c *UACall) sameBranch(method string) {
	u := c.U
	to := "<" + c.To + ">"
	if c.toTag != "" {
		to += ";tag=" + c.toTag
	}
	u.Send(fmt.Sprintf(`%s %s SIP/2.0
Via: SIP/2.0/%s %s;branch=%s;rport
Max-Forwards: 70
From: "Alice" <sip:alice@caller.example>;tag=%s
To: %s
Call-ID: %s
CSeq: 1 %s
Content-Length: 0

`, method, c.To, u.Kind, u.Host, c.Branch, c.FromTag, to, c.CallID, method))
}

// respondTo answers a request the SBC sent to the test UA.
func (u *UA) RespondTo(req sip.Request, code int, sdp string, extra ...string) {
	var b strings.Builder
	fmt.Fprintf(&b, "SIP/2.0 %d OK\n", code)
	for _, h := range req.GetHeaders("Via") {
		b.WriteString(h.String() + "\n")
	}
	from, _ := req.From()
	to, _ := req.To()
	b.WriteString(from.String() + "\n" + to.String() + "\n")
	fmt.Fprintf(&b, "Call-ID: %s\n", sipmsg.CallID(req))
	cseq, _ := req.CSeq()
	b.WriteString(cseq.String() + "\n")
	fmt.Fprintf(&b, "Contact: <sip:alice@%s;transport=%s>\n", u.Host, strings.ToLower(u.Kind))
	for _, e := range extra {
		b.WriteString(e + "\n")
	}
	body := strings.ReplaceAll(sdp, "\n", "\r\n")
	if body != "" {
		b.WriteString("Content-Type: application/sdp\n")
	}
	fmt.Fprintf(&b, "Content-Length: %d\n\n", len(body))
	u.Send(b.String() + sdp)
}

// expectReq reads until a request with the given method arrives, skipping
// responses (retransmitted provisionals and the like).
func (u *UA) ExpectReq(method string) sip.Request {
	u.T.Helper()
	for {
		m := u.Recv(10 * time.Second)
		if req, ok := m.(sip.Request); ok && string(req.Method()) == method {
			return req
		}
	}
}

// request sends an in-dialog request with a body and the next CSeq.
func (c *UACall) Request(method, ctype, body string) {
	c.Seq++
	c.send(method, c.Seq, ctype, body)
}

func (c *UACall) send(method string, seq int, ctype, body string) {
	u := c.U
	ct := ""
	if body != "" {
		ct = "Content-Type: " + ctype + "\n"
	}
	u.Send(fmt.Sprintf(`%s %s SIP/2.0
Via: SIP/2.0/%s %s;branch=z9hG4bK%s;rport
Max-Forwards: 70
From: "Alice" <sip:alice@caller.example>;tag=%s
To: <%s>;tag=%s
Call-ID: %s
CSeq: %d %s
Contact: <sip:alice@%s;transport=%s>
%sContent-Length: %d

%s`, method, c.target, u.Kind, u.Host, sipmsg.NewToken(6), c.FromTag, c.To, c.toTag, c.CallID, seq, method,
		u.Host, strings.ToLower(u.Kind), ct, len(strings.ReplaceAll(body, "\n", "\r\n")), body))
}

// OptionsTo is an out-of-dialog OPTIONS from u to the SBC.
func OptionsTo(u *UA) string {
	return "OPTIONS sip:" + u.SBC + " SIP/2.0\n" +
		"Via: SIP/2.0/" + u.Kind + " " + u.Host + ";branch=z9hG4bK" + sipmsg.NewToken(8) + ";rport\n" +
		"Max-Forwards: 70\n" +
		"From: <sip:alice@caller.example>;tag=opt1\n" +
		"To: <sip:" + u.SBC + ">\n" +
		"Call-ID: " + sipmsg.NewToken(8) + "@caller.example\n" +
		"CSeq: 1 OPTIONS\n" +
		"Content-Length: 0\n\n"
}

// RegistrarSBC: REGISTER from the WebSocket listener goes to the local
// registrar; calls from UDP go to registered users. alice/secret exists.
func RegistrarSBC(t *testing.T, algorithms ...string) *SBC {
	return StartSBC(t, SBCOptions{Mutate: func(c *config.Config) {
		c.Users = []config.User{{Username: "alice", Password: "secret"}}
		if len(algorithms) > 0 {
			c.Auth.Algorithms = algorithms
		}
		c.Routes = []config.Route{
			{Name: "web-register", Match: config.Match{Listener: "ws"}, Target: config.TargetRegistered},
			{Name: "to-web", Match: config.Match{Listener: "udp"}, Target: config.TargetRegistered},
		}
	}})
}

var ReChallengeMD5 = regexp.MustCompile(`(?i)algorithm=MD5`)

// register sends a REGISTER for user with expires, answers a digest
// challenge with password (MD5, qop=auth) and returns the final answer.
func (u *UA) Register(user, password string, expires int) sip.Response {
	u.T.Helper()
	callID := sipmsg.NewToken(8) + "@web"
	send := func(seq int, auth string) {
		u.Send(fmt.Sprintf(`REGISTER sip:example.com SIP/2.0
Via: SIP/2.0/%s %s;branch=z9hG4bK%s;rport
Max-Forwards: 70
From: <sip:%s@example.com>;tag=%s
To: <sip:%s@example.com>
Call-ID: %s
CSeq: %d REGISTER
Contact: <sip:%s@%s;transport=%s>;expires=%d
%sContent-Length: 0

`, u.Kind, u.Host, sipmsg.NewToken(6), user, sipmsg.NewToken(4), user, callID, seq, user, u.Host, strings.ToLower(u.Kind), expires, auth))
	}
	send(1, "")
	res := u.ExpectFinal()
	if res.StatusCode() != 401 {
		return res
	}
	var chal string
	for _, h := range res.GetHeaders("WWW-Authenticate") {
		if ReChallengeMD5.MatchString(h.Value()) {
			chal = h.Value()
		}
	}
	if chal == "" {
		u.T.Fatalf("no MD5 challenge in %v", res.GetHeaders("WWW-Authenticate"))
	}
	param := func(name string) string {
		m := regexp.MustCompile(name + `="?([^",]*)"?`).FindStringSubmatch(chal)
		if m == nil {
			return ""
		}
		return m[1]
	}
	realm, nonce, opaque := param("realm"), param("nonce"), param("opaque")
	h := func(s string) string { sum := md5.Sum([]byte(s)); return hex.EncodeToString(sum[:]) }
	cnonce, nc := sipmsg.NewToken(8), "00000001"
	ha1, ha2 := h(user+":"+realm+":"+password), h("REGISTER:sip:example.com")
	resp := h(ha1 + ":" + nonce + ":" + nc + ":" + cnonce + ":auth:" + ha2)
	auth := fmt.Sprintf(`Authorization: Digest username="%s", realm="%s", nonce="%s", uri="sip:example.com", response="%s", algorithm=MD5, cnonce="%s", qop=auth, nc=%s`,
		user, realm, nonce, resp, cnonce, nc)
	if opaque != "" {
		auth += fmt.Sprintf(`, opaque="%s"`, opaque)
	}
	send(2, auth+"\n")
	return u.ExpectFinal()
}

// expectFinal reads until a final response arrives.
func (u *UA) ExpectFinal() sip.Response {
	u.T.Helper()
	for {
		if res, ok := u.Recv(10 * time.Second).(sip.Response); ok && res.StatusCode() >= 200 {
			return res
		}
	}
}

// ReCallID finds the Call-ID headers in a message or a log.
var ReCallID = regexp.MustCompile(`(?mi)^(?:Call-ID|i)\s*:\s*(\S+)`)
