package security

import (
	"bufio"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/ghettovoice/gosip/sip"

	"github.com/sbc-project/sbc/b2bua/sipmsg"
	"github.com/sbc-project/sbc/internal/config"
	"github.com/sbc-project/sbc/test/e2e"
)

// Bans an attacker can aim (issue 13, point 8): a UDP datagram's source
// is forged at will, so a scanner User-Agent in one datagram must not cut
// its "source" off the SBC's TCP and WebSocket service; a scanner that
// completed a TCP handshake proved its address and is banned everywhere.

const banToken = "ban-token"

// banSBC has users (REGISTER answered 401), the echo route, the admin API,
// and a UDP listener on ::1 besides the harness's IPv4 ones.
func banSBC(t *testing.T) (*e2e.SBC, netip.AddrPort) {
	t.Helper()
	sbc := e2e.StartSBC(t, e2e.SBCOptions{Mutate: func(c *config.Config) {
		e2e.WithAdmin(banToken)(c)
		c.Users = []config.User{{Username: "alice", Password: "secret"}}
		c.Routes = append(c.Routes, config.Route{Name: "users", Target: config.TargetRegistered})
		c.SIP.Listeners = append(c.SIP.Listeners, config.Listener{Name: "udp6", Transport: "udp", Addr: "[::1]:0"})
	}})
	udp6, ok := sbc.App.Addr("udp6")
	if !ok {
		t.Fatal("no udp6 listener")
	}
	return sbc, udp6
}

// banScope returns the scope the ban list gives addr, "" when it is not
// banned.
func banScope(s *e2e.SBC, t *testing.T, addr string) string {
	t.Helper()
	var res struct {
		Bans []struct {
			Addr     string `json:"addr"`
			Scope    string `json:"scope"`
			Evidence int    `json:"evidence"`
		} `json:"bans"`
	}
	s.Admin(t, banToken).JSON("GET", "/api/v1/bans", "", 200, &res)
	for _, b := range res.Bans {
		if b.Addr == addr {
			if b.Evidence < 1 {
				t.Errorf("dynamic ban of %s listed with evidence %d", addr, b.Evidence)
			}
			return b.Scope
		}
	}
	return ""
}

// waitBanScope waits until addr is banned with scope.
func waitBanScope(s *e2e.SBC, t *testing.T, addr, scope string) {
	t.Helper()
	e2e.WaitFor(t, 5*time.Second, addr+" banned on "+scope, func() bool { return banScope(s, t, addr) == scope })
}

// bannedDrops is how many packets the SBC dropped unparsed as banned.
func bannedDrops(s *e2e.SBC, t *testing.T) float64 {
	t.Helper()
	var n float64
	for series, v := range s.Admin(t, banToken).Metrics() {
		if strings.HasPrefix(series, "sbc_policy_rejections_total{") &&
			strings.Contains(series, `reason="banned"`) && strings.Contains(series, `stage="blacklist"`) {
			n += v
		}
	}
	return n
}

// sipConn is a raw SIP connection from one source address: UDP or TCP.
type sipConn struct {
	t      *testing.T
	kind   string // UDP or TCP
	conn   net.Conn
	rd     *bufio.Reader
	parser *sipmsg.Parser
}

func dialSIP(t *testing.T, kind, from string, to netip.AddrPort) *sipConn {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second}
	var err error
	c := &sipConn{t: t, kind: kind, parser: sipmsg.NewParser(sipmsg.Limits{})}
	if kind == "UDP" {
		d.LocalAddr = &net.UDPAddr{IP: net.ParseIP(from)}
		c.conn, err = d.Dial("udp", to.String())
	} else {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(from)}
		c.conn, err = d.Dial("tcp", to.String())
	}
	if err != nil {
		t.Fatalf("dial %s from %s: %v", kind, from, err)
	}
	c.rd = bufio.NewReader(c.conn)
	t.Cleanup(func() { c.conn.Close() })
	return c
}

// request sends method with the given User-Agent ("" for a phone's).
func (c *sipConn) request(method, userAgent string) {
	c.t.Helper()
	if userAgent == "" {
		userAgent = "Phone/1.0"
	}
	host := c.conn.LocalAddr().String()
	msg := fmt.Sprintf("%s sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/%s %s;branch=z9hG4bK%s;rport\r\nMax-Forwards: 70\r\n"+
		"From: <sip:alice@127.0.0.1>;tag=%s\r\nTo: <sip:alice@127.0.0.1>\r\nCall-ID: %s\r\nCSeq: 1 %s\r\n"+
		"Contact: <sip:alice@%s;transport=%s>\r\nUser-Agent: %s\r\nContent-Length: 0\r\n\r\n",
		method, c.kind, host, sipmsg.NewToken(8), sipmsg.NewToken(4), sipmsg.NewToken(10), method,
		host, strings.ToLower(c.kind), userAgent)
	if _, err := c.conn.Write([]byte(msg)); err != nil {
		c.t.Fatalf("send %s over %s: %v", method, c.kind, err)
	}
}

