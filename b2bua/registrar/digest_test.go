package registrar

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ghettovoice/gosip/sip"
	"github.com/sbc-project/sbc/b2bua/sipmsg"
)

// The example of RFC 7616 section 3.9.1 (qop=auth, MD5 and SHA-256).
const (
	rfcUser     = "Mufasa"
	rfcPassword = "Circle of Life"
	rfcRealm    = "http-auth@example.org"
	rfcNonce    = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v"
	rfcCnonce   = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"
	rfcOpaque   = "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"
)

func TestDigestRFC7616Vectors(t *testing.T) {
	tests := []struct {
		alg  string
		want string
	}{
		{AlgMD5, "8ca523f5e9506fed4657c9700eebdbec"},
		{AlgSHA256, "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"},
	}
	for _, tt := range tests {
		t.Run(tt.alg, func(t *testing.T) {
			got := digestResponse(tt.alg, rfcUser, rfcRealm, rfcPassword, "GET", "/dir/index.html", rfcNonce, "00000001", rfcCnonce)
			if got != tt.want {
				t.Fatalf("response = %s, want %s", got, tt.want)
			}
			// The spec's Authorization header parses into the same fields.
			hdr := `Digest username="Mufasa", realm="http-auth@example.org", uri="/dir/index.html", algorithm=` + tt.alg +
				`, nonce="` + rfcNonce + `", nc=00000001, cnonce="` + rfcCnonce + `", qop=auth, response="` + tt.want +
				`", opaque="` + rfcOpaque + `"`
			p, err := parseDigest(hdr)
			if err != nil {
				t.Fatal(err)
			}
			if p["username"] != rfcUser || p["nonce"] != rfcNonce || p["cnonce"] != rfcCnonce || p["response"] != tt.want || p["algorithm"] != tt.alg {
				t.Fatalf("parsed %v", p)
			}
		})
	}
}

// clock is a settable fake clock, safe for concurrent use.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Unix(1_800_000_000, 0)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

const (
	testRealm = "sbc.example"
	testURI   = "sip:sbc.example"
)

