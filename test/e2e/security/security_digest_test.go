package security

import (
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ghettovoice/gosip/sip"

	"github.com/sbc-project/sbc/b2bua/sipmsg"
	"github.com/sbc-project/sbc/test/e2e"
)

// Digest as clients really do it, and as an attacker replays it, over the
// real listeners: a credentials-bearing request whose nonce cannot be used
// (its nonce-count already used, too old, forgotten) is answered with a
// fresh challenge saying stale=true, never 403; it is never accepted.

// md5Answer answers the MD5 challenge among values for method and uri as
// user with password, with nonce-count nc (RFC 7616 qop=auth).
func md5Answer(t *testing.T, values []sip.Header, method, uri, user, password string, nc int) string {
	t.Helper()
	var chal string
	for _, h := range values {
		if e2e.ReChallengeMD5.MatchString(h.Value()) {
			chal = h.Value()
		}
	}
	if chal == "" {
		t.Fatalf("no MD5 challenge in %v", values)
	}
	p := map[string]string{}
	for _, m := range reDigestParam.FindAllStringSubmatch(chal, -1) {
		p[strings.ToLower(m[1])] = m[2]
	}
	h := func(s string) string { sum := md5.Sum([]byte(s)); return hex.EncodeToString(sum[:]) }
	cnonce, ncs := sipmsg.NewToken(8), fmt.Sprintf("%08x", nc)
	resp := h(h(user+":"+p["realm"]+":"+password) + ":" + p["nonce"] + ":" + ncs + ":" + cnonce + ":auth:" + h(method+":"+uri))
	return fmt.Sprintf(`Digest username="%s", realm="%s", nonce="%s", uri="%s", response="%s", algorithm=MD5, cnonce="%s", opaque="%s", qop=auth, nc=%s`,
		user, p["realm"], p["nonce"], uri, resp, cnonce, p["opaque"], ncs)
}

// isStale reports whether one of a 401/407's challenges says stale=true.
func isStale(res sip.Response, name string) bool {
	for _, h := range res.GetHeaders(name) {
		if strings.Contains(strings.ToLower(h.Value()), "stale=true") {
			return true
		}
	}
	return false
}

// registration is one client's REGISTER dialog (one Call-ID, rising CSeq)
// that, like SIP.js's Registerer, keeps the Authorization of its last
// answered challenge on every REGISTER it sends after.
type registration struct {
	u      *e2e.UA
	user   string
	callID string
	tag    string
	seq    int
	auth   string // sent on every REGISTER until the next challenge
}

func newRegistration(u *e2e.UA, user string) *registration {
	return &registration{u: u, user: user, callID: sipmsg.NewToken(8) + "@web", tag: sipmsg.NewToken(4)}
}

// send sends one REGISTER with the kept Authorization and returns the
// final answer.
func (r *registration) send(expires int) sip.Response {
	r.seq++
	auth := ""
	if r.auth != "" {
		auth = "Authorization: " + r.auth + "\n"
	}
	u := r.u
	u.Send(fmt.Sprintf(`REGISTER sip:example.com SIP/2.0
Via: SIP/2.0/%s %s;branch=z9hG4bK%s;rport
Max-Forwards: 70
From: <sip:%s@example.com>;tag=%s
To: <sip:%s@example.com>
Call-ID: %s
CSeq: %d REGISTER
Contact: <sip:%s@%s;transport=%s>;expires=%d
%sContent-Length: 0

`, u.Kind, u.Host, sipmsg.NewToken(6), r.user, r.tag, r.user, r.callID, r.seq, r.user, u.Host, strings.ToLower(u.Kind), expires, auth))
	return u.ExpectFinal()
}

// do sends a REGISTER as SIP.js does: with the kept Authorization, and
// once more with a new one when challenged (again only when the second
// challenge says stale=true). It returns the final answer and whether a
// challenge said stale.
func (r *registration) do(password string, expires int) (res sip.Response, stale bool) {
	r.u.T.Helper()
	res = r.send(expires)
	for tries := 0; res.StatusCode() == 401 && tries < 2; tries++ {
		if tries == 1 && !isStale(res, "WWW-Authenticate") {
			break
		}
		stale = stale || isStale(res, "WWW-Authenticate")
		r.auth = md5Answer(r.u.T, res.GetHeaders("WWW-Authenticate"), "REGISTER", "sip:example.com", r.user, password, 1)
		res = r.send(expires)
	}
	return res, stale
}

