package b2bua

import (
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"log/slog"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ghettovoice/gosip/sip"

	"github.com/sbc-project/sbc/b2bua/registrar"
	"github.com/sbc-project/sbc/b2bua/registration"
	"github.com/sbc-project/sbc/b2bua/sipmsg"
	"github.com/sbc-project/sbc/b2bua/transport"
	"github.com/sbc-project/sbc/policy"
)

const (
	paRealm  = "sbc.test"
	paRURI   = "sip:+442071234567@sbc.test"
	paSecret = "shared-with-webapp"
)

// paClock is a settable clock, safe for concurrent use.
type paClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *paClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *paClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newPolicyTestAuth(t *testing.T, clk *paClock, algs ...string) *registrar.Auth {
	t.Helper()
	a, err := registrar.NewAuth(registrar.AuthConfig{
		Realm: paRealm, Algorithms: algs, Now: clk.now, NonceTTL: time.Minute,
		Users:      map[string]string{"alice": "secret", "bob": "hunter2"},
		Groups:     map[string]string{"alice": "intl"},
		HMACSecret: []byte(paSecret),
	})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// paInvite is an INVITE to paRURI with the given Proxy-Authorization values.
func paInvite(t *testing.T, creds ...string) sip.Request {
	t.Helper()
	ruri, err := sipmsg.ParseURI(paRURI)
	if err != nil {
		t.Fatal(err)
	}
	var hs []sip.Header
	for _, c := range creds {
		hs = append(hs, sipmsg.Generic("Proxy-Authorization", c))
	}
	return sipmsg.NewRequest(sip.INVITE, ruri, hs, "", "")
}

var paramRe = regexp.MustCompile(`(\w+)=(?:"([^"]*)"|([^,\s]+))`)

// paAnswer answers a Proxy-Authenticate challenge as a client would.
func paAnswer(challenge, user, password string) string {
	p := map[string]string{}
	for _, m := range paramRe.FindAllStringSubmatch(challenge, -1) {
		p[m[1]] = m[2] + m[3]
	}
	alg := p["algorithm"]
	h := func(s string) string {
		var d hash.Hash = md5.New()
		if alg == registrar.AlgSHA256 {
			d = sha256.New()
		}
		d.Write([]byte(s))
		return hex.EncodeToString(d.Sum(nil))
	}
	const nc, cnonce = "00000001", "c0ffee42"
	resp := h(h(user+":"+p["realm"]+":"+password) + ":" + p["nonce"] + ":" + nc + ":" + cnonce + ":auth:" + h("INVITE:"+paRURI))
	return `Digest username="` + user + `", realm="` + p["realm"] + `", nonce="` + p["nonce"] + `", uri="` + paRURI +
		`", response="` + resp + `", algorithm=` + alg + `, cnonce="` + cnonce + `", opaque="` + p["opaque"] + `", qop=auth, nc=` + nc
}

// challengeFor returns a fresh challenge of a for alg, as a request without
// credentials gets it.
func challengeFor(t *testing.T, a *registrar.Auth, alg string) string {
	t.Helper()
	ia := newInviteAuth(a, paInvite(t))
	if _, _, ok, _, _ := ia.Check(context.Background()); ok {
		t.Fatal("no credentials accepted")
	}
	for _, c := range ia.Challenges() {
		if strings.Contains(c[1], "algorithm="+alg) {
			return c[1]
		}
	}
	t.Fatalf("no %s challenge in %q", alg, ia.Challenges())
	return ""
}

func TestInviteAuthChallenge(t *testing.T) {
	clk := &paClock{t: time.Unix(1_800_000_000, 0)}
	a := newPolicyTestAuth(t, clk)
	ia := newInviteAuth(a, paInvite(t))
	user, group, ok, challenge, failed := ia.Check(context.Background())
	if ok || failed || user != "" || group != "" {
		t.Fatalf("Check = %q, %q, %v, failed %v; want a challenge", user, group, ok, failed)
	}
	all := ia.Challenges()
	if len(all) != 2 || all[0] != challenge {
		t.Fatalf("Challenges = %q, Check's = %q", all, challenge)
	}
	for i, alg := range []string{registrar.AlgSHA256, registrar.AlgMD5} {
		if all[i][0] != "Proxy-Authenticate" || !strings.Contains(all[i][1], "algorithm="+alg) ||
			!strings.Contains(all[i][1], `realm="`+paRealm+`"`) || strings.Contains(all[i][1], "stale") {
			t.Errorf("challenge %d = %q, want %s", i, all[i], alg)
		}
	}
}

func TestInviteAuthCheck(t *testing.T) {
	clk := &paClock{t: time.Unix(1_800_000_000, 0)}
	a := newPolicyTestAuth(t, clk)
	minted := strconv.FormatInt(clk.now().Unix()+3600, 10) + ":carol"
	tests := []struct {
		name, alg, user, password string
		ok, failed                bool
		wantUser, wantGroup       string
	}{
		{"sha-256", registrar.AlgSHA256, "alice", "secret", true, false, "alice", "intl"},
		{"md5", registrar.AlgMD5, "alice", "secret", true, false, "alice", "intl"},
		{"no group", registrar.AlgSHA256, "bob", "hunter2", true, false, "bob", ""},
		{"hmac", registrar.AlgMD5, minted, registrar.EphemeralPassword([]byte(paSecret), minted), true, false, "carol", ""},
		{"wrong password", registrar.AlgSHA256, "alice", "guess", false, true, "", ""},
		{"wrong password md5", registrar.AlgMD5, "bob", "secret", false, true, "", ""},
		{"unknown user", registrar.AlgSHA256, "mallory", "secret", false, true, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cred := paAnswer(challengeFor(t, a, tt.alg), tt.user, tt.password)
			ia := newInviteAuth(a, paInvite(t, cred))
			user, group, ok, challenge, failed := ia.Check(context.Background())
			if ok != tt.ok || failed != tt.failed || user != tt.wantUser || group != tt.wantGroup {
				t.Fatalf("Check = %q, %q, ok %v, failed %v; want %q, %q, ok %v, failed %v",
					user, group, ok, failed, tt.wantUser, tt.wantGroup, tt.ok, tt.failed)
			}
			if !ok && challenge[0] != "Proxy-Authenticate" {
				t.Fatalf("refusal without challenge: %q", challenge)
			}
			if ok && len(ia.Challenges()) != 0 {
				t.Fatalf("challenges after success: %q", ia.Challenges())
			}
		})
	}
}