func newTestAuth(t *testing.T, clk *clock, mod func(*AuthConfig)) *Auth {
	t.Helper()
	cfg := AuthConfig{
		Realm:      testRealm,
		Users:      map[string]string{"alice": "secret", "bob": "hunter2"},
		HMACSecret: []byte("shared-with-webapp"),
		Now:        clk.Now,
	}
	if mod != nil {
		mod(&cfg)
	}
	a, err := NewAuth(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// answer is a test client: it answers challenge as user with password.
func answer(t *testing.T, challenge, user, password, method, uri string, nc uint32) string {
	t.Helper()
	p, err := parseDigest(challenge)
	if err != nil {
		t.Fatalf("challenge %q: %v", challenge, err)
	}
	alg := p["algorithm"]
	ncs := fmt.Sprintf("%08x", nc)
	cnonce := "0a4f113b"
	resp := digestResponse(alg, user, p["realm"], password, method, uri, p["nonce"], ncs, cnonce)
	return `Digest username=` + sipmsg.Quote(user) + `, realm=` + sipmsg.Quote(p["realm"]) + `, nonce="` + p["nonce"] +
		`", uri="` + uri + `", response="` + resp + `", algorithm=` + alg + `, cnonce="` + cnonce +
		`", opaque="` + p["opaque"] + `", qop=auth, nc=` + ncs
}

func TestChallengeShape(t *testing.T) {
	a := newTestAuth(t, newClock(), nil)
	ch := a.Challenge(false)
	if len(ch) != 2 {
		t.Fatalf("got %d challenges, want 2", len(ch))
	}
	for i, alg := range []string{AlgSHA256, AlgMD5} {
		p, err := parseDigest(ch[i])
		if err != nil {
			t.Fatal(err)
		}
		if p["algorithm"] != alg || p["realm"] != testRealm || p["qop"] != "auth" || p["opaque"] == "" || len(p["nonce"]) != nonceLen {
			t.Errorf("challenge %d = %q", i, ch[i])
		}
		if _, ok := p["stale"]; ok {
			t.Errorf("challenge %d has stale: %q", i, ch[i])
		}
	}
	if ch[0] == ch[1] {
		t.Error("challenges share a nonce")
	}
	if s := a.Challenge(true); !strings.HasSuffix(s[0], ", stale=true") {
		t.Errorf("stale challenge = %q", s[0])
	}
}

func TestVerifyRoundTrip(t *testing.T) {
	clk := newClock()
	a := newTestAuth(t, clk, nil)
	for i, alg := range []string{AlgSHA256, AlgMD5} {
		t.Run(alg, func(t *testing.T) {
			ch := a.Challenge(false)[i]
			user, r := a.Verify("REGISTER", testURI, []string{answer(t, ch, "alice", "secret", "REGISTER", testURI, 1)})
			if r != Ok || user != "alice" {
				t.Fatalf("Verify = %q, %v", user, r)
			}
			// The next request on the same nonce counts up.
			user, r = a.Verify("INVITE", testURI, []string{answer(t, ch, "alice", "secret", "INVITE", testURI, 2)})
			if r != Ok || user != "alice" {
				t.Fatalf("Verify nc=2 = %q, %v", user, r)
			}
		})
	}
}

// TestVerifyGosipClient checks interoperability with gosip's own client,
// which speaks MD5 only and answers the first challenge.
func TestVerifyGosipClient(t *testing.T) {
	a := newTestAuth(t, newClock(), func(c *AuthConfig) { c.Algorithms = []string{"md5"} })
	ruri, err := sipmsg.ParseURI(testURI)
	if err != nil {
		t.Fatal(err)
	}
	req := sipmsg.NewRequest(sip.REGISTER, ruri, nil, "", "")
	hdrs := []sip.Header{}
	for _, c := range a.Challenge(false) {
		hdrs = append(hdrs, sipmsg.Generic("WWW-Authenticate", c))
	}
	res := sipmsg.NewResponse(401, "Unauthorized", hdrs, "", "")
	if err := sip.AuthorizeRequest(req, res, sip.String{Str: "bob"}, sip.String{Str: "hunter2"}); err != nil {
		t.Fatal(err)
	}
	var vals []string
	for _, h := range req.GetHeaders("Authorization") {
		vals = append(vals, h.Value())
	}
	if user, r := a.Verify("REGISTER", req.Recipient().String(), vals); r != Ok || user != "bob" {
		t.Fatalf("Verify(%q) = %q, %v", vals, user, r)
	}
}

func TestVerifyOutcomes(t *testing.T) {
	clk := newClock()
	a := newTestAuth(t, clk, nil)
	sha := func() string { return a.Challenge(false)[0] }
	other := newTestAuth(t, clk, nil)
	tests := []struct {
		name   string
		values func() []string
		uri    string
		want   Result
		user   string
	}{
		{"ok", func() []string { return []string{answer(t, sha(), "alice", "secret", "REGISTER", testURI, 1)} }, testURI, Ok, "alice"},
		{"no header", func() []string { return nil }, testURI, Missing, ""},
		{"other scheme", func() []string { return []string{`Basic YWxpY2U6c2VjcmV0`} }, testURI, Missing, ""},
		{"other realm", func() []string {
			return []string{strings.Replace(answer(t, sha(), "alice", "secret", "REGISTER", testURI, 1), testRealm, "elsewhere", 1)}
		}, testURI, Missing, ""},
		{"other realm then ours", func() []string {
			return []string{`Digest realm="elsewhere", username="x"`, answer(t, sha(), "alice", "secret", "REGISTER", testURI, 1)}
		}, testURI, Ok, "alice"},
		{"wrong password", func() []string { return []string{answer(t, sha(), "alice", "guess", "REGISTER", testURI, 1)} }, testURI, BadPassword, ""},
		{"unknown user", func() []string { return []string{answer(t, sha(), "mallory", "secret", "REGISTER", testURI, 1)} }, testURI, UnknownUser, ""},
		{"wrong method", func() []string { return []string{answer(t, sha(), "alice", "secret", "INVITE", testURI, 1)} }, testURI, BadPassword, ""},
		{"uri names another target", func() []string {
			return []string{answer(t, sha(), "alice", "secret", "REGISTER", "sip:evil.example", 1)}
		}, testURI, Malformed, ""},
		{"uri same target other spelling", func() []string {
			return []string{answer(t, sha(), "alice", "secret", "REGISTER", "sip:SBC.example;transport=tcp", 1)}
		}, testURI, Ok, "alice"},
		{"foreign nonce right password", func() []string {
			return []string{answer(t, other.Challenge(false)[0], "alice", "secret", "REGISTER", testURI, 1)}
		}, testURI, Stale, ""},
		{"foreign nonce wrong password", func() []string {
			return []string{answer(t, other.Challenge(false)[0], "alice", "nope", "REGISTER", testURI, 1)}
		}, testURI, BadPassword, ""},
		{"garbage", func() []string { return []string{`Digest username="alice`} }, testURI, Malformed, ""},
		{"no qop", func() []string {
			return []string{strings.Replace(answer(t, sha(), "alice", "secret", "REGISTER", testURI, 1), ", qop=auth", "", 1)}
		}, testURI, Malformed, ""},
		{"auth-int", func() []string {
			return []string{strings.Replace(answer(t, sha(), "alice", "secret", "REGISTER", testURI, 1), "qop=auth", "qop=auth-int", 1)}
		}, testURI, Malformed, ""},
		{"sess algorithm", func() []string {
			return []string{strings.Replace(answer(t, sha(), "alice", "secret", "REGISTER", testURI, 1), "algorithm=SHA-256", "algorithm=SHA-256-sess", 1)}
		}, testURI, Malformed, ""},
		{"nc zero", func() []string { return []string{answer(t, sha(), "alice", "secret", "REGISTER", testURI, 0)} }, testURI, Malformed, ""},
		{"duplicate param", func() []string {
			return []string{answer(t, sha(), "alice", "secret", "REGISTER", testURI, 1) + `, username="bob"`}
		}, testURI, Malformed, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			user, r := a.Verify("REGISTER", tt.uri, tt.values())
			if r != tt.want || user != tt.user {
				t.Fatalf("Verify = %q, %v; want %q, %v", user, r, tt.user, tt.want)
			}
		})
	}
}

func TestVerifyStaleNonce(t *testing.T) {
	clk := newClock()
	a := newTestAuth(t, clk, func(c *AuthConfig) { c.NonceTTL = time.Minute })
	ch := a.Challenge(false)[0]
	clk.Advance(59 * time.Second)
	if _, r := a.Verify("REGISTER", testURI, []string{answer(t, ch, "alice", "secret", "REGISTER", testURI, 1)}); r != Ok {
		t.Fatalf("young nonce: %v", r)
	}
	clk.Advance(2 * time.Second)
	if _, r := a.Verify("REGISTER", testURI, []string{answer(t, ch, "alice", "secret", "REGISTER", testURI, 2)}); r != Stale {
		t.Fatalf("old nonce, right password: %v, want stale", r)
	}
	if _, r := a.Verify("REGISTER", testURI, []string{answer(t, ch, "alice", "wrong", "REGISTER", testURI, 3)}); r != BadPassword {
		t.Fatalf("old nonce, wrong password: %v, want bad-password", r)
	}
}

func TestVerifyReplay(t *testing.T) {
	a := newTestAuth(t, newClock(), nil)
	ch := a.Challenge(false)[1]
	v3 := answer(t, ch, "alice", "secret", "REGISTER", testURI, 3)
	steps := []struct {
		value string
		want  Result
	}{
		{v3, Ok},
		{v3, Replay},
		{answer(t, ch, "alice", "secret", "REGISTER", testURI, 2), Replay},
		{answer(t, ch, "alice", "wrong", "REGISTER", testURI, 9), BadPassword}, // must not advance nc
		{answer(t, ch, "alice", "secret", "REGISTER", testURI, 4), Ok},
	}
	for i, s := range steps {
		if _, r := a.Verify("REGISTER", testURI, []string{s.value}); r != s.want {
			t.Fatalf("step %d: %v, want %v", i, r, s.want)
		}
	}
}

func TestVerifyEphemeral(t *testing.T) {
	clk := newClock()
	a := newTestAuth(t, clk, nil)
	secret := []byte("shared-with-webapp")
	valid := EphemeralUsername("carol", clk.Now().Add(time.Hour))
	expired := EphemeralUsername("carol", clk.Now().Add(-time.Second))
	tests := []struct {
		name, user, password string
		want                 Result
		wantUser             string
	}{
		{"valid", valid, EphemeralPassword(secret, valid), Ok, "carol"},
		{"expired", expired, EphemeralPassword(secret, expired), Expired, ""},
		{"other secret", valid, EphemeralPassword([]byte("guess"), valid), BadPassword, ""},
		{"expiry moved", EphemeralUsername("carol", clk.Now().Add(99*time.Hour)), EphemeralPassword(secret, valid), BadPassword, ""},
		{"user swapped", strings.Replace(valid, "carol", "alice", 1), EphemeralPassword(secret, valid), BadPassword, ""},
		{"no expiry", "carol", EphemeralPassword(secret, "carol"), UnknownUser, ""},
		{"bad expiry", "soon:carol", EphemeralPassword(secret, "soon:carol"), UnknownUser, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := answer(t, a.Challenge(false)[0], tt.user, tt.password, "REGISTER", testURI, 1)
			user, r := a.Verify("REGISTER", testURI, []string{v})
			if r != tt.want || user != tt.wantUser {
				t.Fatalf("Verify = %q, %v; want %q, %v", user, r, tt.wantUser, tt.want)
			}
		})
	}
	// Without a secret, ephemeral names are just unknown users.
	b := newTestAuth(t, clk, func(c *AuthConfig) { c.HMACSecret = nil })
	v := answer(t, b.Challenge(false)[0], valid, EphemeralPassword(secret, valid), "REGISTER", testURI, 1)
	if _, r := b.Verify("REGISTER", testURI, []string{v}); r != UnknownUser {
		t.Fatalf("no secret: %v", r)
	}
}

func TestNewAuthErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  AuthConfig
	}{
		{"no realm", AuthConfig{}},
		{"unknown algorithm", AuthConfig{Realm: "r", Algorithms: []string{"SHA-512-256"}}},
		{"duplicate algorithm", AuthConfig{Realm: "r", Algorithms: []string{"MD5", "md5"}}},
		{"negative ttl", AuthConfig{Realm: "r", NonceTTL: -time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := NewAuth(tt.cfg); err == nil {
				t.Fatal("no error")
			}
		})
	}
}

func TestAlgorithmNotOffered(t *testing.T) {
	clk := newClock()
	a := newTestAuth(t, clk, func(c *AuthConfig) { c.Algorithms = []string{AlgSHA256} })
	md5 := newTestAuth(t, clk, func(c *AuthConfig) { c.Algorithms = []string{AlgMD5} })
	// An MD5 answer to a SHA-256-only server is refused even with a nonce
	// of the same server.
	ch := strings.Replace(a.Challenge(false)[0], "SHA-256", "MD5", 1)
	v := answer(t, ch, "alice", "secret", "REGISTER", testURI, 1)
	if _, r := a.Verify("REGISTER", testURI, []string{v}); r != Malformed {
		t.Fatalf("MD5 to SHA-256-only: %v", r)
	}
	// No algorithm parameter means MD5 (RFC 7616 section 3.3).
	v = strings.Replace(answer(t, md5.Challenge(false)[0], "alice", "secret", "REGISTER", testURI, 1), ", algorithm=MD5", "", 1)
	if _, r := md5.Verify("REGISTER", testURI, []string{v}); r != Ok {
		t.Fatalf("implicit MD5: %v", r)
	}
}