// read returns the next message within timeout, or nil when none came.
func (c *sipConn) read(timeout time.Duration) sip.Message {
	c.t.Helper()
	_ = c.conn.SetReadDeadline(time.Now().Add(timeout))
	var data []byte
	if c.kind == "UDP" {
		buf := make([]byte, 65535)
		n, err := c.conn.Read(buf)
		if err != nil {
			return nil
		}
		data = buf[:n]
	} else {
		var err error
		if data, err = e2e.ReadStreamMessage(c.rd); err != nil {
			return nil
		}
	}
	m, err := c.parser.Parse(data)
	if err != nil {
		c.t.Fatalf("bad message from the sbc: %v\n%s", err, data)
	}
	return m
}

// expectAnswer reads the answer to a request and checks its code.
func (c *sipConn) expectAnswer(what string, code int) {
	c.t.Helper()
	m := c.read(10 * time.Second)
	res, ok := m.(sip.Response)
	if !ok || int(res.StatusCode()) != code {
		c.t.Fatalf("%s: got %v, want %d", what, m, code)
	}
}

// expectDropped sends a REGISTER the SBC must drop unparsed as banned:
// the count of such drops goes up, and nothing comes back.
func expectDropped(t *testing.T, sbc *e2e.SBC, c *sipConn, what string) {
	t.Helper()
	before := bannedDrops(sbc, t)
	c.request("REGISTER", "")
	e2e.WaitFor(t, 5*time.Second, what+" dropped as banned", func() bool { return bannedDrops(sbc, t) > before })
	if m := c.read(50 * time.Millisecond); m != nil {
		t.Errorf("%s: the sbc answered a banned source: %s", what, m.Short())
	}
}

// TestSecurityBanScope: one UDP datagram with a scanner User-Agent bans
// its (forgeable) source address on UDP only: its UDP requests are then
// dropped unparsed, but the same address's REGISTER over TCP and INVITE
// over a WebSocket are answered. A scanner over TCP proved its address
// with the handshake and is banned on every transport. An IPv6 source is
// banned with its /64.
func TestSecurityBanScope(t *testing.T) {
	sbc, udp6 := banSBC(t)

	// A datagram "from" the victim e2e.IP(7).
	victim := e2e.IP(7)
	dialSIP(t, "UDP", victim, sbc.UDP).request("OPTIONS", "friendly-scanner")
	waitBanScope(sbc, t, victim, "udp")
	expectDropped(t, sbc, dialSIP(t, "UDP", victim, sbc.UDP), "UDP REGISTER from the victim")

	tcp := dialSIP(t, "TCP", victim, sbc.TCP)
	tcp.request("REGISTER", "")
	tcp.expectAnswer("REGISTER over TCP from the victim", 401)
	ws := e2e.DialUAFrom(t, "WS", sbc.WS.String(), victim)
	call := ws.Invite("echo", "")
	res := ws.ExpectFinal()
	if res.StatusCode() != 200 {
		t.Fatalf("echo INVITE over WS from the victim: %d %s", res.StatusCode(), res.Reason())
	}
	call.Answered(res)
	call.Ack()
	call.Bye()
	ws.Expect(200)
	if scope := banScope(sbc, t, victim); scope != "udp" {
		t.Errorf("victim's ban scope %q after its calls over connections, want udp", scope)
	}

	// A scanner over TCP.
	scanner := e2e.IP(8)
	dialSIP(t, "TCP", scanner, sbc.TCP).request("OPTIONS", "friendly-scanner")
	waitBanScope(sbc, t, scanner, "all")
	expectDropped(t, sbc, dialSIP(t, "TCP", scanner, sbc.TCP), "TCP REGISTER from the scanner")
	expectDropped(t, sbc, dialSIP(t, "UDP", scanner, sbc.UDP), "UDP REGISTER from the scanner")
	before := bannedDrops(sbc, t)
	wsScanner := e2e.DialUAFrom(t, "WS", sbc.WS.String(), scanner)
	wsScanner.Invite("echo", "")
	e2e.WaitFor(t, 5*time.Second, "WS INVITE from the scanner dropped", func() bool { return bannedDrops(sbc, t) > before })

	// IPv6: the ban covers the source's /64 (::1 is in ::/64).
	dialSIP(t, "UDP", "::1", udp6).request("OPTIONS", "friendly-scanner")
	waitBanScope(sbc, t, "::/64", "udp")
	expectDropped(t, sbc, dialSIP(t, "UDP", "::1", udp6), "UDP REGISTER from ::1")
	sbc.WaitIdle(t)
}
