package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ghettovoice/gosip/sip"

	"github.com/sbc-project/sbc/b2bua/sipmsg"
)

// SIPPeer is a scripted SIP party on one address, over UDP or TCP, IPv4 or
// IPv6: a phone calling the SBC (DialPeer) or a trunk it calls
// (ListenPeer). It has an RTP socket on the same address.
type SIPPeer struct {
	t      *testing.T
	Kind   string // UDP or TCP
	IP     netip.Addr
	udp    *net.UDPConn
	ln     net.Listener // a TCP trunk: the SBC connects here
	conn   net.Conn     // the TCP connection
	br     *bufio.Reader
	peer   netip.AddrPort // where UDP messages go: the SBC
	parser *sipmsg.Parser
	RTP    *net.UDPConn
}

// newSIPPeer opens the peer's RTP socket and, for a trunk, its listener.
func newSIPPeer(t *testing.T, kind, ip string, listen bool) *SIPPeer {
	t.Helper()
	p := &SIPPeer{t: t, Kind: kind, IP: netip.MustParseAddr(ip), parser: sipmsg.NewParser(sipmsg.Limits{})}
	var err error
	if p.RTP, err = net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(ip)}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.RTP.Close() })
	switch {
	case kind == "UDP":
		if p.udp, err = net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(ip)}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { p.udp.Close() })
	case listen:
		if p.ln, err = net.Listen("tcp", net.JoinHostPort(ip, "0")); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { p.ln.Close() })
	}
	return p
}

// ListenPeer is a trunk on ip.
func ListenPeer(t *testing.T, kind, ip string) *SIPPeer { return newSIPPeer(t, kind, ip, true) }

// DialPeer is a phone on ip talking to the SBC at sbc.
func DialPeer(t *testing.T, kind, ip string, sbc netip.AddrPort) *SIPPeer {
	t.Helper()
	p := newSIPPeer(t, kind, ip, false)
	p.peer = sbc
	if kind == "TCP" {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
		c, err := d.Dial("tcp", sbc.String())
		if err != nil {
			t.Fatal(err)
		}
		p.setConn(c)
	}
	return p
}

func (p *SIPPeer) setConn(c net.Conn) {
	p.conn, p.br = c, bufio.NewReader(c)
	p.t.Cleanup(func() { c.Close() })
}

// addr is the peer's SIP address (what Via, Contact and the trunk URI name).
func (p *SIPPeer) Addr() netip.AddrPort {
	switch {
	case p.udp != nil:
		return netip.MustParseAddrPort(p.udp.LocalAddr().String())
	case p.ln != nil:
		return netip.MustParseAddrPort(p.ln.Addr().String())
	}
	return netip.MustParseAddrPort(p.conn.LocalAddr().String())
}

// rtpAddr is where the peer takes RTP.
func (p *SIPPeer) RTPAddr() netip.AddrPort {
	return netip.MustParseAddrPort(p.RTP.LocalAddr().String())
}

// sdp is the peer's audio offer or answer, in its own family.
func (p *SIPPeer) SDP() string {
	fam := "IP4"
	if p.IP.Is6() {
		fam = "IP6"
	}
	a := p.RTPAddr()
	return fmt.Sprintf("v=0\r\no=peer 1 1 IN %s %s\r\ns=-\r\nc=IN %s %s\r\nt=0 0\r\nm=audio %d RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n",
		fam, a.Addr(), fam, a.Addr(), a.Port())
}

// send writes one message (lines joined by \n become \r\n).
func (p *SIPPeer) send(msg string) {
	p.t.Helper()
	b := []byte(strings.ReplaceAll(strings.ReplaceAll(msg, "\r\n", "\n"), "\n", "\r\n"))
	var err error
	if p.udp != nil {
		_, err = p.udp.WriteToUDPAddrPort(b, p.peer)
	} else {
		_, err = p.conn.Write(b)
	}
	if err != nil {
		p.t.Fatalf("send: %v", err)
	}
}

// recv reads and parses the next message.
func (p *SIPPeer) recv(timeout time.Duration) sip.Message {
	p.t.Helper()
	data, err := p.read(timeout)
	if err != nil {
		p.t.Fatalf("%s peer %s: read: %v", p.Kind, p.Addr(), err)
	}
	m, err := p.parser.Parse(data)
	if err != nil {
		p.t.Fatalf("peer: bad message: %v\n%s", err, data)
	}
	return m
}