// TestInviteAuthReplayAndStale: the same credentials again are a replay:
// refused with a fresh challenge saying stale=true (a client retries, a
// replayer needs the password), not failed; right credentials on an old
// nonce likewise.
func TestInviteAuthReplayAndStale(t *testing.T) {
	clk := &paClock{t: time.Unix(1_800_000_000, 0)}
	a := newPolicyTestAuth(t, clk)
	cred := paAnswer(challengeFor(t, a, registrar.AlgSHA256), "alice", "secret")
	if _, _, ok, _, _ := newInviteAuth(a, paInvite(t, cred)).Check(context.Background()); !ok {
		t.Fatal("first use refused")
	}
	if user, _, ok, challenge, failed := newInviteAuth(a, paInvite(t, cred)).Check(context.Background()); ok || user != "" || failed || !strings.Contains(challenge[1], "stale=true") {
		t.Fatalf("replay: %q ok %v, failed %v, challenge %q; want refused with a stale challenge, not failed", user, ok, failed, challenge)
	}
	old := paAnswer(challengeFor(t, a, registrar.AlgMD5), "alice", "secret")
	clk.advance(2 * time.Minute)
	_, _, ok, challenge, failed := newInviteAuth(a, paInvite(t, old)).Check(context.Background())
	if ok || failed || !strings.Contains(challenge[1], "stale=true") {
		t.Fatalf("stale: ok %v, failed %v, challenge %q", ok, failed, challenge)
	}
}

// TestInviteAuthGosipClient: gosip's client answers the first challenge
// with MD5 and Proxy-Authorization.
func TestInviteAuthGosipClient(t *testing.T) {
	clk := &paClock{t: time.Unix(1_800_000_000, 0)}
	a := newPolicyTestAuth(t, clk, "MD5")
	req := paInvite(t)
	ia := newInviteAuth(a, req)
	if _, _, ok, _, _ := ia.Check(context.Background()); ok {
		t.Fatal("no credentials accepted")
	}
	var hs []sip.Header
	for _, c := range ia.Challenges() {
		hs = append(hs, sipmsg.Generic(c[0], c[1]))
	}
	res := sipmsg.NewResponse(407, "Proxy Authentication Required", hs, "", "")
	if err := sip.AuthorizeRequest(req, res, sip.String{Str: "bob"}, sip.String{Str: "hunter2"}); err != nil {
		t.Fatal(err)
	}
	user, group, ok, _, failed := newInviteAuth(a, req).Check(context.Background())
	if !ok || failed || user != "bob" || group != "" {
		t.Fatalf("Check = %q, %q, ok %v, failed %v", user, group, ok, failed)
	}
}

// TestInviteAuthenticatorServer: through the server, with and without a
// registrar, and behind the policy chain's auth stage.
func TestInviteAuthenticatorServer(t *testing.T) {
	clk := &paClock{t: time.Unix(1_800_000_000, 0)}
	stage := policy.NewAuth("default", nil)
	src := transport.Target{Addr: netip.MustParseAddrPort("127.0.0.1:5060")}
	tests := []struct {
		name    string
		s       *Server
		code    int
		headers int
	}{
		{"no registrar", &Server{}, 403, 0},
		{"registrar", withRegistrar(newPolicyTestAuth(t, clk)), 407, 2},
		{"registrar without users", withRegistrar(func() *registrar.Auth {
			a, err := registrar.NewAuth(registrar.AuthConfig{Realm: paRealm})
			if err != nil {
				t.Fatal(err)
			}
			return a
		}()), 407, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &policy.Request{Target: policy.TargetTrunks, Transport: "wss", Auth: tt.s.inviteAuthenticator(paInvite(t), src)}
			d := stage.Check(context.Background(), r)
			if d.Action != policy.Answer || d.Code != tt.code || len(d.Headers) != tt.headers {
				t.Fatalf("Check = %+v, want %d with %d headers", d, tt.code, tt.headers)
			}
		})
	}
}

// withRegistrar is a server whose registration service checks with a and
// holds no binding.
func withRegistrar(a *registrar.Auth) *Server {
	return &Server{reg: registration.New(registration.Config{}, registration.Deps{
		Store: registrar.NewStore(registrar.Config{}), Auth: a, Log: slog.New(slog.DiscardHandler)})}
}