func TestReplayGuardBounded(t *testing.T) {
	clk := newClock()
	a := newTestAuth(t, clk, func(c *AuthConfig) { c.MaxNonces = 3 })
	var chs []string
	for range 5 {
		chs = append(chs, a.Challenge(false)[0])
		clk.Advance(time.Millisecond)
	}
	for i, ch := range chs {
		if _, r := a.Verify("REGISTER", testURI, []string{answer(t, ch, "alice", "secret", "REGISTER", testURI, 1)}); r != Ok {
			t.Fatalf("nonce %d: %v", i, r)
		}
	}
	if n := a.replays.len(); n != 3 {
		t.Fatalf("tracked %d nonces, want 3", n)
	}
	// The evicted nonces cannot be replayed: they are stale now.
	if _, r := a.Verify("REGISTER", testURI, []string{answer(t, chs[0], "alice", "secret", "REGISTER", testURI, 1)}); r != Stale {
		t.Fatalf("evicted nonce replay: %v, want stale", r)
	}
	// Expired nonces leave the guard.
	clk.Advance(DefaultNonceTTL + time.Second)
	fresh := a.Challenge(false)[0]
	if _, r := a.Verify("REGISTER", testURI, []string{answer(t, fresh, "alice", "secret", "REGISTER", testURI, 1)}); r != Ok {
		t.Fatalf("fresh nonce: %v", r)
	}
	if n := a.replays.len(); n != 1 {
		t.Fatalf("tracked %d nonces after expiry, want 1", n)
	}
}

func TestResultString(t *testing.T) {
	for r := Ok; r <= Expired; r++ {
		if s := r.String(); s == "" || strings.HasPrefix(s, "Result(") {
			t.Errorf("%d has no name", r)
		}
	}
	if s := Result(0).String(); s != "Result(0)" {
		t.Errorf("zero = %q", s)
	}
}

func TestVerifyConcurrent(t *testing.T) {
	a := newTestAuth(t, newClock(), nil)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ch := a.Challenge(false)[g%2]
			for i := range 50 {
				v := answer(t, ch, "alice", "secret", "REGISTER", testURI, uint32(i+1))
				if _, r := a.Verify("REGISTER", testURI, []string{v}); r != Ok {
					t.Errorf("goroutine %d nc %d: %v", g, i+1, r)
					return
				}
			}
		}()
	}
	wg.Wait()
}
