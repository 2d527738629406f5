package security

import (
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"net"
	"strings"
	"testing"

	"github.com/ghettovoice/gosip/sip"

	"github.com/sbc-project/sbc/b2bua/sipmsg"
	"github.com/sbc-project/sbc/internal/config"
	"github.com/sbc-project/sbc/test/e2e"
)

// Caller-ID spoofing at the border (issue 13, point 2): callers forge
// From, P-Asserted-Identity and P-Preferred-Identity; the trunk must see
// only what the SBC asserts from what it authenticated.

const (
	bankFrom = `"Bank" <sip:+18005551212@bank.example>`
	bankPAI  = "<sip:+18005551212@bank.example>"
	// forged are the headers an attacker adds to its INVITE.
	forged = "P-Asserted-Identity: " + bankPAI + "\nP-Preferred-Identity: " + bankPAI + "\n"
	// alicePAI is what the SBC asserts for alice (users[].caller_id) toward
	// the trunks, whose from_domain is sbc.example.
	alicePAI = "<sip:+16175550123@sbc.example;user=phone>"
	pbxPAI   = `"Front Desk" <sip:+15551230000@pbx.example>`
)

var pbxAddr = e2e.IP(4) // a trusted PBX (a trunk with trusted: true)

// identitySBC runs an SBC whose callers are not trusted, with users alice
// (caller_id +16175550123, not a number the tests dial) and bob, a trusted PBX trunk at e2e.IP(4) and
// two trunks that are test UASes: open (outside the trust domain, the
// default) and td (identity.trust_domain, identity.domain id.example).
// Routes: alice and bob are registered users; 3125550100 goes to td,
// every other number to open.
func identitySBC(t *testing.T) (sbc *e2e.SBC, open, td *trunkUAS) {
	t.Helper()
	open, td = &trunkUAS{UAS: e2e.NewUAS(t)}, &trunkUAS{UAS: e2e.NewUAS(t)}
	sbc = e2e.StartSBC(t, e2e.SBCOptions{
		Trunks: []e2e.TrunkSpec{{Name: "open", Addr: e2e.PBXIP(), Port: open.Port()}, {Name: "td", Addr: e2e.PBXIP(), Port: td.Port()}},
		Mutate: func(c *config.Config) {
			c.Users = []config.User{{Username: "alice", Password: "secret", CallerID: "+16175550123"}, {Username: "bob", Password: "hunter2"}}
			c.Trunks[0].FromDomain, c.Trunks[1].FromDomain = "sbc.example", "sbc.example"
			c.Trunks[1].Identity = config.TrunkIdentity{TrustDomain: true, Domain: "id.example"}
			c.Trunks = append(c.Trunks, config.Trunk{Name: "pbx", URI: "sip:" + pbxAddr + ":5060", Trusted: true, FailureThreshold: 1})
			c.Routes = []config.Route{
				{Name: "to-web", Match: config.Match{RURIUser: "^(alice|bob)$"}, Target: config.TargetRegistered},
				{Name: "td", Match: config.Match{RURIUser: "^3125550100$"}, Target: config.TargetTrunks, Trunks: []string{"td"}},
				{Name: "out", Target: config.TargetTrunks, Trunks: []string{"open"}},
			}
		},
	})
	return sbc, open, td
}

// trunkUAS is a test UAS standing in for a trunk that refuses every call
// (486) at once and hands each new INVITE to the test exactly as it came.
type trunkUAS struct {
	*e2e.UAS
	seen map[string]bool // B-leg Call-IDs already answered
}

// invite returns the next new INVITE, answered 486; retransmissions and
// the ACKs of earlier calls are skipped.
func (u *trunkUAS) invite() sip.Request {
	u.T.Helper()
	if u.seen == nil {
		u.seen = map[string]bool{}
	}
	for {
		req := u.ExpectReq("INVITE")
		id := sipmsg.CallID(req)
		u.Respond(req, 486, "Busy Here", "uas", "")
		if !u.seen[id] {
			u.seen[id] = true
			return req
		}
	}
}

// dialUDPFrom is DialUA over UDP from another loopback address.
func dialUDPFrom(t *testing.T, ip, sbc string) *e2e.UA {
	t.Helper()
	c, err := net.DialUDP("udp", &net.UDPAddr{IP: net.ParseIP(ip)}, e2e.MustUDPAddr(t, sbc))
	if err != nil {
		t.Fatal(err)
	}
	u := &e2e.UA{T: t, Kind: "UDP", UDP: c, SBC: sbc, Parser: sipmsg.NewParser(sipmsg.Limits{}), Host: c.LocalAddr().String()}
	t.Cleanup(u.Close)
	return u
}

