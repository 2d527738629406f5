package cluster

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

	"github.com/sbc-project/sbc/b2bua/sipmsg"
	"github.com/sbc-project/sbc/b2bua/trunkreg"
)

// phone is a SIP phone over UDP on its own loopback address, for the
// tests that need to hold calls open, answer one fork and not another:
// it registers and places calls with digest credentials, rings on the
// calls the SBC sends it (100 and 180 at once; the test answers, or the
// SBC cancels: 200 to the CANCEL, 487 to the INVITE), and answers BYE.
// Every call has an RTP socket that sends a PCMU packet every 20 ms to
// the far end once the call is up and counts what arrives.
type phone struct {
	t        *testing.T
	ip       string
	user, pw string
	conn     *net.UDPConn
	host     string // ip:port of the SIP socket
	wg       sync.WaitGroup

	mu      sync.Mutex
	waiting map[string]chan sip.Response // Call-ID → responses to what it sent
	calls   map[string]*inCall           // Call-ID → a call the SBC sent it
	ring    chan *inCall                 // new calls, for the test
}

func newPhone(t *testing.T, ip, user, pw string) *phone {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(ip)})
	if err != nil {
		t.Fatal(err)
	}
	p := &phone{t: t, ip: ip, user: user, pw: pw, conn: c, host: c.LocalAddr().String(),
		waiting: map[string]chan sip.Response{}, calls: map[string]*inCall{}, ring: make(chan *inCall, 16)}
	p.wg.Go(p.read)
	t.Cleanup(func() { c.Close(); p.wg.Wait() })
	return p
}

func (p *phone) read() {
	parser := sipmsg.NewParser(sipmsg.Limits{})
	buf := make([]byte, 65535)
	for {
		n, src, err := p.conn.ReadFromUDP(buf)
		if errors.Is(err, net.ErrClosed) {
			return
		} else if err != nil {
			continue
		}
		m, err := parser.Parse(buf[:n])
		if err != nil {
			p.t.Errorf("%s: bad message: %v\n%s", p.host, err, buf[:n])
			continue
		}
		switch m := m.(type) {
		case sip.Response:
			p.mu.Lock()
			ch := p.waiting[sipmsg.CallID(m)]
			p.mu.Unlock()
			if ch != nil {
				select {
				case ch <- m:
				default:
				}
			}
		case sip.Request:
			p.request(m, src)
		}
	}
}

// request handles a request from the SBC.
func (p *phone) request(req sip.Request, src *net.UDPAddr) {
	id := sipmsg.CallID(req)
	p.mu.Lock()
	c := p.calls[id]
	if c == nil && req.Method() == sip.INVITE && sipmsg.ToTag(req) == "" {
		c = &inCall{p: p, inv: req, src: src, tag: sipmsg.NewToken(6), cancelled: make(chan struct{}),
			acked: make(chan struct{}), ended: make(chan struct{})}
		p.calls[id] = c
		p.mu.Unlock()
		p.send(c.response(req, 100, "Trying", ""), src)
		c.reply(180, "Ringing", "")
		select {
		case p.ring <- c:
		default:
			p.t.Errorf("%s: more calls ringing than the test took", p.host)
		}
		return
	}
	p.mu.Unlock()
	switch {
	case c == nil:
		p.send(response(req, 481, "Call/Transaction Does Not Exist", "", ""), src)
	case req.Method() == sip.INVITE && sipmsg.ToTag(req) == "":
		c.retransmit() // the SBC did not hear us yet
	default:
		c.request(req, src)
	}
}

func (p *phone) send(msg string, dst *net.UDPAddr) {
	if _, err := p.conn.WriteToUDP([]byte(msg), dst); err != nil && !errors.Is(err, net.ErrClosed) {
		p.t.Errorf("%s: send: %v", p.host, err)
	}
}

// await returns the next final response of call id to method within
// timeout, or nil.
func (p *phone) await(ch chan sip.Response, method sip.RequestMethod, timeout time.Duration) sip.Response {
	deadline := time.After(timeout)
	for {
		select {
		case res := <-ch:
			if _, m := sipmsg.CSeq(res); m == method && res.StatusCode() >= 200 {
				return res
			}
		case <-deadline:
			return nil
		}
	}
}