// TestDigestDeRegisterReusingAuthorization: SIP.js sends its refresh and
// its de-REGISTER (Expires: 0) with the Authorization of its last
// REGISTER, the same nonce-count included. The SBC refuses that replay
// with a stale challenge (it used to answer 403 "replay"), SIP.js answers
// it, and the de-REGISTER removes the binding. The credentials were right,
// so nothing counts toward a ban.
func TestDigestDeRegisterReusingAuthorization(t *testing.T) {
	sbc := e2e.RegistrarSBC(t)
	web := e2e.DialUA(t, "WS", sbc.WS.String())
	reg := newRegistration(web, "alice")
	if res, _ := reg.do("secret", 300); res.StatusCode() != 200 {
		t.Fatalf("register: %d %s", res.StatusCode(), res.Reason())
	}
	if n := len(sbc.App.Bindings().List()); n != 1 {
		t.Fatalf("%d bindings after REGISTER, want 1", n)
	}
	if res, stale := reg.do("secret", 300); res.StatusCode() != 200 || !stale {
		t.Fatalf("refresh with the last Authorization: %d %s (stale challenge %v), want 200 after a stale challenge", res.StatusCode(), res.Reason(), stale)
	}
	res, stale := reg.do("secret", 0)
	if res.StatusCode() != 200 || !stale {
		t.Fatalf("de-REGISTER with the last Authorization: %d %s (stale challenge %v), want 200 after a stale challenge", res.StatusCode(), res.Reason(), stale)
	}
	if n := len(sbc.App.Bindings().List()); n != 0 {
		t.Fatalf("%d bindings after the de-REGISTER, want 0", n)
	}
	if got := sbc.App.Server().Stats().AuthFailures.Load(); got != 0 {
		t.Fatalf("%d auth failures counted for a client with the right password, want 0", got)
	}
}

// TestDigestReplayedRegisterAndInvite: an attacker on another connection
// sends a captured REGISTER (with its own Contact) and a captured INVITE
// with their credentials again. Each gets a stale challenge and nothing
// else: no binding for the attacker, no call.
func TestDigestReplayedRegisterAndInvite(t *testing.T) {
	sbc := e2e.RegistrarSBC(t)
	web := e2e.DialUA(t, "WS", sbc.WS.String())
	reg := newRegistration(web, "alice")
	if res, _ := reg.do("secret", 300); res.StatusCode() != 200 {
		t.Fatalf("register: %d %s", res.StatusCode(), res.Reason())
	}
	attacker := e2e.DialUA(t, "WS", sbc.WS.String())
	attacker.Host = "mallory.invalid"
	stolen := newRegistration(attacker, "alice")
	stolen.auth = reg.auth
	res := stolen.send(3600)
	if res.StatusCode() != 401 || !isStale(res, "WWW-Authenticate") {
		t.Fatalf("replayed REGISTER: %d %s, want 401 with stale=true", res.StatusCode(), res.Reason())
	}
	bs := sbc.App.Bindings().List()
	if len(bs) != 1 || strings.Contains(fmt.Sprint(bs), "mallory") {
		t.Fatalf("bindings after the replayed REGISTER: %v, want alice's only", bs)
	}

	// A call between web users from a connection that holds no
	// registration needs Proxy-Authorization: the first is alice's, the
	// second the attacker's copy of it.
	phone := e2e.DialUA(t, "WS", sbc.WS.String())
	uri := "sip:alice@" + phone.SBC
	c := phone.Invite("alice", "")
	res = phone.ExpectFinal()
	if res.StatusCode() != 407 {
		t.Fatalf("INVITE without credentials: %d, want 407", res.StatusCode())
	}
	c.AckFailure(sipmsg.ToTag(res))
	cred := "Proxy-Authorization: " + md5Answer(t, res.GetHeaders("Proxy-Authenticate"), "INVITE", uri, "alice", "secret", 1) + "\n"
	c = phone.Invite("alice", cred)
	inv := web.ExpectReq("INVITE")
	web.RespondTo(inv, 486, "")
	res = phone.ExpectFinal()
	if res.StatusCode() != 486 {
		t.Fatalf("alice's authenticated call: %d, want the callee's 486", res.StatusCode())
	}
	c.AckFailure(sipmsg.ToTag(res))
	web.ExpectReq("ACK")

	thief := e2e.DialUA(t, "WS", sbc.WS.String())
	c = thief.Invite("alice", cred)
	res = thief.ExpectFinal()
	if res.StatusCode() != 407 || !isStale(res, "Proxy-Authenticate") {
		t.Fatalf("replayed INVITE: %d %s, want 407 with stale=true", res.StatusCode(), res.Reason())
	}
	c.AckFailure(sipmsg.ToTag(res))
	if m, err := web.TryRecv(300 * time.Millisecond); err == nil {
		t.Fatalf("the replayed INVITE reached alice: %v", m)
	}
	sbc.WaitCallsIdle(t)
}