func (p *SIPPeer) read(timeout time.Duration) ([]byte, error) {
	deadline := time.Now().Add(timeout)
	if p.udp != nil {
		buf := make([]byte, 65535)
		_ = p.udp.SetReadDeadline(deadline)
		n, from, err := p.udp.ReadFromUDPAddrPort(buf)
		p.peer = from
		return buf[:n], err
	}
	if p.conn == nil { // a TCP trunk: the SBC's first message opens the connection
		_ = p.ln.(*net.TCPListener).SetDeadline(deadline)
		c, err := p.ln.Accept()
		if err != nil {
			return nil, err
		}
		p.setConn(c)
	}
	_ = p.conn.SetReadDeadline(deadline)
	var head strings.Builder
	length := 0
	for {
		line, err := p.br.ReadString('\n')
		if err != nil {
			return nil, err
		}
		head.WriteString(line)
		if line == "\r\n" {
			break
		}
		if name, v, ok := strings.Cut(line, ":"); ok && (strings.EqualFold(name, "Content-Length") || name == "l") {
			length, _ = strconv.Atoi(strings.TrimSpace(v))
		}
	}
	body := make([]byte, length)
	if _, err := io.ReadFull(p.br, body); err != nil {
		return nil, err
	}
	return append([]byte(head.String()), body...), nil
}

// expectReq reads until a request of method arrives.
func (p *SIPPeer) ExpectReq(method string) sip.Request {
	p.t.Helper()
	for {
		if req, ok := p.recv(5 * time.Second).(sip.Request); ok && string(req.Method()) == method {
			return req
		}
	}
}

// expectFinal reads until a final response arrives.
func (p *SIPPeer) ExpectFinal() sip.Response {
	p.t.Helper()
	for {
		if res, ok := p.recv(5 * time.Second).(sip.Response); ok && res.StatusCode() >= 200 {
			return res
		}
	}
}

// hostPort is how the peer names itself in Via and Contact.
func (p *SIPPeer) hostPort() string { return p.Addr().String() }

// request sends a request of a dialog: callID, tags, CSeq and an optional SDP body.
func (p *SIPPeer) Request(method, ruri, callID, fromTag, toTag string, seq int, body string) {
	to := "<sip:bob@sbc.example>"
	if toTag != "" {
		to += ";tag=" + toTag
	}
	ctype := ""
	if body != "" {
		ctype = "Content-Type: application/sdp\n"
	}
	p.send(fmt.Sprintf("%s %s SIP/2.0\nVia: SIP/2.0/%s %s;branch=z9hG4bK%s;rport\nMax-Forwards: 70\n"+
		"From: <sip:alice@caller.example>;tag=%s\nTo: %s\nCall-ID: %s\nCSeq: %d %s\n"+
		"Contact: <sip:alice@%s;transport=%s>\n%sContent-Length: %d\n\n%s",
		method, ruri, p.Kind, p.hostPort(), sipmsg.NewToken(6), fromTag, to, callID, seq, method,
		p.hostPort(), strings.ToLower(p.Kind), ctype, len(body), body))
}

// respond answers req with code, a To tag and an optional SDP body.
func (p *SIPPeer) Respond(req sip.Request, code int, tag, body string) {
	var b strings.Builder
	fmt.Fprintf(&b, "SIP/2.0 %d %s\n", code, reasonPhrase(code))
	for _, h := range req.GetHeaders("Via") {
		b.WriteString(h.String() + "\n")
	}
	from, _ := req.From()
	to, _ := req.To()
	b.WriteString(from.String() + "\n" + to.String())
	if sipmsg.ToTag(req) == "" {
		b.WriteString(";tag=" + tag)
	}
	cseq, _ := req.CSeq()
	fmt.Fprintf(&b, "\nCall-ID: %s\n%s\n", sipmsg.CallID(req), cseq.String())
	fmt.Fprintf(&b, "Contact: <sip:pbx@%s;transport=%s>\n", p.hostPort(), strings.ToLower(p.Kind))
	if body != "" {
		b.WriteString("Content-Type: application/sdp\n")
	}
	fmt.Fprintf(&b, "Content-Length: %d\n\n%s", len(body), body)
	p.send(b.String())
}
