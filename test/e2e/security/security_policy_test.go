package security

import (
	"strings"
	"testing"
	"time"

	"github.com/ghettovoice/gosip/sip"

	"github.com/sbc-project/sbc/b2bua/sipmsg"
	"github.com/sbc-project/sbc/internal/config"
	"github.com/sbc-project/sbc/policy"
	"github.com/sbc-project/sbc/test/e2e"
)

// Attacks on the policy chain (issue 13, points 7, 8 and 11): toll fraud
// through dial strings the rules read one way and a trunk another, bans
// aimed at a victim with one spoofed datagram, and the echo destination
// used to exhaust the RTP ports.

// dialSBC routes every call to the scripted trunk pbx without trusting
// anyone: alice (default group, national calls only) must authenticate,
// and the dial rules are the shipped default NANP plan unless plan changes
// them.
func dialSBC(t *testing.T, pbx *e2e.UAS, plan func(*policy.DialRulesSpec)) *e2e.SBC {
	return e2e.StartSBC(t, e2e.SBCOptions{Trunks: e2e.PBXTrunk(pbx), Mutate: func(c *config.Config) {
		c.Users = []config.User{{Username: "alice", Password: "secret"}}
		c.Routes = []config.Route{{Name: "out", Target: config.TargetTrunks, Trunks: []string{"pbx"}}}
		// The caller tries some fifty INVITEs in a row: faster than the
		// INVITE rate limit allows, and not what these tests are about.
		c.Policy.RateLimit.ExemptCIDRs = []string{e2e.CallerIP()}
		if plan != nil {
			plan(&c.Policy.DialRules)
		}
	}})
}

// dialAttempt is a request-URI user an authenticated caller sends and the
// answer it must get.
type dialAttempt struct {
	user string
	code int // 403 (the rules refuse the number) or 484 (unreadable)
}

// TestSecurityDialRuleBypass: alice, authenticated, may call national
// numbers only. Every way of writing an international or premium number
// that a trunk could dial is refused (403 when the SBC reads the number,
// 484 when it cannot read it), and the trunk sees no INVITE; a national
// number still completes, and the trunk is asked for exactly the number
// the rules checked, in E.164.
func TestSecurityDialRuleBypass(t *testing.T) {
	pbx := e2e.NewUAS(t)
	sbc := dialSBC(t, pbx, nil)
	ua := e2e.DialUA(t, "WS", sbc.WS.String())
	attempts := []dialAttempt{
		{"011442079460958", 403},
		{"011442079460958#", 403},                 // the send key
		{"011442079460958%23", 403},               // the send key, escaped
		{"*67011442079460958", 484},               // caller-ID block: not a code of the default plan
		{"9011442079460958", 484},                 // outside line: not a code of the default plan
		{"00442079460958", 484},                   // the European international prefix
		{"+44/2079460958", 484},                   // a separator nobody defines
		{"%2B442079460958", 403},                  // "+" escaped
		{"%252B442079460958", 403},                // "+" escaped twice: a trunk may unescape again
		{"%25252B442079460958", 484},              // and three times
		{"tel:+442079460958", 403},                // userinfo: user "tel", password "+44..."
		{"011%2044%2020%207946%200958", 403},      // spaces
		{"2079460958;phone-context=+44", 403},     // a local number in the UK
		{"011442079460958;phone-context=+1", 484}, // +1011442079460958: too long
		{"+1-011-442-0794", 484},                  // no North American area code starts with 0
		{"0114420794609580000000000000", 484},     // longer than any number
		{"０１１４４2079460958", 484},                  // fullwidth digits
		{"%EF%BC%90%EF%BC%91%EF%BC%91442079460958", 484},
		{"x011442079460958", 484}, // a "name" hiding a number
		{"1-900-555-0100", 403},   // premium rate
		{"+881612345678", 403},    // satellite
	}
	for _, a := range attempts {
		c, res := authedInvite(ua, a.user, "alice", "secret")
		if int(res.StatusCode()) != a.code {
			t.Errorf("alice dialing %q: %d %s, want %d", a.user, res.StatusCode(), res.Reason(), a.code)
		}
		c.AckFailure(sipmsg.ToTag(res))
	}

	// A national number completes; it is the first INVITE the trunk sees,
	// so none of the above reached it.
	call, inv := completeAuthedCall(t, ua, pbx, "(212)%20555-0100")
	if got := inv.Recipient().User().String(); got != "+12125550100" {
		t.Errorf("trunk asked for %q, want the checked number +12125550100", got)
	}
	endCall(t, ua, pbx, call)
	sbc.WaitIdle(t)
}

