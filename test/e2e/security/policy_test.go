package security

import (
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ghettovoice/gosip/sip"

	"github.com/sbc-project/sbc/b2bua/sipmsg"
	"github.com/sbc-project/sbc/internal/config"
	"github.com/sbc-project/sbc/policy"
	"github.com/sbc-project/sbc/test/e2e"
)

// policySBC routes every call to a SIPp UAS trunk on e2e.PBXIP() WITHOUT
// trusting the callers: calls toward the trunk must authenticate as a
// configured user and pass the dial rules.
func policySBC(t *testing.T, uasPort int, mutate func(*config.Config)) *e2e.SBC {
	return e2e.StartSBC(t, e2e.SBCOptions{
		Trunks: []e2e.TrunkSpec{{Name: "pbx", Addr: e2e.PBXIP(), Port: uasPort}},
		Mutate: func(c *config.Config) {
			c.Users = []config.User{{Username: "alice", Password: "secret"}, {Username: "boss", Password: "hunter2", Group: "world"}}
			c.Policy.DialRules.Groups = append(c.Policy.DialRules.Groups, policy.DialGroupSpec{Name: "world", International: true})
			c.Routes = []config.Route{{Name: "out", Target: config.TargetTrunks, Trunks: []string{"pbx"}}}
			if mutate != nil {
				mutate(c)
			}
		},
	})
}

var reDigestParam = regexp.MustCompile(`(\w+)="?([^",]*)"?`)

// authedInvite places an INVITE to user, answers the 407 with user and
// password (MD5 digest), and returns the call with the SBC's final answer
// to the authenticated INVITE.
func authedInvite(u *e2e.UA, target, user, password string) (*e2e.UACall, sip.Response) {
	u.T.Helper()
	c := authedSend(u, target, user, password)
	return c, u.ExpectFinal()
}

// authedSend is authedInvite without waiting for the final answer to the
// authenticated INVITE (for a callee the test answers itself).
func authedSend(u *e2e.UA, target, user, password string) *e2e.UACall {
	u.T.Helper()
	c := u.Invite(target, "")
	res := u.ExpectFinal()
	if res.StatusCode() != 407 {
		u.T.Fatalf("INVITE without credentials: %d %s, want 407", res.StatusCode(), res.Reason())
	}
	c.AckFailure(sipmsg.ToTag(res))
	var chal string
	for _, h := range res.GetHeaders("Proxy-Authenticate") {
		if e2e.ReChallengeMD5.MatchString(h.Value()) {
			chal = h.Value()
		}
	}
	if chal == "" {
		u.T.Fatalf("no MD5 Proxy-Authenticate in %s", res)
	}
	p := map[string]string{}
	for _, m := range reDigestParam.FindAllStringSubmatch(chal, -1) {
		p[strings.ToLower(m[1])] = m[2]
	}
	h := func(s string) string { sum := md5.Sum([]byte(s)); return hex.EncodeToString(sum[:]) }
	cnonce, nc := sipmsg.NewToken(8), "00000001"
	ha1, ha2 := h(user+":"+p["realm"]+":"+password), h("INVITE:"+c.To)
	resp := h(ha1 + ":" + p["nonce"] + ":" + nc + ":" + cnonce + ":auth:" + ha2)
	auth := fmt.Sprintf(`Proxy-Authorization: Digest username="%s", realm="%s", nonce="%s", uri="%s", response="%s", algorithm=MD5, cnonce="%s", qop=auth, nc=%s`,
		user, p["realm"], p["nonce"], c.To, resp, cnonce, nc)
	if p["opaque"] != "" {
		auth += fmt.Sprintf(`, opaque="%s"`, p["opaque"])
	}
	// The same call again: same Call-ID and tags, next CSeq, new branch.
	c.Branch = "z9hG4bK" + sipmsg.NewToken(6)
	c.Seq = 2
	body := strings.ReplaceAll(e2e.CallerSDP(), "\n", "\r\n")
	u.Send(fmt.Sprintf(`INVITE %s SIP/2.0
Via: SIP/2.0/%s %s;branch=%s;rport
Max-Forwards: 70
From: "Alice" <sip:alice@caller.example>;tag=%s
To: <%s>
Call-ID: %s
CSeq: 2 INVITE
Contact: <sip:alice@%s;transport=%s>
%s
Content-Type: application/sdp
Content-Length: %d

`, c.To, u.Kind, u.Host, c.Branch, c.FromTag, c.To, c.CallID, u.Host, strings.ToLower(u.Kind), auth, len(body)) + strings.ReplaceAll(body, "\r\n", "\n"))
	return c
}