// forgedInvite places an INVITE to number with the given From and extra
// headers (lines ending in \n). With a user it answers the SBC's 407 with
// that user's digest, sending the same forged headers again. It returns
// once the last INVITE is sent; its final answer is the caller's to read.
func forgedInvite(u *e2e.UA, number, from, extra, user, password string) *e2e.UACall {
	u.T.Helper()
	c := &e2e.UACall{U: u, CallID: sipmsg.NewToken(8) + "@attacker.example", FromTag: sipmsg.NewToken(4),
		To: "sip:" + number + "@" + u.SBC, Seq: 1}
	send := func(auth string) {
		c.Branch = "z9hG4bK" + sipmsg.NewToken(6)
		body := strings.ReplaceAll(e2e.CallerSDP(), "\n", "\r\n")
		u.Send(fmt.Sprintf("INVITE %s SIP/2.0\nVia: SIP/2.0/%s %s;branch=%s;rport\nMax-Forwards: 70\n"+
			"From: %s;tag=%s\nTo: <%s>\nCall-ID: %s\nCSeq: %d INVITE\nContact: <sip:x@%s;transport=%s>\n%s%s"+
			"Content-Type: application/sdp\nContent-Length: %d\n\n",
			c.To, u.Kind, u.Host, c.Branch, from, c.FromTag, c.To, c.CallID, c.Seq, u.Host, strings.ToLower(u.Kind),
			extra, auth, len(body)) + e2e.CallerSDP())
	}
	send("")
	if user == "" {
		return c
	}
	res := u.ExpectFinal()
	if res.StatusCode() != 407 {
		u.T.Fatalf("INVITE without credentials: %d %s, want 407", res.StatusCode(), res.Reason())
	}
	c.AckFailure(sipmsg.ToTag(res))
	p := map[string]string{}
	for _, h := range res.GetHeaders("Proxy-Authenticate") {
		if e2e.ReChallengeMD5.MatchString(h.Value()) {
			for _, m := range reDigestParam.FindAllStringSubmatch(h.Value(), -1) {
				p[strings.ToLower(m[1])] = m[2]
			}
		}
	}
	md := func(s string) string { sum := md5.Sum([]byte(s)); return hex.EncodeToString(sum[:]) }
	cnonce := sipmsg.NewToken(8)
	resp := md(md(user+":"+p["realm"]+":"+password) + ":" + p["nonce"] + ":00000001:" + cnonce + ":auth:" + md("INVITE:"+c.To))
	auth := fmt.Sprintf(`Proxy-Authorization: Digest username="%s", realm="%s", nonce="%s", uri="%s", response="%s", algorithm=MD5, cnonce="%s", qop=auth, nc=00000001`,
		user, p["realm"], p["nonce"], c.To, resp, cnonce)
	if p["opaque"] != "" {
		auth += fmt.Sprintf(`, opaque="%s"`, p["opaque"])
	}
	c.Seq = 2
	send(auth + "\n")
	return c
}

// refused checks that the call's final answer is the callee's 486 and
// ACKs it.
func refused(c *e2e.UACall) {
	c.U.T.Helper()
	res := c.U.ExpectFinal()
	if res.StatusCode() != 486 {
		c.U.T.Fatalf("final answer %d %s, want the callee's 486", res.StatusCode(), res.Reason())
	}
	c.AckFailure(sipmsg.ToTag(res))
}

// identity is what a callee was told about the caller.
type identity struct {
	from    string   // From without its tag
	pai     []string // P-Asserted-Identity values
	privacy string
	raw     string
}

func identityOf(req sip.Request) identity {
	id := identity{privacy: sipmsg.Header(req, "Privacy"), raw: req.String()}
	if f, ok := req.From(); ok {
		id.from = (&sip.Address{DisplayName: f.DisplayName, Uri: f.Address}).String()
	}
	for _, h := range req.GetHeaders("P-Asserted-Identity") {
		id.pai = append(id.pai, h.Value())
	}
	return id
}

// check compares what the callee saw with what it should have, and that
// nothing of the forgery reached it.
func (id identity) check(t *testing.T, from, privacy string, pai ...string) {
	t.Helper()
	if id.from != from {
		t.Errorf("callee saw From %s, want %s", id.from, from)
	}
	if strings.Join(id.pai, "\n") != strings.Join(pai, "\n") {
		t.Errorf("callee saw P-Asserted-Identity %q, want %q", id.pai, pai)
	}
	if id.privacy != privacy {
		t.Errorf("callee saw Privacy %q, want %q", id.privacy, privacy)
	}
	for _, forgery := range []string{"bank.example", "18005551212", "Bank", "P-Preferred-Identity"} {
		if strings.Contains(id.raw, forgery) {
			t.Errorf("the forged %q reached the callee:\n%s", forgery, id.raw)
		}
	}
}

