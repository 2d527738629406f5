package security

import (
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ghettovoice/gosip/sip"

	"github.com/sbc-project/sbc/b2bua/sipmsg"
	"github.com/sbc-project/sbc/internal/config"
	"github.com/sbc-project/sbc/policy"
	"github.com/sbc-project/sbc/test/e2e"
)

// pbxRegistrar is a PBX on e2e.PBXIP() (UDP) that checks digest passwords
// as a real registrar does: a REGISTER without credentials is challenged
// 401, wrong ones get wrongCode (401 again or 403), right ones 200 with
// the Contact and the expiry granted. Every INVITE it gets is a call that
// reached the trunk: it records them and answers 403. It runs on its own
// goroutine until the test ends.
type pbxRegistrar struct {
	conn      *net.UDPConn
	users     map[string]string // user → password
	wrongCode int
	grant     int

	mu        sync.Mutex
	invites   []sip.Request
	registers []sip.Request
	sbc       *net.UDPAddr
}

const pbxRealm, pbxNonce = "pbx", "0123456789abcdef"

func newPBXRegistrar(t *testing.T, wrongCode int) *pbxRegistrar {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(e2e.PBXIP())})
	if err != nil {
		t.Fatal(err)
	}
	p := &pbxRegistrar{conn: c, users: map[string]string{"alice": "pbx-secret"}, wrongCode: wrongCode, grant: 120}
	done := make(chan struct{})
	go func() { defer close(done); p.loop() }()
	t.Cleanup(func() { c.Close(); <-done })
	return p
}

func (p *pbxRegistrar) port() int { return p.conn.LocalAddr().(*net.UDPAddr).Port }

func (p *pbxRegistrar) trunk() []e2e.TrunkSpec {
	return []e2e.TrunkSpec{{Name: "pbx", Addr: e2e.PBXIP(), Port: p.port()}}
}

func (p *pbxRegistrar) loop() {
	parser := sipmsg.NewParser(sipmsg.Limits{})
	buf := make([]byte, 65535)
	for {
		n, from, err := p.conn.ReadFromUDP(buf)
		if err != nil {
			return
		}
		req, ok := parseOrNil(parser, buf[:n]).(sip.Request)
		if !ok {
			continue
		}
		p.mu.Lock()
		p.sbc = from
		switch req.Method() {
		case sip.REGISTER:
			p.registers = append(p.registers, req)
		case sip.INVITE:
			p.invites = append(p.invites, req)
		}
		p.mu.Unlock()
		switch req.Method() {
		case sip.REGISTER:
			p.register(req, from)
		case sip.INVITE:
			p.answer(req, from, 403, "Forbidden")
		}
	}
}

// parseOrNil parses b, or returns nil for a message that does not parse.
func parseOrNil(p *sipmsg.Parser, b []byte) sip.Message {
	m, err := p.Parse(b)
	if err != nil {
		return nil
	}
	return m
}

// register answers a REGISTER as a registrar that knows p.users.
func (p *pbxRegistrar) register(req sip.Request, to *net.UDPAddr) {
	auth := sipmsg.Header(req, "Authorization")
	if auth == "" {
		p.answer(req, to, 401, "Unauthorized",
			fmt.Sprintf(`WWW-Authenticate: Digest realm="%s", nonce="%s", algorithm=MD5, qop="auth"`, pbxRealm, pbxNonce))
		return
	}
	prm := map[string]string{}
	for _, m := range reDigestParam.FindAllStringSubmatch(auth, -1) {
		prm[strings.ToLower(m[1])] = m[2]
	}
	h := func(s string) string { sum := md5.Sum([]byte(s)); return hex.EncodeToString(sum[:]) }
	pw, known := p.users[prm["username"]]
	ha1 := h(prm["username"] + ":" + pbxRealm + ":" + pw)
	want := h(ha1 + ":" + pbxNonce + ":" + prm["nc"] + ":" + prm["cnonce"] + ":auth:" + h("REGISTER:"+prm["uri"]))
	if !known || prm["response"] != want || prm["nonce"] != pbxNonce {
		p.answer(req, to, p.wrongCode, "Wrong Password For alice On pbx.internal 10.1.2.3",
			fmt.Sprintf(`WWW-Authenticate: Digest realm="%s", nonce="%s", algorithm=MD5, qop="auth"`, pbxRealm, pbxNonce))
		return
	}
	contact := sipmsg.Header(req, "Contact")
	if sipmsg.Header(req, "Expires") == "0" {
		p.answer(req, to, 200, "OK")
		return
	}
	p.answer(req, to, 200, "OK", fmt.Sprintf("Contact: %s;expires=%d", contact, p.grant))
}

