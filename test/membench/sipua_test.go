package membench

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// A minimal SIP UAC and UAS over UDP for placing many calls through the
// SBC: one socket each for SIP, one RTP socket per call and side.

// header returns the first value of a header (long or compact name) in a
// SIP message, or "".
func header(msg, long, compact string) string {
	for line := range strings.Lines(msg) {
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			return ""
		}
		name, val, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		name = strings.TrimSpace(name)
		if strings.EqualFold(name, long) || (compact != "" && strings.EqualFold(name, compact)) {
			return strings.TrimSpace(val)
		}
	}
	return ""
}

// headers returns every header line (name: value) of those names, in order.
func headers(msg, long, compact string) []string {
	var out []string
	for line := range strings.Lines(msg) {
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			break
		}
		name, _, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		name = strings.TrimSpace(name)
		if strings.EqualFold(name, long) || (compact != "" && strings.EqualFold(name, compact)) {
			out = append(out, line)
		}
	}
	return out
}

// sdpMedia returns the c= address and m=audio port of a message's SDP.
func sdpMedia(msg string) (netip.AddrPort, error) {
	_, body, _ := strings.Cut(msg, "\r\n\r\n")
	var ip netip.Addr
	port := 0
	for line := range strings.Lines(body) {
		line = strings.TrimSpace(line)
		if v, ok := strings.CutPrefix(line, "c=IN IP4 "); ok {
			ip, _ = netip.ParseAddr(v)
		}
		if v, ok := strings.CutPrefix(line, "m=audio "); ok {
			f := strings.Fields(v)
			port, _ = strconv.Atoi(f[0])
		}
	}
	if !ip.IsValid() || port == 0 {
		return netip.AddrPort{}, fmt.Errorf("no media address in SDP:\n%s", body)
	}
	return netip.AddrPortFrom(ip, uint16(port)), nil
}

func sdp(ip string, port int) string {
	return "v=0\r\no=- 1 1 IN IP4 " + ip + "\r\ns=-\r\nc=IN IP4 " + ip + "\r\nt=0 0\r\nm=audio " +
		strconv.Itoa(port) + " RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n"
}

// rtpPhone is one side's RTP socket: it sends toward peer (once known)
// and counts what arrives.
type rtpPhone struct {
	conn *net.UDPConn
	peer atomic.Pointer[netip.AddrPort]
	recv atomic.Uint64
	seq  uint16
	ssrc uint32 // the UAS side's; a caller's phone sends its call number
}

func newRTPPhone(ip string) (*rtpPhone, error) {
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(ip)})
	if err != nil {
		return nil, err
	}
	p := &rtpPhone{conn: c}
	go func() {
		buf := make([]byte, 1500)
		for {
			if _, err := c.Read(buf); err != nil {
				return
			}
			p.recv.Add(1)
		}
	}()
	return p, nil
}

func (p *rtpPhone) port() int { return p.conn.LocalAddr().(*net.UDPAddr).Port }

// send sends one 172-byte PCMU packet to the peer, if known.
func (p *rtpPhone) send(ssrc uint32, pkt []byte) {
	peer := p.peer.Load()
	if peer == nil {
		return
	}
	p.seq++
	pkt[0], pkt[1] = 0x80, 0
	pkt[2], pkt[3] = byte(p.seq>>8), byte(p.seq)
	ts := uint32(p.seq) * 160
	pkt[4], pkt[5], pkt[6], pkt[7] = byte(ts>>24), byte(ts>>16), byte(ts>>8), byte(ts)
	pkt[8], pkt[9], pkt[10], pkt[11] = byte(ssrc>>24), byte(ssrc>>16), byte(ssrc>>8), byte(ssrc)
	_, _ = p.conn.WriteToUDPAddrPort(pkt, *peer)
}

// uas answers every INVITE with 200 OK and its own RTP phone, BYE and
// OPTIONS with 200 OK. A retransmitted INVITE gets the same answer.
type uas struct {
	conn *net.UDPConn
	ip   string
	mu   sync.Mutex
	ans  map[string][]byte // Call-ID → the 200 OK to the INVITE
	rtp  map[string]*rtpPhone
}

