package e2e

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/ghettovoice/gosip/sip"

	"github.com/sbc-project/sbc/b2bua/sipmsg"
)

// UAS is a scripted SIP peer on PBXIP over UDP, standing in for a
// PBX: it reads what the SBC sends and answers exactly as the test says.
type UAS struct {
	T      *testing.T
	Conn   *net.UDPConn
	Parser *sipmsg.Parser
	SBC    *net.UDPAddr // where the SBC's requests came from
	seq    int
	Log    []string
}

func NewUAS(t *testing.T) *UAS {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(PBXIP())})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &UAS{T: t, Conn: c, Parser: sipmsg.NewParser(sipmsg.Limits{}), seq: 100}
}

func (u *UAS) Port() int { return u.Conn.LocalAddr().(*net.UDPAddr).Port }

// next returns the next message, skipping retransmissions of requests the
// caller of next already saw is its business.
func (u *UAS) Next(timeout time.Duration) sip.Message {
	u.T.Helper()
	buf := make([]byte, 65535)
	_ = u.Conn.SetReadDeadline(time.Now().Add(timeout))
	n, from, err := u.Conn.ReadFromUDP(buf)
	if err != nil {
		u.T.Fatalf("uas recv: %v", err)
	}
	u.SBC = from
	u.Log = append(u.Log, string(buf[:n]))
	m, err := u.Parser.Parse(buf[:n])
	if err != nil {
		u.T.Fatalf("uas: bad message: %v\n%s", err, buf[:n])
	}
	return m
}

// expectReq reads until a request with the given method arrives (ignoring
// retransmissions and other methods listed in skip).
func (u *UAS) ExpectReq(method string) sip.Request {
	u.T.Helper()
	for {
		m := u.Next(10 * time.Second)
		if req, ok := m.(sip.Request); ok && string(req.Method()) == method {
			return req
		}
	}
}

func (u *UAS) ExpectRes(code int) sip.Response {
	u.T.Helper()
	for {
		m := u.Next(10 * time.Second)
		if res, ok := m.(sip.Response); ok && int(res.StatusCode()) == code {
			return res
		}
	}
}

func (u *UAS) Write(msg string) {
	u.T.Helper()
	msg = strings.ReplaceAll(msg, "\r\n", "\n")
	msg = strings.ReplaceAll(msg, "\n", "\r\n")
	if _, err := u.Conn.WriteToUDP([]byte(msg), u.SBC); err != nil {
		u.T.Fatal(err)
	}
}

// UASSDP is the PBX's answer: PCMU from PBXIP port 30000.
func UASSDP() string {
	return "v=0\no=pbx 1 1 IN IP4 " + PBXIP() + "\ns=-\nc=IN IP4 " + PBXIP() + "\nt=0 0\nm=audio 30000 RTP/AVP 0\na=rtpmap:0 PCMU/8000\n"
}

// respond answers req; tag is the To tag to add (if the To has none).
func (u *UAS) Respond(req sip.Request, code int, reason, tag, sdp string, extra ...string) {
	u.T.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "SIP/2.0 %d %s\n", code, reason)
	for _, h := range req.GetHeaders("Via") {
		b.WriteString(h.String() + "\n")
	}
	from, _ := req.From()
	to, _ := req.To()
	b.WriteString(from.String() + "\n")
	toStr := to.String()
	if sipmsg.ToTag(req) == "" && tag != "" {
		toStr += ";tag=" + tag
	}
	b.WriteString(toStr + "\n")
	fmt.Fprintf(&b, "Call-ID: %s\n", sipmsg.CallID(req))
	cseq, _ := req.CSeq()
	b.WriteString(cseq.String() + "\n")
	if code > 100 && code < 300 {
		fmt.Fprintf(&b, "Contact: <sip:pbx@%s:%d>\n", PBXIP(), u.Port())
	}
	for _, e := range extra {
		b.WriteString(e + "\n")
	}
	body := strings.ReplaceAll(sdp, "\n", "\r\n")
	if body != "" {
		b.WriteString("Content-Type: application/sdp\n")
	}
	fmt.Fprintf(&b, "Content-Length: %d\n\n", len(body))
	u.Write(strings.ReplaceAll(b.String(), "\n", "\r\n") + body)
}

// dialog is the UAS's view of one dialog, for requests it originates.
type UASDialog struct {
	u      *UAS
	inv    sip.Request
	tag    string
	seq    int
	target string
}

func (u *UAS) Dialog(inv sip.Request, tag string) *UASDialog {
	return &UASDialog{u: u, inv: inv, tag: tag, seq: 1, target: sipmsg.ContactURI(inv).String()}
}

// request sends an in-dialog request from the UAS side and returns its
// branch.
func (d *UASDialog) Request(method, ctype, body string, extra ...string) {
	d.seq++
	from, _ := d.inv.From()
	to, _ := d.inv.To()
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s SIP/2.0\n", method, d.target)
	fmt.Fprintf(&b, "Via: SIP/2.0/UDP %s:%d;branch=z9hG4bK%s;rport\n", PBXIP(), d.u.Port(), sipmsg.NewToken(6))
	b.WriteString("Max-Forwards: 70\n")
	fmt.Fprintf(&b, "From: %s;tag=%s\n", to.Address.String(), d.tag)
	fmt.Fprintf(&b, "To: %s\n", from.Value())
	fmt.Fprintf(&b, "Call-ID: %s\n", sipmsg.CallID(d.inv))
	fmt.Fprintf(&b, "CSeq: %d %s\n", d.seq, method)
	fmt.Fprintf(&b, "Contact: <sip:pbx@%s:%d>\n", PBXIP(), d.u.Port())
	for _, e := range extra {
		b.WriteString(e + "\n")
	}
	body = strings.ReplaceAll(body, "\n", "\r\n")
	if body != "" {
		fmt.Fprintf(&b, "Content-Type: %s\n", ctype)
	}
	fmt.Fprintf(&b, "Content-Length: %d\n\n", len(body))
	d.u.Write(strings.ReplaceAll(b.String(), "\n", "\r\n") + body)
}

// ack sends the ACK for a 2xx the UAS received to its own re-INVITE.
func (d *UASDialog) Ack() {
	seq := d.seq
	d.seq--
	d.Request("ACK", "", "")
	d.seq = seq
}

func PBXTrunk(u *UAS) []TrunkSpec {
	return []TrunkSpec{{Name: "pbx", Addr: PBXIP(), Port: u.Port()}}
}