// TestSecurityIdentitySpoofedCallerID: an authenticated user, and a user
// authenticated by its registration on a WebSocket, forge a bank's number
// in From, P-Asserted-Identity and P-Preferred-Identity; the trunk sees
// the SBC's assertion of who they are, and nothing of the forgery.
func TestSecurityIdentitySpoofedCallerID(t *testing.T) {
	sbc, open, _ := identitySBC(t)

	alice := e2e.DialUA(t, "UDP", sbc.UDP.String())
	call := forgedInvite(alice, "2125550100", bankFrom, forged, "alice", "secret")
	got := identityOf(open.invite())
	refused(call)
	got.check(t, alicePAI, "", alicePAI)

	web := e2e.DialUA(t, "WS", sbc.WS.String())
	if res := web.Register("bob", "hunter2", 300); res.StatusCode() != 200 {
		t.Fatalf("bob's registration: %d %s", res.StatusCode(), res.Reason())
	}
	call = forgedInvite(web, "2125550100", bankFrom, forged, "", "")
	got = identityOf(open.invite())
	refused(call)
	got.check(t, "<sip:bob@sbc.example>", "", "<sip:bob@sbc.example>")
	sbc.WaitIdle(t)
}

// TestSecurityIdentityPrivacy: a caller asking for Privacy: id reaches the
// trunk with an anonymous From; the trunk in the trust domain still gets
// the asserted identity with the Privacy request, the trunk outside it
// gets no identity at all.
func TestSecurityIdentityPrivacy(t *testing.T) {
	sbc, open, td := identitySBC(t)
	alice := e2e.DialUA(t, "UDP", sbc.UDP.String())
	const anonymous = `"Anonymous" <sip:anonymous@anonymous.invalid>`

	call := forgedInvite(alice, "3125550100", bankFrom, forged+"Privacy: id\n", "alice", "secret")
	got := identityOf(td.invite())
	refused(call)
	got.check(t, anonymous, "id", "<sip:+16175550123@id.example;user=phone>")

	call = forgedInvite(alice, "2125550100", bankFrom, forged+"Privacy: id\n", "alice", "secret")
	got = identityOf(open.invite())
	refused(call)
	got.check(t, anonymous, "id")
	if strings.Contains(got.raw, "16175550123") || strings.Contains(got.raw, "alice") {
		t.Errorf("the untrusted trunk learned who asked for privacy:\n%s", got.raw)
	}
	sbc.WaitIdle(t)
}

// TestSecurityIdentityTrustedSource: a trusted PBX's assertion is kept
// toward a trunk and toward a registered user, while the same headers from
// an untrusted caller are dropped on the way to the registered user.
func TestSecurityIdentityTrustedSource(t *testing.T) {
	sbc, open, _ := identitySBC(t)
	pbx := dialUDPFrom(t, pbxAddr, sbc.UDP.String())
	pbxHeaders := "P-Asserted-Identity: " + pbxPAI + "\nP-Preferred-Identity: <sip:9999@pbx.example>\n"

	call := forgedInvite(pbx, "2125550100", `"Desk" <sip:1001@pbx.example>`, pbxHeaders, "", "")
	got := identityOf(open.invite())
	refused(call)
	got.check(t, `"Desk" <sip:1001@sbc.example>`, "", pbxPAI)
	if strings.Contains(got.raw, "9999") {
		t.Errorf("the PBX's P-Preferred-Identity reached the trunk:\n%s", got.raw)
	}

	web := e2e.DialUA(t, "WS", sbc.WS.String())
	if res := web.Register("alice", "secret", 300); res.StatusCode() != 200 {
		t.Fatalf("alice's registration: %d %s", res.StatusCode(), res.Reason())
	}
	ringWeb := func(caller *e2e.UA, from, headers string) identity {
		t.Helper()
		call := forgedInvite(caller, "alice", from, headers, "", "")
		req := web.ExpectReq("INVITE")
		web.RespondTo(req, 486, "")
		refused(call)
		web.ExpectReq("ACK")
		return identityOf(req)
	}
	got = ringWeb(pbx, `"Desk" <sip:1001@pbx.example>`, pbxHeaders)
	if strings.Join(got.pai, "") != pbxPAI {
		t.Errorf("the registered user saw P-Asserted-Identity %q from the trusted PBX, want %s", got.pai, pbxPAI)
	}
	stranger := e2e.DialUA(t, "UDP", sbc.UDP.String()) // e2e.CallerIP(): no trunk, no trusted source
	got = ringWeb(stranger, `"Caller" <sip:5550100@stranger.example>`, forged)
	got.check(t, `"Caller" <sip:5550100@127.0.0.1>`, "")
	sbc.WaitIdle(t)
}
