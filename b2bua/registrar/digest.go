package registrar

import (
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"maps"
	"strconv"
	"strings"
	"time"

	"github.com/sbc-project/sbc/b2bua/sipmsg"
)

// Digest algorithms (RFC 7616 section 3.3, RFC 8760).
const (
	AlgSHA256 = "SHA-256"
	AlgMD5    = "MD5"
)

// Defaults of AuthConfig.
const (
	DefaultNonceTTL  = 5 * time.Minute
	DefaultMaxNonces = 100000
)

// maxAuthValues bounds how many Authorization header values Verify looks at.
const maxAuthValues = 8

// AuthConfig configures digest authentication. The zero value of every field
// except Realm is usable.
type AuthConfig struct {
	// Realm is the protection realm sent in challenges and required in
	// credentials. Required.
	Realm string
	// Algorithms are offered in this order, one challenge each: AlgSHA256
	// and AlgMD5, case-insensitive. Default: SHA-256 then MD5.
	Algorithms []string
	// Users maps usernames to passwords (static users from the config and
	// a users file). Usernames are case-sensitive. Copied by NewAuth.
	Users map[string]string
	// Groups maps static usernames to their dial group (config
	// users[].group); see VerifyGroup. Copied by NewAuth.
	Groups map[string]string
	// HMACSecret, when not empty, also accepts TURN-REST-style ephemeral
	// credentials minted by a web application: the username is
	// "<unix-expiry>:<user>" and the password
	// base64(HMAC-SHA1(HMACSecret, username)). They are rejected with
	// Expired once the expiry has passed. Static users take precedence.
	HMACSecret []byte
	// NonceTTL is how long a nonce is accepted; an older one gets a
	// challenge with stale=true. Default DefaultNonceTTL.
	NonceTTL time.Duration
	// MaxNonces bounds the nonces tracked for replay protection. When more
	// are in use, the oldest is forgotten and nonces issued before it are
	// answered as stale. Default DefaultMaxNonces.
	MaxNonces int
	// Now is the clock; default time.Now. For tests.
	Now func() time.Time
}

// Auth checks digest credentials (qop=auth) against static users and
// HMAC-minted ephemeral ones. Nonces are stateless and signed with a key
// drawn by NewAuth; nonce-counts are tracked to refuse replays. An Auth is
// safe for concurrent use. Replacing it (e.g. on reload) makes outstanding
// nonces stale, which clients retry without asking their user.
type Auth struct {
	realm   string
	algs    []string
	users   map[string]string
	groups  map[string]string
	secret  []byte
	now     func() time.Time
	nonces  *nonceMinter
	replays *replayGuard
	opaque  string
}

// NewAuth returns an Auth for cfg, or an error naming the bad field.
func NewAuth(cfg AuthConfig) (*Auth, error) {
	if cfg.Realm == "" {
		return nil, errors.New("auth realm is empty")
	}
	algs, err := canonicalAlgs(cfg.Algorithms)
	if err != nil {
		return nil, err
	}
	if cfg.NonceTTL < 0 || cfg.MaxNonces < 0 {
		return nil, errors.New("auth nonce TTL and max nonces must not be negative")
	}
	ttl := cmpOr(cfg.NonceTTL, DefaultNonceTTL)
	nm, err := newNonceMinter(ttl)
	if err != nil {
		return nil, fmt.Errorf("draw nonce key: %w", err)
	}
	users := make(map[string]string, len(cfg.Users))
	for u, p := range cfg.Users {
		users[u] = p
	}
	var op [12]byte
	_, _ = rand.Read(op[:])
	a := &Auth{
		realm:   cfg.Realm,
		algs:    algs,
		users:   users,
		groups:  maps.Clone(cfg.Groups),
		secret:  append([]byte(nil), cfg.HMACSecret...),
		now:     cfg.Now,
		nonces:  nm,
		replays: newReplayGuard(cmpOr(cfg.MaxNonces, DefaultMaxNonces), ttl),
		opaque:  base64.RawURLEncoding.EncodeToString(op[:]),
	}
	if a.now == nil {
		a.now = time.Now
	}
	return a, nil
}