func (p *phone) listen(callID string) chan sip.Response {
	ch := make(chan sip.Response, 32)
	p.mu.Lock()
	p.waiting[callID] = ch
	p.mu.Unlock()
	return ch
}

// register registers the phone's user at node addr (digest, 300 s) and
// fails the test unless it gets 200.
func (p *phone) register(addr string) {
	p.t.Helper()
	dst := udpAddr(p.t, addr)
	callID := sipmsg.NewToken(10) + "@" + p.ip
	ch := p.listen(callID)
	tag := sipmsg.NewToken(6)
	auth := ""
	for seq := 1; seq <= 2; seq++ {
		p.send(fmt.Sprintf("REGISTER sip:example.com SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bK%s;rport\r\n"+
			"Max-Forwards: 70\r\nFrom: <sip:%s@example.com>;tag=%s\r\nTo: <sip:%s@example.com>\r\nCall-ID: %s\r\n"+
			"CSeq: %d REGISTER\r\nContact: <sip:%s@%s>\r\nExpires: 300\r\n%sContent-Length: 0\r\n\r\n",
			p.host, sipmsg.NewToken(8), p.user, tag, p.user, callID, seq, p.user, p.host, auth), dst)
		res := p.await(ch, sip.REGISTER, 10*time.Second)
		switch {
		case res == nil:
			p.t.Fatalf("%s: no answer to REGISTER at %s", p.user, addr)
		case res.StatusCode() == 200:
			return
		case res.StatusCode() == 401 && seq == 1:
			h, err := trunkreg.Answer(res, trunkreg.Credentials{User: p.user, Password: p.pw, Method: "REGISTER", URI: "sip:example.com"}, false)
			if err != nil {
				p.t.Fatal(err)
			}
			auth = h.String() + "\r\n"
		default:
			p.t.Fatalf("%s: REGISTER at %s: %d %s", p.user, addr, res.StatusCode(), res.Reason())
		}
	}
}

// outCall is a call the phone placed.
type outCall struct {
	p                      *phone
	dst                    *net.UDPAddr
	callID, fromTag, toTag string
	ruri, target, branch   string
	seq                    int
	res                    chan sip.Response
	media                  *rtpEnd
}

// call places a call to user at node addr, answering a proxy challenge
// with the phone's credentials, and returns it with the final answer
// (nil: none within 20 s). Every final answer is acknowledged; a 2xx
// starts the media.
func (p *phone) call(addr, user string) (*outCall, sip.Response) {
	c := &outCall{p: p, dst: udpAddr(p.t, addr), callID: sipmsg.NewToken(10) + "@" + p.ip, fromTag: sipmsg.NewToken(6),
		ruri: "sip:" + user + "@" + addr, media: newRTPEnd(p.t, p.ip)}
	c.target = c.ruri
	c.res = p.listen(c.callID)
	auth := ""
	for {
		c.seq++
		c.branch = "z9hG4bK" + sipmsg.NewToken(8)
		body := sdp(p.ip, c.media.port())
		p.send(c.request("INVITE", c.branch, c.seq, auth+"Content-Type: application/sdp\r\n", body), c.dst)
		res := p.await(c.res, sip.INVITE, 20*time.Second)
		if res == nil {
			return c, nil
		}
		code := int(res.StatusCode())
		if code >= 300 {
			c.toTag = sipmsg.ToTag(res)
			p.send(c.request("ACK", c.branch, c.seq, "", ""), c.dst) // same branch: the ACK of a failure
			c.toTag = ""
		}
		if code == 407 && auth == "" {
			h, err := trunkreg.Answer(res, trunkreg.Credentials{User: p.user, Password: p.pw, Method: "INVITE", URI: c.ruri}, false)
			if err != nil {
				p.t.Errorf("%s: %v", p.user, err) // call may run off the test goroutine
				return c, res
			}
			auth = h.String() + "\r\n"
			continue
		}
		if code < 300 {
			c.toTag = sipmsg.ToTag(res)
			if u := sipmsg.ContactURI(res); u != nil {
				c.target = u.String()
			}
			p.send(c.request("ACK", "z9hG4bK"+sipmsg.NewToken(8), c.seq, "", ""), c.dst)
			c.media.start(p.t, string(res.Body()))
		}
		return c, res
	}
}