// TestPolicyAuthAndDialRules: an untrusted web caller reaches the trunk
// only with a valid password, and only numbers its dial group allows.
func TestPolicyAuthAndDialRules(t *testing.T) {
	e2e.NeedSIPp(t)
	port, wait := e2e.StartUAS(t, 2, "u1")
	sbc := policySBC(t, port, nil)
	ua := e2e.DialUA(t, "WS", sbc.WS.String())

	// A wrong password: challenged again, never connected.
	c, res := authedInvite(ua, "2125550100", "alice", "wrong")
	if res.StatusCode() != 407 {
		t.Fatalf("wrong password: %d %s, want 407", res.StatusCode(), res.Reason())
	}
	c.AckFailure(sipmsg.ToTag(res))

	// Premium and international numbers are refused for the default group.
	for _, number := range []string{"19005550100", "011442079460000", "+442079460000"} {
		c, res = authedInvite(ua, number, "alice", "secret")
		if res.StatusCode() != 403 {
			t.Errorf("alice dialing %s: %d %s, want 403", number, res.StatusCode(), res.Reason())
		}
		c.AckFailure(sipmsg.ToTag(res))
	}

	// A national number with the right password goes through.
	c, res = authedInvite(ua, "2125550100", "alice", "secret")
	if res.StatusCode() != 200 {
		t.Fatalf("alice dialing a national number: %d %s", res.StatusCode(), res.Reason())
	}
	c.Answered(res)
	c.Ack()
	c.Bye()
	ua.Expect(200)

	// The world group may call abroad.
	c, res = authedInvite(ua, "011442079460000", "boss", "hunter2")
	if res.StatusCode() != 200 {
		t.Fatalf("boss dialing abroad: %d %s", res.StatusCode(), res.Reason())
	}
	c.Answered(res)
	c.Ack()
	c.Bye()
	ua.Expect(200)
	wait()
	sbc.WaitIdle(t)
}

// TestPolicyAdmissionAndMaxDuration: a user's second concurrent call is
// refused with 503, and an answered call is ended at max_duration.
func TestPolicyAdmissionAndMaxDuration(t *testing.T) {
	e2e.NeedSIPp(t)
	port, wait := e2e.StartUAS(t, 2, "u1")
	sbc := policySBC(t, port, func(c *config.Config) {
		c.Policy.Admission.MaxCallsPerUser = 1
		c.Policy.Admission.MaxDuration = 2 * time.Second
	})
	ua := e2e.DialUA(t, "WS", sbc.WS.String())
	first, res := authedInvite(ua, "2125550100", "alice", "secret")
	if res.StatusCode() != 200 {
		t.Fatalf("first call: %d %s", res.StatusCode(), res.Reason())
	}
	first.Answered(res)
	first.Ack()
	answered := time.Now()

	second, res := authedInvite(ua, "2125550101", "alice", "secret")
	if res.StatusCode() != 503 || len(res.GetHeaders("Retry-After")) == 0 {
		t.Errorf("second concurrent call: %d %s (Retry-After %v), want 503 with Retry-After", res.StatusCode(), res.Reason(), res.GetHeaders("Retry-After"))
	}
	second.AckFailure(sipmsg.ToTag(res))

	// The SBC ends the first call itself at max_duration.
	bye := ua.ExpectReq("BYE")
	if d := time.Since(answered); d < 1500*time.Millisecond {
		t.Errorf("BYE %v after answer, before max_duration", d)
	}
	ua.RespondTo(bye, 200, "")
	sbc.WaitIdle(t)

	// Its admission count was given back: alice may call again.
	again, res := authedInvite(ua, "2125550102", "alice", "secret")
	if res.StatusCode() != 200 {
		t.Fatalf("alice after her first call ended: %d %s, want 200", res.StatusCode(), res.Reason())
	}
	again.Answered(res)
	again.Ack()
	again.Bye()
	ua.Expect(200)
	wait()
	sbc.WaitIdle(t)
}

// TestPolicyRegisteredConnectionIsAuthenticated: a browser that registered
// on its WebSocket (password checked by the registrar) calls the trunk on
// that same connection without a new challenge; a browser that did not
// register is challenged.
func TestPolicyRegisteredConnectionIsAuthenticated(t *testing.T) {
	e2e.NeedSIPp(t)
	port, wait := e2e.StartUAS(t, 1, "u1")
	sbc := policySBC(t, port, func(c *config.Config) {
		// Names register and call web users; numbers go to the trunk.
		c.Routes = append([]config.Route{{Name: "users", Match: config.Match{RURIUser: "^[a-z]+$"}, Target: config.TargetRegistered}}, c.Routes...)
	})
	web := e2e.DialUA(t, "WS", sbc.WS.String())
	if res := web.Register("alice", "secret", 300); res.StatusCode() != 200 {
		t.Fatalf("register: %d %s", res.StatusCode(), res.Reason())
	}
	call := web.Invite("2125550100", "")
	res := web.ExpectFinal()
	if res.StatusCode() != 200 {
		t.Fatalf("registered browser calling the trunk: %d %s, want 200 without a challenge", res.StatusCode(), res.Reason())
	}
	call.Answered(res)
	call.Ack()
	call.Bye()
	web.Expect(200)
	wait()

	other := e2e.DialUA(t, "WS", sbc.WS.String())
	c := other.Invite("2125550100", "")
	if res := other.ExpectFinal(); res.StatusCode() != 407 {
		t.Errorf("unregistered browser: %d %s, want 407", res.StatusCode(), res.Reason())
	} else {
		c.AckFailure(sipmsg.ToTag(res))
	}
	sbc.WaitIdle(t)
}