func cmpOr[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// canonicalAlgs checks and normalizes the configured algorithm names.
func canonicalAlgs(in []string) ([]string, error) {
	if len(in) == 0 {
		return []string{AlgSHA256, AlgMD5}, nil
	}
	out := make([]string, 0, len(in))
	for _, a := range in {
		var c string
		switch {
		case strings.EqualFold(a, AlgSHA256):
			c = AlgSHA256
		case strings.EqualFold(a, AlgMD5):
			c = AlgMD5
		default:
			return nil, fmt.Errorf("auth algorithm %q: want SHA-256 or MD5", a)
		}
		for _, o := range out {
			if o == c {
				return nil, fmt.Errorf("auth algorithm %q listed twice", a)
			}
		}
		out = append(out, c)
	}
	return out, nil
}

// Challenge returns the values of the WWW-Authenticate (401) or
// Proxy-Authenticate (407) headers to send: one per configured algorithm in
// order, each with a fresh nonce, the opaque value and qop="auth", and
// stale=true when stale is set (the credentials were right but the nonce
// was not, so the client retries without asking its user).
func (a *Auth) Challenge(stale bool) []string {
	now := a.now()
	out := make([]string, 0, len(a.algs))
	for _, alg := range a.algs {
		v := "Digest realm=" + sipmsg.Quote(a.realm) +
			`, nonce="` + a.nonces.mint(now) + `"` +
			`, opaque="` + a.opaque + `"` +
			", algorithm=" + alg + `, qop="auth"`
		if stale {
			v += ", stale=true"
		}
		out = append(out, v)
	}
	return out
}

// Result is the outcome of Verify. The zero value is not a valid result.
type Result int

// Verify outcomes.
const (
	// Ok: the credentials are right and fresh.
	Ok Result = iota + 1
	// Missing: no Digest credentials for our realm; answer with a challenge.
	Missing
	// Stale: the credentials are right but the nonce is too old or not
	// ours; answer with Challenge(true).
	Stale
	// BadPassword: the response does not match the user's password.
	// Counted by the policy's auto-ban.
	BadPassword
	// UnknownUser: no such user. Counted by the policy's auto-ban.
	UnknownUser
	// Replay: the credentials are right but their nonce-count was not
	// higher than one already accepted for this nonce: a captured request
	// sent again, or a client that resends its last Authorization (SIP.js
	// does on every refresh and de-REGISTER). Never accepted; answer with
	// Challenge(true), like Stale (see StaleNonce).
	Replay
	// Malformed: the credentials cannot be parsed or use something not
	// supported (another qop, a -sess algorithm, userhash, a digest URI
	// that is not the request's); answer 400.
	Malformed
	// Expired: right HMAC-minted credentials whose expiry has passed.
	Expired
)

var resultNames = [...]string{Ok: "ok", Missing: "missing", Stale: "stale", BadPassword: "bad-password",
	UnknownUser: "unknown-user", Replay: "replay", Malformed: "malformed", Expired: "expired"}

// StaleNonce reports whether r says the credentials were right but their
// nonce cannot be used (too old, not ours, forgotten, or its nonce-count
// already used): such a request is answered with a fresh Challenge(true),
// never refused, so the client retries with the new nonce without asking
// its user (RFC 7616 section 3.3, RFC 3261 section 22.4), while whoever
// replays a captured request gets only a challenge it cannot answer
// without the password. It is not a failed guess.
func (r Result) StaleNonce() bool { return r == Stale || r == Replay }

// String returns a short lower-case name, fit for logs and metric labels.
func (r Result) String() string {
	if r > 0 && int(r) < len(resultNames) {
		return resultNames[r]
	}
	return "Result(" + strconv.Itoa(int(r)) + ")"
}

// credentials are the fields of one parsed Digest value that Verify uses.
type credentials struct {
	username, nonce, uri, response, alg, cnonce string
	nc                                          uint32
	ncRaw                                       string // as sent: it is hashed
}

// Verify checks the Authorization (or Proxy-Authorization) header values of
// a request with the given method and request-URI (as a string; the digest's
// uri must name the same SIP URI). It returns the authenticated user and Ok,
// or "" and why not. For HMAC-minted credentials the user is the part after
// the expiry ("alice" for "1700000000:alice").
//
// Every comparison of secrets is constant-time. A nonce-count is recorded
// only once the digest has proved right, so guessing cannot burn a client's
// nonce.
func (a *Auth) Verify(method, uri string, headerValues []string) (user string, r Result) {
	c, r := a.pick(headerValues)
	if r != Ok {
		return "", r
	}
	if !uriMatches(c.uri, uri) {
		return "", Malformed
	}
	now := a.now()
	password, name, expired, known := a.password(c.username, now)
	want := digestResponse(c.alg, c.username, a.realm, password, method, c.uri, c.nonce, c.ncRaw, c.cnonce)
	if !known {
		return "", UnknownUser
	}
	if subtle.ConstantTimeCompare([]byte(want), []byte(strings.ToLower(c.response))) != 1 {
		return "", BadPassword
	}
	issued, fresh := a.nonces.check(c.nonce, now)
	switch {
	case !fresh:
		return "", Stale
	case expired:
		return "", Expired
	}
	switch a.replays.use(c.nonce, issued, c.nc, now) {
	case ncReplay:
		return "", Replay
	case ncStale:
		return "", Stale
	}
	return name, Ok
}

// pick finds the Digest credentials for our realm among the header values
// and checks that every field Verify needs is there and supported.
func (a *Auth) pick(values []string) (credentials, Result) {
	malformed := false
	for i, v := range values {
		if i == maxAuthValues {
			break
		}
		p, err := parseDigest(v)
		if errors.Is(err, errNotDigest) {
			continue
		}
		if err != nil {
			malformed = true
			continue
		}
		if p["realm"] != a.realm {
			continue
		}
		c, ok := a.fields(p)
		if !ok {
			return credentials{}, Malformed
		}
		return c, Ok
	}
	if malformed {
		return credentials{}, Malformed
	}
	return credentials{}, Missing
}

// fields extracts and checks the parameters of one Digest value.
func (a *Auth) fields(p map[string]string) (credentials, bool) {
	c := credentials{
		username: p["username"], nonce: p["nonce"], uri: p["uri"],
		response: p["response"], cnonce: p["cnonce"], alg: AlgMD5,
	}
	if c.username == "" || c.nonce == "" || c.uri == "" || c.cnonce == "" {
		return c, false
	}
	if alg, ok := p["algorithm"]; ok {
		c.alg = ""
		for _, x := range a.algs {
			if strings.EqualFold(alg, x) {
				c.alg = x
			}
		}
	} else if !a.offers(AlgMD5) {
		c.alg = ""
	}
	if c.alg == "" || !strings.EqualFold(p["qop"], "auth") || strings.EqualFold(p["userhash"], "true") {
		return c, false
	}
	if len(c.response) != 2*newHash(c.alg).Size() {
		return c, false
	}
	nc, err := strconv.ParseUint(p["nc"], 16, 32)
	if err != nil || len(p["nc"]) != 8 || nc == 0 {
		return c, false
	}
	c.nc, c.ncRaw = uint32(nc), p["nc"]
	return c, true
}

func (a *Auth) offers(alg string) bool {
	for _, x := range a.algs {
		if x == alg {
			return true
		}
	}
	return false
}

// password returns the password for username and the user name to report:
// a static user's, or an HMAC-minted one's (expired when its time has
// passed). known is false for a user neither way knows.
func (a *Auth) password(username string, now time.Time) (password, name string, expired, known bool) {
	if p, ok := a.users[username]; ok {
		return p, username, false, true
	}
	if len(a.secret) == 0 {
		return "", "", false, false
	}
	exp, user, ok := strings.Cut(username, ":")
	if !ok || user == "" {
		return "", "", false, false
	}
	t, err := strconv.ParseInt(exp, 10, 64)
	if err != nil || t <= 0 {
		return "", "", false, false
	}
	return EphemeralPassword(a.secret, username), user, now.Unix() >= t, true
}

// uriMatches reports whether the digest-uri names the request-URI: equal
// strings, or SIP URIs with the same scheme, user, host (case-insensitive)
// and port.
func uriMatches(digestURI, requestURI string) bool {
	if digestURI == requestURI {
		return true
	}
	d, err1 := parseURI(digestURI)
	r, err2 := parseURI(requestURI)
	if err1 != nil || err2 != nil {
		return false
	}
	return d.IsEncrypted() == r.IsEncrypted() && userOf(d) == userOf(r) &&
		strings.EqualFold(d.Host(), r.Host()) && portOf(d) == portOf(r)
}

// digestResponse computes the qop=auth response of RFC 7616 section 3.4.1:
// H(H(A1):nonce:nc:cnonce:qop:H(A2)) with A1 = user:realm:password and
// A2 = method:uri, as lower-case hex.
func digestResponse(alg, user, realm, password, method, uri, nonce, nc, cnonce string) string {
	ha1 := hexHash(alg, user+":"+realm+":"+password)
	ha2 := hexHash(alg, method+":"+uri)
	return hexHash(alg, ha1+":"+nonce+":"+nc+":"+cnonce+":auth:"+ha2)
}

func newHash(alg string) hash.Hash {
	if alg == AlgSHA256 {
		return sha256.New()
	}
	return md5.New()
}

func hexHash(alg, s string) string {
	h := newHash(alg)
	h.Write([]byte(s))
	return hex.EncodeToString(h.Sum(nil))
}