func (p *pbxRegistrar) answer(req sip.Request, to *net.UDPAddr, code int, reason string, extra ...string) {
	var b strings.Builder
	fmt.Fprintf(&b, "SIP/2.0 %d %s\r\n", code, reason)
	for _, h := range req.GetHeaders("Via") {
		b.WriteString(h.String() + "\r\n")
	}
	from, _ := req.From()
	toH, _ := req.To()
	fmt.Fprintf(&b, "%s\r\n%s;tag=pbx%s\r\n", from.String(), toH.String(), sipmsg.NewToken(4))
	fmt.Fprintf(&b, "Call-ID: %s\r\n", sipmsg.CallID(req))
	cseq, _ := req.CSeq()
	b.WriteString(cseq.String() + "\r\n")
	for _, e := range extra {
		b.WriteString(e + "\r\n")
	}
	b.WriteString("Content-Length: 0\r\n\r\n")
	_, _ = p.conn.WriteToUDP([]byte(b.String()), to)
}

func (p *pbxRegistrar) counts() (registers, invites int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.registers), len(p.invites)
}

// call sends an INVITE for user from the PBX to the SBC, as the PBX does
// for a call to a web user, and returns the SBC's final answer.
func (p *pbxRegistrar) call(t *testing.T, sbc string, user string) int {
	t.Helper()
	c, err := net.DialUDP("udp", &net.UDPAddr{IP: net.ParseIP(e2e.PBXIP())}, e2e.MustUDPAddr(t, sbc))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	body := strings.ReplaceAll(e2e.UASSDP(), "\n", "\r\n")
	branch, callID := "z9hG4bK"+sipmsg.NewToken(8), sipmsg.NewToken(8)+"@pbx"
	local := c.LocalAddr().String()
	msg := fmt.Sprintf("INVITE sip:%s@%s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=%s;rport\r\nMax-Forwards: 70\r\n"+
		"From: <sip:1000@pbx.example>;tag=pbx1\r\nTo: <sip:%s@example.com>\r\nCall-ID: %s\r\nCSeq: 1 INVITE\r\n"+
		"Contact: <sip:1000@%s>\r\nContent-Type: application/sdp\r\nContent-Length: %d\r\n\r\n%s",
		user, sbc, local, branch, user, callID, local, len(body), body)
	if _, err := c.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	parser := sipmsg.NewParser(sipmsg.Limits{})
	buf := make([]byte, 65535)
	for {
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		n, err := c.Read(buf)
		if err != nil {
			t.Fatalf("pbx call to %s: no final answer: %v", user, err)
		}
		res, ok := parseOrNil(parser, buf[:n]).(sip.Response)
		if !ok || res.StatusCode() < 200 {
			continue
		}
		ack := fmt.Sprintf("ACK sip:%s@%s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=%s;rport\r\nMax-Forwards: 70\r\n"+
			"From: <sip:1000@pbx.example>;tag=pbx1\r\nTo: <sip:%s@example.com>;tag=%s\r\nCall-ID: %s\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n",
			user, sbc, local, branch, user, sipmsg.ToTag(res), callID)
		_, _ = c.Write([]byte(ack))
		return int(res.StatusCode())
	}
}

// relaySBC is the configs/pbx-front.yaml shape: REGISTERs and calls from
// the WebSocket listener go to the PBX, calls from the PBX to the web
// users registered through the SBC. Nobody is trusted by address.
func relaySBC(t *testing.T, p *pbxRegistrar) *e2e.SBC {
	return e2e.StartSBC(t, e2e.SBCOptions{Trunks: p.trunk(), Mutate: func(c *config.Config) {
		c.Routes = []config.Route{
			{Name: "pbx-to-web", Match: config.Match{Trunk: "pbx"}, Target: config.TargetRegistered},
			{Name: "web-to-pbx", Match: config.Match{Listener: "ws"}, Target: config.TargetTrunks, Trunks: []string{"pbx"}},
		}
	}})
}