func newUAS(ip string) (*uas, error) {
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(ip)})
	if err != nil {
		return nil, err
	}
	u := &uas{conn: c, ip: ip, ans: map[string][]byte{}, rtp: map[string]*rtpPhone{}}
	go u.serve()
	return u, nil
}

func (u *uas) port() int { return u.conn.LocalAddr().(*net.UDPAddr).Port }

func (u *uas) serve() {
	buf := make([]byte, 65535)
	for {
		n, from, err := u.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		msg := string(buf[:n])
		method, _, _ := strings.Cut(msg, " ")
		switch method {
		case "INVITE":
			if res := u.answer(msg); res != nil {
				_, _ = u.conn.WriteToUDPAddrPort(res, from)
			}
		case "BYE", "OPTIONS", "CANCEL":
			_, _ = u.conn.WriteToUDPAddrPort([]byte(response(msg, "200 OK", "", "", "")), from)
		}
	}
}

func (u *uas) answer(msg string) []byte {
	id := header(msg, "Call-ID", "i")
	u.mu.Lock()
	defer u.mu.Unlock()
	if res, ok := u.ans[id]; ok {
		return res
	}
	media, err := sdpMedia(msg)
	if err != nil {
		return nil
	}
	ph, err := newRTPPhone(u.ip)
	if err != nil {
		return nil
	}
	ph.peer.Store(&media)
	ph.ssrc = 1<<20 + uint32(len(u.ans))
	contact := fmt.Sprintf("<sip:uas@%s:%d>", u.ip, u.port())
	res := []byte(response(msg, "200 OK", ";tag=uas"+strconv.Itoa(len(u.ans)), contact, sdp(u.ip, ph.port())))
	u.ans[id], u.rtp[id] = res, ph
	return res
}

// response builds a response to req, copying Via, Record-Route, From,
// Call-ID and CSeq, adding toTag to To unless it has one.
func response(req, status, toTag, contact, body string) string {
	var b strings.Builder
	b.WriteString("SIP/2.0 " + status + "\r\n")
	for _, h := range headers(req, "Via", "v") {
		b.WriteString(h + "\r\n")
	}
	for _, h := range headers(req, "Record-Route", "") {
		b.WriteString(h + "\r\n")
	}
	to := header(req, "To", "t")
	if !strings.Contains(to, ";tag=") {
		to += toTag
	}
	b.WriteString("From: " + header(req, "From", "f") + "\r\nTo: " + to + "\r\nCall-ID: " + header(req, "Call-ID", "i") +
		"\r\nCSeq: " + header(req, "CSeq", "") + "\r\n")
	if contact != "" {
		b.WriteString("Contact: " + contact + "\r\n")
	}
	if body != "" {
		b.WriteString("Content-Type: application/sdp\r\n")
	}
	b.WriteString("Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body)
	return b.String()
}

func (u *uas) close() {
	u.conn.Close()
	u.mu.Lock()
	defer u.mu.Unlock()
	for _, p := range u.rtp {
		p.conn.Close()
	}
}

// uac places calls to the SBC from one SIP socket.
type uac struct {
	conn *net.UDPConn
	ip   string
	sbc  netip.AddrPort
	mu   sync.Mutex
	legs map[string]*uacCall // by Call-ID
}

// uacCall is one call: answered is closed at the first 200 to the
// INVITE, byeDone at the 200 to the BYE.
type uacCall struct {
	id       string
	n        int
	rtp      *rtpPhone
	to       string // To of the 200 OK, with the tag
	target   string // request-URI of in-dialog requests (the Contact)
	routes   []string
	answered chan struct{}
	byeDone  chan struct{}
	once     sync.Once
}

func newUAC(ip string, sbc netip.AddrPort) (*uac, error) {
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(ip)})
	if err != nil {
		return nil, err
	}
	u := &uac{conn: c, ip: ip, sbc: sbc, legs: map[string]*uacCall{}}
	go u.serve()
	return u, nil
}

func (u *uac) port() int { return u.conn.LocalAddr().(*net.UDPAddr).Port }

