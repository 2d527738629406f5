package e2e

import (
	"errors"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ghettovoice/gosip/sip"
	"github.com/gorilla/websocket"

	"github.com/sbc-project/sbc/b2bua/sipmsg"
)

// SIPClient is a caller's SIP stack for the media tests: the connection of
// a UA (UDP from CallerIP, or a WebSocket) with a reader goroutine, so
// the test can wait for a response while the SBC sends requests at any
// time. Requests from the SBC are answered at once (by onRequest, else 200)
// and recorded; responses are queued for the dialog that waits for them.
type SIPClient struct {
	t   *testing.T
	ua  *UA
	wmu sync.Mutex // one writer at a time on the connection
	res chan sip.Response
	wg  sync.WaitGroup

	mu        sync.Mutex
	reqs      []sip.Request
	onRequest func(sip.Request) (code int, ctype, body string)
}

func NewSIPClient(t *testing.T, kind, addr string) *SIPClient {
	t.Helper()
	return NewSIPClientFrom(t, kind, addr, CallerIP())
}

// NewSIPClientFrom is NewSIPClient from source address ip (IPv4 or IPv6).
func NewSIPClientFrom(t *testing.T, kind, addr, ip string) *SIPClient {
	t.Helper()
	return StartSIPClient(t, DialUAFrom(t, kind, addr, ip))
}

// StartSIPClient takes over ua's connection (after what the test did on
// it directly: a registration) with a reader goroutine.
func StartSIPClient(t *testing.T, ua *UA) *SIPClient {
	t.Helper()
	c := &SIPClient{t: t, ua: ua, res: make(chan sip.Response, 64)}
	c.wg.Go(c.readLoop)
	t.Cleanup(c.close)
	return c
}

// close closes the connection and waits for the reader. Idempotent.
func (c *SIPClient) close() {
	c.ua.Close()
	c.wg.Wait()
}

// handle sets the answer to requests other than ACK (default 200 without
// a body). f runs on the reader goroutine.
func (c *SIPClient) Handle(f func(sip.Request) (code int, ctype, body string)) {
	c.mu.Lock()
	c.onRequest = f
	c.mu.Unlock()
}

func (c *SIPClient) read(buf []byte) ([]byte, error) {
	if c.ua.UDP != nil {
		n, err := c.ua.UDP.Read(buf)
		return buf[:n], err
	}
	_, data, err := c.ua.WS.ReadMessage()
	return data, err
}

func (c *SIPClient) readLoop() {
	parser := sipmsg.NewParser(sipmsg.Limits{})
	buf := make([]byte, 65535)
	for {
		data, err := c.read(buf)
		if err != nil {
			var ne net.Error
			if c.ua.UDP != nil && !errors.Is(err, net.ErrClosed) && !(errors.As(err, &ne) && ne.Timeout()) {
				continue // ICMP unreachable and the like
			}
			return
		}
		m, err := parser.Parse(data)
		if err != nil {
			c.t.Errorf("caller: bad message from sbc: %v\n%s", err, data)
			continue
		}
		switch m := m.(type) {
		case sip.Response:
			select {
			case c.res <- m:
			default:
				c.t.Errorf("caller: response queue full, dropped %s", m.Short())
			}
		case sip.Request:
			c.answer(m)
		}
	}
}

// answer records a request from the SBC and answers it.
func (c *SIPClient) answer(req sip.Request) {
	c.mu.Lock()
	c.reqs = append(c.reqs, req)
	f := c.onRequest
	c.mu.Unlock()
	if req.Method() == sip.ACK {
		return
	}
	code, ctype, body := 200, "", ""
	if f != nil {
		code, ctype, body = f(req)
	}
	c.write(c.response(req, code, ctype, body))
}

// requests returns the requests with the given method the SBC sent so far.
func (c *SIPClient) Requests(method sip.RequestMethod) []sip.Request {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []sip.Request
	for _, r := range c.reqs {
		if r.Method() == method {
			out = append(out, r)
		}
	}
	return out
}