// TestSecurityDialRulePBXCodes: with the outside-line code 9 and the
// feature code *67 in the plan, the SBC reads what follows them: an
// international number behind them is refused, a national one completes,
// and the trunk gets the number alone, never the codes it might read
// differently.
func TestSecurityDialRulePBXCodes(t *testing.T) {
	pbx := e2e.NewUAS(t)
	sbc := dialSBC(t, pbx, func(d *policy.DialRulesSpec) {
		d.AccessCodes, d.FeatureCodes = []string{"9"}, []string{"*67"}
	})
	ua := e2e.DialUA(t, "WS", sbc.WS.String())
	for _, a := range []dialAttempt{{"9011442079460958", 403}, {"*67011442079460958", 403},
		{"*679011442079460958", 403}, {"99011442079460958", 484}} {
		c, res := authedInvite(ua, a.user, "alice", "secret")
		if int(res.StatusCode()) != a.code {
			t.Errorf("alice dialing %q: %d %s, want %d", a.user, res.StatusCode(), res.Reason(), a.code)
		}
		c.AckFailure(sipmsg.ToTag(res))
	}
	for _, user := range []string{"*6792125550100", "1000"} {
		call, inv := completeAuthedCall(t, ua, pbx, user)
		want := map[string]string{"*6792125550100": "+12125550100", "1000": "1000"}[user]
		if got := inv.Recipient().User().String(); got != want {
			t.Errorf("alice dialed %q: trunk asked for %q, want %q", user, got, want)
		}
		if to, _ := inv.To(); to == nil || to.Address.User() == nil || to.Address.User().String() != want {
			t.Errorf("alice dialed %q: trunk's To is %v, want user %q", user, to, want)
		}
		endCall(t, ua, pbx, call)
	}
	sbc.WaitIdle(t)
}

// completeAuthedCall places an authenticated call to user, has the trunk
// answer it, and returns the call and the INVITE the trunk got, which
// must be the first message the trunk sees.
func completeAuthedCall(t *testing.T, ua *e2e.UA, pbx *e2e.UAS, user string) (*e2e.UACall, sip.Request) {
	t.Helper()
	c := authedSend(ua, user, "alice", "secret")
	buf := make([]byte, 65535)
	if err := pbx.Conn.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	n, from, err := pbx.Conn.ReadFromUDP(buf)
	if err != nil {
		res := ua.ExpectFinal()
		t.Fatalf("trunk got nothing for %q (%v); the caller got %d %s", user, err, res.StatusCode(), res.Reason())
	}
	pbx.SBC, pbx.Log = from, append(pbx.Log, string(buf[:n]))
	m, err := pbx.Parser.Parse(buf[:n])
	if err != nil {
		t.Fatalf("trunk got a bad message: %v\n%s", err, buf[:n])
	}
	inv, ok := m.(sip.Request)
	if !ok || inv.Method() != sip.INVITE {
		t.Fatalf("trunk's first message is %s, want the INVITE for %q:\n%s", m.Short(), user, strings.Join(pbx.Log, "\n----\n"))
	}
	pbx.Respond(inv, 200, "OK", "pbx1", e2e.UASSDP())
	c.Answered(ua.Expect(200))
	c.Ack()
	pbx.ExpectReq("ACK")
	return c, inv
}

// endCall hangs up from the caller's side.
func endCall(t *testing.T, ua *e2e.UA, pbx *e2e.UAS, c *e2e.UACall) {
	t.Helper()
	c.Bye()
	bye := pbx.ExpectReq("BYE")
	pbx.Respond(bye, 200, "OK", "", "")
	ua.Expect(200)
}

// TestSecurityEchoAdmission: the echo destination needs no credentials,
// so one stranger opens echo calls until refused. The refusal (503 with
// Retry-After) comes at the per-source default limit, another source
// still gets its echo call, and the media sessions (RTP ports) in use
// stay bounded by the limits, not by the attacker's patience.
func TestSecurityEchoAdmission(t *testing.T) {
	sbc := e2e.StartSBC(t, e2e.SBCOptions{}) // the shipped defaults: only the echo route
	limit := policy.DefaultEchoMaxCallsIP
	attacker := e2e.DialUAFrom(t, "UDP", sbc.UDP.String(), e2e.IP(5))
	var held []*e2e.UACall
	refusedAt := 0
	for i := 1; i <= limit+3 && refusedAt == 0; i++ {
		c := attacker.Invite("echo", "")
		res := attacker.ExpectFinal()
		switch res.StatusCode() {
		case 200:
			c.Answered(res)
			c.Ack()
			held = append(held, c)
		case 503:
			if ra := sipmsg.Header(res, "Retry-After"); ra == "" {
				t.Errorf("echo call %d refused without Retry-After", i)
			}
			c.AckFailure(sipmsg.ToTag(res))
			refusedAt = i
		default:
			t.Fatalf("echo call %d: %d %s", i, res.StatusCode(), res.Reason())
		}
	}
	if refusedAt != limit+1 {
		t.Fatalf("attacker refused at echo call %d, want %d (the per-source limit is %d)", refusedAt, limit+1, limit)
	}
	if sessions, echo := sbc.App.Media().Active(), sbc.App.Echo().Calls(); sessions != limit || echo != limit {
		t.Errorf("%d media sessions and %d echo calls for one source, want %d", sessions, echo, limit)
	}

	// Another source is not refused for the attacker's calls.
	other := e2e.DialUAFrom(t, "UDP", sbc.UDP.String(), e2e.IP(6))
	c := other.Invite("echo", "")
	res := other.ExpectFinal()
	if res.StatusCode() != 200 {
		t.Fatalf("another source's echo call: %d %s", res.StatusCode(), res.Reason())
	}
	c.Answered(res)
	c.Ack()
	if sessions := sbc.App.Media().Active(); sessions != limit+1 {
		t.Errorf("%d media sessions in use, want %d", sessions, limit+1)
	}
	c.Bye()
	other.Expect(200)
	for _, h := range held {
		h.Bye()
		attacker.Expect(200)
	}
	sbc.WaitIdle(t)
}