// dial sends a call to user at node addr without credentials and
// returns at once; cancel and failed go on with it.
func (p *phone) dial(addr, user string) *outCall {
	c := &outCall{p: p, dst: udpAddr(p.t, addr), callID: sipmsg.NewToken(10) + "@" + p.ip, fromTag: sipmsg.NewToken(6),
		ruri: "sip:" + user + "@" + addr, media: newRTPEnd(p.t, p.ip), seq: 1, branch: "z9hG4bK" + sipmsg.NewToken(8)}
	c.target = c.ruri
	c.res = p.listen(c.callID)
	body := sdp(p.ip, c.media.port())
	p.send(c.request("INVITE", c.branch, c.seq, "Content-Type: application/sdp\r\n", body), c.dst)
	return c
}

// cancel cancels the call's INVITE (RFC 3261 9.1: its branch and CSeq).
func (c *outCall) cancel() {
	c.p.send(c.request("CANCEL", c.branch, c.seq, "", ""), c.dst)
}

// failed waits for the final answer to the INVITE, acknowledges it and
// returns it (nil: none within 20 s, or a 2xx).
func (c *outCall) failed() sip.Response {
	res := c.p.await(c.res, sip.INVITE, 20*time.Second)
	if res == nil || res.StatusCode() < 300 {
		return nil
	}
	c.toTag = sipmsg.ToTag(res)
	c.p.send(c.request("ACK", c.branch, c.seq, "", ""), c.dst)
	return res
}

// request renders a request of the call.
func (c *outCall) request(method, branch string, seq int, extra, body string) string {
	to := "<" + c.ruri + ">"
	if c.toTag != "" {
		to += ";tag=" + c.toTag
	}
	ruri := c.target
	if method == "INVITE" || method == "CANCEL" || (method == "ACK" && c.branch == branch) {
		ruri = c.ruri // the INVITE's own (RFC 3261 9.1, 17.1.1.3)
	}
	return fmt.Sprintf("%s %s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=%s;rport\r\nMax-Forwards: 70\r\n"+
		"From: <sip:%s@example.com>;tag=%s\r\nTo: %s\r\nCall-ID: %s\r\nCSeq: %d %s\r\nContact: <sip:%s@%s>\r\n%sContent-Length: %d\r\n\r\n%s",
		method, ruri, c.p.host, branch, c.p.user, c.fromTag, to, c.callID, seq, method, c.p.user, c.p.host, extra, len(body), body)
}

// hangUp sends BYE and fails the test unless it gets 200.
func (c *outCall) hangUp() {
	c.p.t.Helper()
	c.media.stop()
	c.seq++
	c.p.send(c.request("BYE", "z9hG4bK"+sipmsg.NewToken(8), c.seq, "", ""), c.dst)
	if res := c.p.await(c.res, sip.BYE, 10*time.Second); res == nil || res.StatusCode() != 200 {
		c.p.t.Errorf("%s: BYE: %v", c.p.user, res)
	}
}

// inCall is a call the SBC sent the phone.
type inCall struct {
	p   *phone
	inv sip.Request
	src *net.UDPAddr
	tag string

	mu                      sync.Mutex
	media                   *rtpEnd // set by answer
	last                    string  // the last response to the INVITE
	done                    bool    // answered or cancelled: no other final answer
	cancelled, acked, ended chan struct{}
}

func (c *inCall) response(req sip.Request, code int, reason, body string) string {
	return response(req, code, reason, c.tag, "Contact: <sip:"+c.p.user+"@"+c.p.host+">\r\n"+body)
}

// reply answers the INVITE (body: "" or an SDP).
func (c *inCall) reply(code int, reason, body string) {
	part := ""
	if body != "" {
		part = "Content-Type: application/sdp\r\n"
	}
	msg := c.response(c.inv, code, reason, part+"Content-Length: "+strconv.Itoa(len(body))+"\r\n\r\n"+body)
	c.mu.Lock()
	c.last = msg
	c.mu.Unlock()
	c.p.send(msg, c.src)
}