func (c *SIPClient) response(req sip.Request, code int, ctype, body string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "SIP/2.0 %d %s\r\n", code, reasonPhrase(code))
	for _, h := range req.GetHeaders("Via") {
		b.WriteString(h.String() + "\r\n")
	}
	from, _ := req.From()
	to, _ := req.To()
	toStr := to.String()
	if sipmsg.ToTag(req) == "" {
		toStr += ";tag=" + sipmsg.NewToken(4)
	}
	b.WriteString(from.String() + "\r\n" + toStr + "\r\n")
	fmt.Fprintf(&b, "Call-ID: %s\r\n", sipmsg.CallID(req))
	cseq, _ := req.CSeq()
	b.WriteString(cseq.String() + "\r\n")
	fmt.Fprintf(&b, "Contact: <sip:alice@%s;transport=%s>\r\n", c.ua.Host, strings.ToLower(c.ua.Kind))
	return b.String() + bodyPart(ctype, body)
}

func reasonPhrase(code int) string {
	switch code {
	case 100:
		return "Trying"
	case 180:
		return "Ringing"
	case 183:
		return "Session Progress"
	case 200:
		return "OK"
	case 488:
		return "Not Acceptable Here"
	}
	return "Whatever"
}

// bodyPart is Content-Type (when there is a body), Content-Length, the
// blank line and the body with CRLF line ends.
func bodyPart(ctype, body string) string {
	body = CRLF(body)
	ct := ""
	if body != "" {
		ct = "Content-Type: " + ctype + "\r\n"
	}
	return fmt.Sprintf("%sContent-Length: %d\r\n\r\n%s", ct, len(body), body)
}

func CRLF(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\n", "\r\n")
}

func (c *SIPClient) write(msg string) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	var err error
	if c.ua.UDP != nil {
		_, err = c.ua.UDP.Write([]byte(msg))
	} else {
		err = c.ua.WS.WriteMessage(websocket.TextMessage, []byte(msg))
	}
	if err != nil {
		c.t.Errorf("caller: send: %v", err)
	}
}

// sipDialog is one call the SIPClient places.
type sipDialog struct {
	c       *SIPClient
	callID  string
	fromTag string
	toTag   string
	ruri    string
	target  string // remote target: the 2xx Contact
	Seq     int
	invSeq  int          // CSeq of the last INVITE, for its ACK
	Final   sip.Response // a final response pump read before await asked
}

// invite sends an INVITE with the SDP offer to user at the SBC.
func (c *SIPClient) Invite(user, sdp string) *sipDialog {
	d := &sipDialog{c: c, callID: sipmsg.NewToken(8) + "@media.example", fromTag: sipmsg.NewToken(4),
		ruri: "sip:" + user + "@" + c.ua.SBC, Seq: 1, invSeq: 1}
	d.target = d.ruri
	d.Send("INVITE", 1, "application/sdp", sdp)
	return d
}

// send writes a request of this dialog with CSeq seq.
func (d *sipDialog) Send(method string, seq int, ctype, body string) {
	u := d.c.ua
	to := "<" + d.ruri + ">"
	if d.toTag != "" {
		to += ";tag=" + d.toTag
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s SIP/2.0\r\n", method, d.target)
	fmt.Fprintf(&b, "Via: SIP/2.0/%s %s;branch=z9hG4bK%s;rport\r\n", u.Kind, u.Host, sipmsg.NewToken(6))
	b.WriteString("Max-Forwards: 70\r\n")
	fmt.Fprintf(&b, "From: \"Web\" <sip:web@media.example>;tag=%s\r\n", d.fromTag)
	fmt.Fprintf(&b, "To: %s\r\nCall-ID: %s\r\nCSeq: %d %s\r\n", to, d.callID, seq, method)
	fmt.Fprintf(&b, "Contact: <sip:web@%s;transport=%s>\r\n", u.Host, strings.ToLower(u.Kind))
	if method == "INVITE" || method == "UPDATE" {
		b.WriteString("Allow: INVITE, ACK, BYE, CANCEL, UPDATE, INFO, OPTIONS\r\n")
	}
	d.c.write(b.String() + bodyPart(ctype, body))
}

// await returns the final response to the request with CSeq seq,
// passing provisional ones with a To tag to early; it fails the test after
// timeout.
func (d *sipDialog) Await(seq int, timeout time.Duration, early func(sip.Response)) sip.Response {
	d.c.t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		if res := d.takeFinal(seq); res != nil {
			return res
		}
		select {
		case res := <-d.c.res:
			d.sort(res, seq, early)
		case <-deadline.C:
			d.c.t.Fatalf("caller: no final response to CSeq %d within %v", seq, timeout)
			return nil
		}
	}
}