// expectSilence asserts that u gets nothing for d.
func expectSilence(u *e2e.UA, d time.Duration, what string) {
	u.T.Helper()
	m, err := u.TryRecv(d)
	if err == nil {
		u.T.Fatalf("%s: got %s, want nothing", what, m.Short())
	}
	if ne, ok := errors.AsType[net.Error](err); !ok || !ne.Timeout() {
		u.T.Fatalf("%s: %v, want a read timeout", what, err)
	}
}

// TestSecurityRejectedRegisterGivesNothing is the toll fraud of issue 13
// point 1 as an attacker plays it against the pbx-front shape: a REGISTER
// for alice that the PBX refuses (no password, then a wrong one) must not
// make the attacker's WebSocket "alice": its INVITE to a toll number is
// challenged and never reaches the trunk, the PBX's call to alice does not
// ring it, and alice's binding slots stay free for alice.
func TestSecurityRejectedRegisterGivesNothing(t *testing.T) {
	pbx := newPBXRegistrar(t, 401)
	sbc := relaySBC(t, pbx)
	attacker := e2e.DialUAFrom(t, "WS", sbc.WS.String(), e2e.IP(66))
	if res := attacker.Register("alice", "guessed-wrong", 300); res.StatusCode() != 401 {
		t.Fatalf("attacker's REGISTER with a wrong password: %d, want the PBX's 401", res.StatusCode())
	} else if strings.Contains(res.Reason(), "pbx.internal") {
		t.Errorf("the PBX's reason phrase %q reached the attacker", res.Reason())
	}
	if n := len(sbc.App.Bindings().List()); n != 0 {
		t.Fatalf("%d bindings after a registration the PBX refused", n)
	}

	// The toll call on the same WebSocket, without Proxy-Authorization.
	call := attacker.Invite("+12125551234", "")
	res := attacker.ExpectFinal()
	if res.StatusCode() != 407 {
		t.Fatalf("attacker's INVITE to a toll number: %d %s, want 407", res.StatusCode(), res.Reason())
	}
	call.AckFailure(sipmsg.ToTag(res))
	if _, invites := pbx.counts(); invites != 0 {
		t.Fatalf("the trunk got %d INVITEs from the attacker", invites)
	}

	// Calls for alice do not ring the attacker.
	if code := pbx.call(t, sbc.UDP.String(), "alice"); code != 480 {
		t.Errorf("PBX's call to alice with no registration: %d, want 480", code)
	}
	expectSilence(attacker, time.Second, "attacker's WebSocket after the PBX called alice")

	// Eleven more connections try to fill alice's ten binding slots.
	for i := range 11 {
		// Each from its own address: one address would be banned first.
		ua := e2e.DialUAFrom(t, "WS", sbc.WS.String(), e2e.IP(70+i))
		if res := ua.Register("alice", fmt.Sprintf("guess-%d", i), 300); res.StatusCode() == 200 {
			t.Fatalf("guess %d accepted", i)
		}
	}
	alice := e2e.DialUA(t, "WS", sbc.WS.String())
	if res := alice.Register("alice", "pbx-secret", 300); res.StatusCode() != 200 {
		t.Fatalf("alice's own registration after the attack: %d %s", res.StatusCode(), res.Reason())
	}
	if bs := sbc.App.Bindings().List(); len(bs) != 1 || bs[0].Flow.Target.Addr.Addr().String() != e2e.CallerIP() {
		t.Fatalf("bindings after alice registered: %+v, want alice's only", bs)
	}
	// The PBX granted 120 s though alice asked for 300: the binding ends
	// with the PBX's registration.
	if left := time.Until(sbc.App.Bindings().List()[0].Expires); left > 121*time.Second {
		t.Errorf("binding lives %v, longer than the 120 s the PBX granted", left)
	}
}

