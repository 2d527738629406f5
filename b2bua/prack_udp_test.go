package b2bua

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/ghettovoice/gosip/sip"

	"github.com/sbc-project/sbc/b2bua/routing"
	"github.com/sbc-project/sbc/b2bua/sipmsg"
	"github.com/sbc-project/sbc/b2bua/transport"
	"github.com/sbc-project/sbc/b2bua/txn"
)

// 100rel over real UDP sockets and the real transaction layer: the
// caller (127.0.4.2) and the callee (127.0.4.3) are raw sockets that
// speak SIP text to the SBC (127.0.4.1).

// rawPeer is one SIP endpoint on a UDP socket of its own.
type rawPeer struct {
	t    testing.TB
	conn *net.UDPConn
	sbc  *net.UDPAddr
}

func newRawPeer(t testing.TB, ip string, sbc netip.AddrPort) *rawPeer {
	t.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(ip)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return &rawPeer{t: t, conn: conn, sbc: net.UDPAddrFromAddrPort(sbc)}
}

func (p *rawPeer) addr() string { return p.conn.LocalAddr().String() }

func (p *rawPeer) send(lines ...string) {
	p.t.Helper()
	msg := strings.Join(lines, "\r\n")
	head, body, _ := strings.Cut(msg, "\r\n\r\n")
	msg = head + fmt.Sprintf("\r\nContent-Length: %d\r\n\r\n", len(body)) + body
	if _, err := p.conn.WriteToUDP([]byte(msg), p.sbc); err != nil {
		p.t.Fatal(err)
	}
}

// recv returns the next message that match accepts, skipping others.
func (p *rawPeer) recv(what string, match func(sip.Message) bool) sip.Message {
	p.t.Helper()
	buf := make([]byte, 65535)
	deadline := time.Now().Add(wait)
	for {
		_ = p.conn.SetReadDeadline(deadline)
		n, err := p.conn.Read(buf)
		if err != nil {
			p.t.Fatalf("%s: waiting for %s: %v", p.addr(), what, err)
		}
		msg, err := sipmsg.NewParser(sipmsg.Limits{}).Parse(buf[:n])
		if err == nil && match(msg) {
			return msg
		}
	}
}

func isResponse(code int, method sip.RequestMethod) func(sip.Message) bool {
	return func(m sip.Message) bool {
		res, ok := m.(sip.Response)
		_, cm := sipmsg.CSeq(m)
		return ok && int(res.StatusCode()) == code && cm == method
	}
}

func isRequest(method sip.RequestMethod) func(sip.Message) bool {
	return func(m sip.Message) bool {
		req, ok := m.(sip.Request)
		return ok && req.Method() == method
	}
}

// answer sends a response to req with the callee's tag and Contact.
func (p *rawPeer) answer(req sip.Message, status string, extra ...string) {
	p.t.Helper()
	lines := []string{"SIP/2.0 " + status}
	for _, v := range sipmsg.Values(req, "Via") {
		lines = append(lines, "Via: "+v)
	}
	to := sipmsg.Header(req, "To")
	if !strings.Contains(to, "tag=") {
		to += ";tag=pbx1"
	}
	lines = append(lines, "From: "+sipmsg.Header(req, "From"), "To: "+to, "Call-ID: "+sipmsg.CallID(req),
		"CSeq: "+sipmsg.Header(req, "CSeq"), "Contact: <sip:pbx@"+p.addr()+">")
	p.send(append(lines, extra...)...)
}

// startUDPServer runs a server with a real transaction layer on
// 127.0.4.1, routing every call to the callee.
func startUDPServer(t *testing.T, callee string) *Server {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	table, err := routing.New(routing.TableSpec{
		Trunks: []routing.TrunkSpec{{Name: "pbx", URI: "sip:" + callee}},
		Routes: []routing.RouteSpec{{Name: "out", Target: routing.TargetTrunks, Trunks: []string{"pbx"}}},
	}, log)
	if err != nil {
		t.Fatal(err)
	}
	s := New(Config{RingTimeout: 5 * time.Second, InviteTimeout: 5 * time.Second, MinSE: 90 * time.Second,
		SessionExpires: 1800 * time.Second, Timers: txn.Timers{T1: 50 * time.Millisecond}},
		Hooks{Routes: table, Media: func(string) (MediaSession, error) { return fakeMedia{}, nil }}, log)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		_ = s.Close(ctx)
	})
	return s
}