// pump handles the responses to seq that have arrived, without waiting:
// provisional ones go to early, a final one is kept for await. It returns
// whether the final response is in.
func (d *sipDialog) pump(seq int, early func(sip.Response)) bool {
	for {
		select {
		case res := <-d.c.res:
			d.sort(res, seq, early)
		default:
			return d.Final != nil
		}
	}
}

func (d *sipDialog) sort(res sip.Response, seq int, early func(sip.Response)) {
	n, _ := sipmsg.CSeq(res)
	switch {
	case sipmsg.CallID(res) != d.callID || int(n) != seq:
		// a retransmission or another call's
	case res.StatusCode() >= 200:
		if d.Final == nil {
			d.Final = res
		}
	case early != nil && res.StatusCode() > 100:
		early(res)
	}
}

func (d *sipDialog) takeFinal(seq int) sip.Response {
	res := d.Final
	if res == nil {
		return nil
	}
	d.Final = nil
	if n, _ := sipmsg.CSeq(res); int(n) != seq {
		return nil
	}
	return res
}

// established takes the dialog state from a 2xx to the INVITE.
func (d *sipDialog) Established(res sip.Response) {
	d.toTag = sipmsg.ToTag(res)
	if u := sipmsg.ContactURI(res); u != nil {
		d.target = u.String()
	}
}

// ack acknowledges the 2xx to the last INVITE.
func (d *sipDialog) Ack() { d.Send("ACK", d.invSeq, "", "") }

// request sends an in-dialog request and returns its final response; a
// 2xx to a re-INVITE is acknowledged.
func (d *sipDialog) Request(method, ctype, body string) sip.Response {
	d.c.t.Helper()
	d.Seq++
	if method == "INVITE" {
		d.invSeq = d.Seq
	}
	d.Send(method, d.Seq, ctype, body)
	res := d.Await(d.Seq, 10*time.Second, nil)
	if method == "INVITE" && res.StatusCode() < 300 {
		d.Ack()
	}
	return res
}

// bye hangs up and expects 200.
func (d *sipDialog) Bye() {
	d.c.t.Helper()
	if res := d.Request("BYE", "", ""); res.StatusCode() != 200 {
		d.c.t.Errorf("BYE answered %d %s", res.StatusCode(), res.Reason())
	}
}

// sdpInfo is what the media tests read from an SDP body.
type sdpInfo struct {
	Addr   *net.UDPAddr // c= and the first m=audio port
	Dir    string       // sendrecv, sendonly, recvonly or inactive
	DTMFPT int          // telephone-event/8000 payload type, -1 without
	Audio  int          // first audio payload type that is not an event
	Proto  string
}

var (
	ReMLine   = regexp.MustCompile(`(?m)^m=audio (\d+) (\S+)((?: \d+)*)\s*$`)
	reEvent   = regexp.MustCompile(`(?mi)^a=rtpmap:(\d+) telephone-event/8000`)
	reDir     = regexp.MustCompile(`(?m)^a=(sendrecv|sendonly|recvonly|inactive)\s*$`)
	reConnect = regexp.MustCompile(`(?m)^c=IN IP[46] (\S+)`)
)

func ParseSDPInfo(body string) (sdpInfo, error) {
	info := sdpInfo{Dir: "sendrecv", DTMFPT: -1, Audio: -1}
	m := ReMLine.FindStringSubmatch(body)
	c := reConnect.FindStringSubmatch(body)
	if m == nil || c == nil {
		return info, fmt.Errorf("no m=audio or c= line in SDP:\n%s", body)
	}
	port, _ := strconv.Atoi(m[1])
	info.Addr = &net.UDPAddr{IP: net.ParseIP(c[1]), Port: port}
	info.Proto = m[2]
	if e := reEvent.FindStringSubmatch(body); e != nil {
		info.DTMFPT, _ = strconv.Atoi(e[1])
	}
	for _, f := range strings.Fields(m[3]) {
		if pt, _ := strconv.Atoi(f); pt != info.DTMFPT {
			info.Audio = pt
			break
		}
	}
	if d := reDir.FindStringSubmatch(body); d != nil {
		info.Dir = d[1]
	}
	return info, nil
}