// TestSecurityRegistrationEndsAuthentication: a call on a registered
// connection is authenticated as its user only while the registration
// the PBX accepted lives; once alice de-registers, an INVITE on the same
// WebSocket is challenged again.
func TestSecurityRegistrationEndsAuthentication(t *testing.T) {
	pbx := newPBXRegistrar(t, 403)
	sbc := relaySBC(t, pbx)
	alice := e2e.DialUA(t, "WS", sbc.WS.String())
	if res := alice.Register("alice", "pbx-secret", 300); res.StatusCode() != 200 {
		t.Fatalf("register: %d %s", res.StatusCode(), res.Reason())
	}
	call := alice.Invite("2125550100", "")
	if res := alice.ExpectFinal(); res.StatusCode() != 403 {
		// The PBX answers every INVITE 403: reaching it proves the call
		// was authenticated by the registration.
		t.Fatalf("registered alice's call: %d %s, want the PBX's 403", res.StatusCode(), res.Reason())
	} else {
		call.AckFailure(sipmsg.ToTag(res))
	}
	if res := alice.Register("alice", "pbx-secret", 0); res.StatusCode() != 200 {
		t.Fatalf("de-register: %d %s", res.StatusCode(), res.Reason())
	}
	if n := len(sbc.App.Bindings().List()); n != 0 {
		t.Fatalf("%d bindings after de-registration", n)
	}
	_, before := pbx.counts()
	call = alice.Invite("2125550100", "")
	res := alice.ExpectFinal()
	if res.StatusCode() != 407 {
		t.Fatalf("INVITE after de-registration: %d %s, want 407", res.StatusCode(), res.Reason())
	}
	call.AckFailure(sipmsg.ToTag(res))
	if _, after := pbx.counts(); after != before {
		t.Fatalf("the trunk got an INVITE after alice de-registered")
	}
	sbc.WaitIdle(t)
}

// TestSecurityRelayedPasswordGuessingIsBanned is point 9: the PBX's
// refusals of relayed REGISTERs count toward the guesser's ban as the
// SBC's own do. After policy.bans.auth_failures wrong passwords the
// guesser's next REGISTER goes unanswered and never reaches the PBX;
// alice, from another address, still registers.
func TestSecurityRelayedPasswordGuessingIsBanned(t *testing.T) {
	pbx := newPBXRegistrar(t, 403)
	sbc := relaySBC(t, pbx)
	guesser := e2e.DialUAFrom(t, "WS", sbc.WS.String(), e2e.IP(68))
	for i := range policy.DefaultBanAuthFailures {
		if res := guesser.Register("alice", fmt.Sprintf("guess-%d", i), 300); res.StatusCode() != 403 {
			t.Fatalf("guess %d: %d %s, want 403", i, res.StatusCode(), res.Reason())
		} else if res.Reason() != "Forbidden" {
			t.Errorf("guess %d: reason %q, want the standard phrase", i, res.Reason())
		}
	}
	if n := sbc.App.Server().Stats().AuthFailures.Load(); n != uint64(policy.DefaultBanAuthFailures) {
		t.Errorf("auth failures counted: %d, want %d", n, policy.DefaultBanAuthFailures)
	}
	registers, _ := pbx.counts()
	guesser.Send(fmt.Sprintf("REGISTER sip:example.com SIP/2.0\nVia: SIP/2.0/WS x.invalid;branch=z9hG4bK%s\nMax-Forwards: 70\n"+
		"From: <sip:alice@example.com>;tag=g\nTo: <sip:alice@example.com>\nCall-ID: %s\nCSeq: 1 REGISTER\n"+
		"Contact: <sip:alice@x.invalid;transport=ws>\nContent-Length: 0\n\n", sipmsg.NewToken(6), sipmsg.NewToken(8)))
	expectSilence(guesser, 2*time.Second, "banned guesser's REGISTER")
	if after, _ := pbx.counts(); after != registers {
		t.Errorf("the banned guesser's REGISTER reached the PBX")
	}
	alice := e2e.DialUA(t, "WS", sbc.WS.String())
	if res := alice.Register("alice", "pbx-secret", 300); res.StatusCode() != 200 {
		t.Fatalf("alice from another address: %d %s", res.StatusCode(), res.Reason())
	}
}