// TestPRACKOverUDP: both legs use 100rel on real sockets. The callee's
// reliable 183 is PRACKed; the caller's reliable 183 is retransmitted by
// the transaction layer until its PRACK; a PRACK for another RSeq gets
// 481; the 2xx reaches the caller only after its PRACK; ACK and BYE cross.
func TestPRACKOverUDP(t *testing.T) {
	callee := newRawPeerAt(t, "127.0.4.3")
	s := startUDPServer(t, callee.addr())
	sbc, err := s.Listen("udp", transport.UDP, "127.0.4.1:0", transport.ListenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	callee.sbc = net.UDPAddrFromAddrPort(sbc)
	caller := newRawPeer(t, "127.0.4.2", sbc)
	dialog := func(method string, seq int, toTag string, extra ...string) []string {
		to := "<sip:1000@127.0.4.1>"
		if toTag != "" {
			to += ";tag=" + toTag
		}
		return append([]string{
			fmt.Sprintf("%s sip:1000@%s SIP/2.0", method, sbc),
			fmt.Sprintf("Via: SIP/2.0/UDP %s;branch=z9hG4bK%s%d;rport", caller.addr(), strings.ToLower(method), seq),
			"Max-Forwards: 70", "From: <sip:alice@127.0.4.2>;tag=a1", "To: " + to, "Call-ID: prack-udp",
			fmt.Sprintf("CSeq: %d %s", seq, method), "Contact: <sip:alice@" + caller.addr() + ">",
		}, extra...)
	}
	caller.send(dialog("INVITE", 1, "", "Supported: 100rel", "Content-Type: application/sdp", "", callerSDP)...)

	inv := callee.recv("INVITE", isRequest(sip.INVITE))
	if !sipmsg.HasOption(inv, "Supported", "100rel") {
		t.Fatalf("leg B's INVITE Supported %q", sipmsg.Header(inv, "Supported"))
	}
	callee.answer(inv, "183 Session Progress", "Require: 100rel", "RSeq: 41", "Content-Type: application/sdp", "", calleeSDP)
	pr := callee.recv("PRACK", isRequest(sip.PRACK))
	if want := "41 " + sipmsg.Header(inv, "CSeq"); sipmsg.Header(pr, "RAck") != want {
		t.Errorf("PRACK RAck %q, want %q", sipmsg.Header(pr, "RAck"), want)
	}
	callee.answer(pr, "200 OK")

	early := caller.recv("183", isResponse(183, sip.INVITE)).(sip.Response)
	rseq := rseqOf(t, early)
	if again := caller.recv("183 again", isResponse(183, sip.INVITE)); sipmsg.Header(again, "RSeq") != sipmsg.Header(early, "RSeq") {
		t.Errorf("retransmitted 183 RSeq %q, want %q", sipmsg.Header(again, "RSeq"), sipmsg.Header(early, "RSeq"))
	}
	tag := sipmsg.ToTag(early)
	callee.answer(inv, "200 OK", "Content-Type: application/sdp", "", calleeSDP)
	ack := callee.recv("ACK", isRequest(sip.ACK))
	if n, _ := sipmsg.CSeq(ack); sipmsg.Header(inv, "CSeq") != fmt.Sprintf("%d INVITE", n) {
		t.Errorf("ACK CSeq %d, want the INVITE's %q", n, sipmsg.Header(inv, "CSeq"))
	}

	caller.send(dialog("PRACK", 2, tag, fmt.Sprintf("RAck: %d 1 INVITE", rseq+1))...)
	caller.recv("481 to PRACK", func(m sip.Message) bool {
		if isResponse(200, sip.INVITE)(m) {
			t.Fatal("caller got the 2xx before it PRACKed the 183 with the SDP answer")
		}
		return isResponse(481, sip.PRACK)(m)
	})
	caller.send(dialog("PRACK", 3, tag, fmt.Sprintf("RAck: %d 1 INVITE", rseq))...)
	caller.recv("200 to PRACK", isResponse(200, sip.PRACK))
	caller.recv("200 to INVITE", isResponse(200, sip.INVITE))
	caller.send(dialog("ACK", 1, tag)...)
	caller.send(dialog("BYE", 4, tag)...)
	bye := callee.recv("BYE", isRequest(sip.BYE))
	callee.answer(bye, "200 OK")
	caller.recv("200 to BYE", isResponse(200, sip.BYE))
	deadline := time.Now().Add(wait)
	for s.ActiveCalls() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d calls left", s.ActiveCalls())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// newRawPeerAt is a peer whose SBC address is known only later.
func newRawPeerAt(t testing.TB, ip string) *rawPeer {
	return newRawPeer(t, ip, netip.MustParseAddrPort("127.0.0.1:9"))
}