func (u *uac) close() {
	u.conn.Close()
	u.mu.Lock()
	defer u.mu.Unlock()
	for _, c := range u.legs {
		c.rtp.conn.Close()
	}
}

// invite sends the INVITE of call n.
func (u *uac) invite(n int) (*uacCall, error) {
	ph, err := newRTPPhone(u.ip)
	if err != nil {
		return nil, err
	}
	c := &uacCall{id: fmt.Sprintf("mem-%d@%s", n, u.ip), n: n, rtp: ph,
		answered: make(chan struct{}), byeDone: make(chan struct{})}
	u.mu.Lock()
	u.legs[c.id] = c
	u.mu.Unlock()
	body := sdp(u.ip, ph.port())
	msg := fmt.Sprintf("INVITE sip:bench@%s SIP/2.0\r\n%s"+
		"To: <sip:bench@%s>\r\nContact: <sip:uac@%s:%d>\r\nContent-Type: application/sdp\r\nContent-Length: %d\r\n\r\n%s",
		u.sbc, u.common(c, "i", 1, "INVITE"), u.sbc.Addr(), u.ip, u.port(), len(body), body)
	_, err = u.conn.WriteToUDPAddrPort([]byte(msg), u.sbc)
	return c, err
}

// common is Via, Max-Forwards, From, Call-ID and CSeq.
func (u *uac) common(c *uacCall, kind string, seq int, method string) string {
	return fmt.Sprintf("Via: SIP/2.0/UDP %s:%d;branch=z9hG4bK-%s-%d-%d;rport\r\nMax-Forwards: 70\r\n"+
		"From: <sip:uac@%s>;tag=f%d\r\nCall-ID: %s\r\nCSeq: %d %s\r\n",
		u.ip, u.port(), kind, c.n, time.Now().UnixNano(), u.ip, c.n, c.id, seq, method)
}

// inDialog sends ACK or BYE on an answered call.
func (u *uac) inDialog(c *uacCall, seq int, method string) {
	var routes strings.Builder
	for i := len(c.routes) - 1; i >= 0; i-- { // Record-Route reversed
		routes.WriteString("Route: " + c.routes[i] + "\r\n")
	}
	msg := fmt.Sprintf("%s %s SIP/2.0\r\n%s%sTo: %s\r\nContent-Length: 0\r\n\r\n",
		method, c.target, u.common(c, strings.ToLower(method[:1]), seq, method), routes.String(), c.to)
	_, _ = u.conn.WriteToUDPAddrPort([]byte(msg), u.sbc)
}

func (u *uac) serve() {
	buf := make([]byte, 65535)
	for {
		n, _, err := u.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		msg := string(buf[:n])
		if !strings.HasPrefix(msg, "SIP/2.0 200") {
			continue // provisional responses; requests from the SBC
		}
		u.mu.Lock()
		c := u.legs[header(msg, "Call-ID", "i")]
		u.mu.Unlock()
		if c == nil {
			continue
		}
		switch {
		case strings.HasSuffix(header(msg, "CSeq", ""), "INVITE"):
			u.answered(c, msg)
		case strings.HasSuffix(header(msg, "CSeq", ""), "BYE"):
			closeOnce(c.byeDone)
		}
	}
}

// answered acknowledges a 200 to the INVITE (every copy of it) and, the
// first time, starts the call's media.
func (u *uac) answered(c *uacCall, msg string) {
	c.once.Do(func() {
		c.to = header(msg, "To", "t")
		c.target = strings.Trim(header(msg, "Contact", "m"), "<>")
		if i := strings.Index(c.target, ">"); i >= 0 {
			c.target = c.target[:i]
		}
		for _, h := range headers(msg, "Record-Route", "") {
			_, v, _ := strings.Cut(h, ":")
			c.routes = append(c.routes, strings.TrimSpace(v))
		}
		if media, err := sdpMedia(msg); err == nil {
			c.rtp.peer.Store(&media)
		}
	})
	u.inDialog(c, 1, "ACK")
	closeOnce(c.answered)
}

func closeOnce(ch chan struct{}) {
	select {
	case <-ch:
	default:
		close(ch)
	}
}