func (c *inCall) retransmit() {
	c.mu.Lock()
	msg := c.last
	c.mu.Unlock()
	c.p.send(msg, c.src)
}

// answer answers the call with 200 and starts its media; false if it
// was cancelled first.
func (c *inCall) answer() bool { return answerAll(c) }

// answerAll answers the calls at once: their media are made first, then
// the 200s go out back to back, so that none waits on another's set-up
// (false if a CANCEL reached any of them first: that one is not
// answered).
func answerAll(calls ...*inCall) bool {
	for _, c := range calls {
		c.mu.Lock()
		if c.done {
			c.mu.Unlock()
			return false
		}
		c.done = true
		c.mu.Unlock()
	}
	for _, c := range calls {
		m := newRTPEnd(c.p.t, c.p.ip)
		c.mu.Lock()
		c.media = m
		c.mu.Unlock()
	}
	for _, c := range calls {
		c.reply(200, "OK", sdp(c.p.ip, c.media.port()))
	}
	for _, c := range calls {
		c.media.start(c.p.t, string(c.inv.Body()))
	}
	return true
}

// request handles an ACK, CANCEL, BYE or anything else in the call.
func (c *inCall) request(req sip.Request, src *net.UDPAddr) {
	switch req.Method() {
	case sip.ACK:
		closeOnce(&c.mu, c.acked)
	case sip.CANCEL:
		c.p.send(response(req, 200, "OK", c.tag, "Content-Length: 0\r\n\r\n"), src)
		c.mu.Lock()
		ringing := !c.done
		c.done = true
		c.mu.Unlock()
		if ringing {
			c.reply(487, "Request Terminated", "")
			closeOnce(&c.mu, c.cancelled)
		}
	case sip.BYE:
		c.p.send(response(req, 200, "OK", c.tag, "Content-Length: 0\r\n\r\n"), src)
		c.mu.Lock()
		m := c.media
		c.mu.Unlock()
		if m != nil {
			m.stop()
		}
		closeOnce(&c.mu, c.ended)
	default:
		c.p.send(response(req, 200, "OK", c.tag, "Content-Length: 0\r\n\r\n"), src)
	}
}

func closeOnce(mu *sync.Mutex, ch chan struct{}) {
	mu.Lock()
	defer mu.Unlock()
	select {
	case <-ch:
	default:
		close(ch)
	}
}

// next returns the next call the SBC sends the phone, or fails the test.
func (p *phone) next(timeout time.Duration) *inCall {
	p.t.Helper()
	select {
	case c := <-p.ring:
		return c
	case <-time.After(timeout):
		p.t.Fatalf("%s on %s: no call within %s", p.user, p.host, timeout)
		return nil
	}
}

// response renders a response to req: its Via, From, Call-ID and CSeq,
// To with tag when it has none, then rest (headers, blank line, body).
func response(req sip.Request, code int, reason, tag, rest string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "SIP/2.0 %d %s\r\n", code, reason)
	for _, h := range req.GetHeaders("Via") {
		b.WriteString(h.String() + "\r\n")
	}
	from, _ := req.From()
	to, _ := req.To()
	b.WriteString(from.String() + "\r\n" + to.String())
	if sipmsg.ToTag(req) == "" && tag != "" {
		b.WriteString(";tag=" + tag)
	}
	cseq, _ := req.CSeq()
	fmt.Fprintf(&b, "\r\nCall-ID: %s\r\n%s\r\n", sipmsg.CallID(req), cseq.String())
	if !strings.Contains(rest, "Content-Length") {
		rest += "Content-Length: 0\r\n\r\n"
	}
	return b.String() + rest
}

func sdp(ip string, port int) string {
	return "v=0\r\no=- 1 1 IN IP4 " + ip + "\r\ns=-\r\nc=IN IP4 " + ip + "\r\nt=0 0\r\nm=audio " + strconv.Itoa(port) +
		" RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n"
}

var (
	reConn  = regexp.MustCompile(`(?m)^c=IN IP4 (\S+)`)
	reAudio = regexp.MustCompile(`(?m)^m=audio (\d+) `)
)

func udpAddr(t *testing.T, s string) *net.UDPAddr {
	t.Helper()
	a, err := net.ResolveUDPAddr("udp", s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}
