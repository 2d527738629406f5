package registrar

import (
	"strings"
	"testing"
	"time"
)

// Digest as clients really do it, and as an attacker replays it. Each case
// is a sequence of requests; a request that fails with a result whose
// StaleNonce is true is answered with Challenge(true), and the client (or
// attacker) goes on from that challenge.

func TestStaleNonceResults(t *testing.T) {
	want := map[Result]bool{Stale: true, Replay: true}
	for r := Ok; r <= Expired; r++ {
		if got := r.StaleNonce(); got != want[r] {
			t.Errorf("%v.StaleNonce() = %v, want %v", r, got, want[r])
		}
	}
}

// staleChallenge returns the MD5 value of Challenge(true) and checks it
// says stale=true.
func staleChallenge(t *testing.T, a *Auth) string {
	t.Helper()
	ch := a.Challenge(true)[1]
	p, err := parseDigest(ch)
	if err != nil || p["stale"] != "true" || p["algorithm"] != AlgMD5 {
		t.Fatalf("stale challenge %q: %v", ch, err)
	}
	return ch
}

// TestSIPjsResendsItsLastAuthorization: SIP.js keeps the Authorization of
// its last REGISTER on the request it reuses for the refresh and the
// de-REGISTER (Expires: 0): the same nonce, nonce-count and response. That
// is a replay and is not accepted, but it is answered as a stale nonce, so
// SIP.js (which retries a 401 once per request, and again only when
// stale=true) authenticates afresh and is accepted.
func TestSIPjsResendsItsLastAuthorization(t *testing.T) {
	a := newTestAuth(t, newClock(), nil)
	first := answer(t, a.Challenge(false)[1], "alice", "secret", "REGISTER", testURI, 1)
	if _, r := a.Verify("REGISTER", testURI, []string{first}); r != Ok {
		t.Fatalf("register: %v", r)
	}
	// The de-REGISTER carries the same Authorization.
	_, r := a.Verify("REGISTER", testURI, []string{first})
	if r != Replay || !r.StaleNonce() {
		t.Fatalf("de-REGISTER with the last Authorization: %v, want replay answered as stale", r)
	}
	again := answer(t, staleChallenge(t, a), "alice", "secret", "REGISTER", testURI, 1)
	if user, r := a.Verify("REGISTER", testURI, []string{again}); r != Ok || user != "alice" {
		t.Fatalf("de-REGISTER after the stale challenge: %q %v", user, r)
	}
}

// TestNonceCountIncrementsAccepted: a client that reuses its nonce with
// the next nonce-count (RFC 7616 section 3.4) is accepted each time.
func TestNonceCountIncrementsAccepted(t *testing.T) {
	a := newTestAuth(t, newClock(), nil)
	ch := a.Challenge(false)[0]
	for nc := uint32(1); nc <= 5; nc++ {
		if _, r := a.Verify("REGISTER", testURI, []string{answer(t, ch, "alice", "secret", "REGISTER", testURI, nc)}); r != Ok {
			t.Fatalf("nc %d: %v", nc, r)
		}
	}
}

// TestExpiredNonceRecovers: a refresh after the nonce's TTL (the client
// still holds the old nonce) is answered stale; the client's answer to the
// fresh challenge is accepted.
func TestExpiredNonceRecovers(t *testing.T) {
	clk := newClock()
	a := newTestAuth(t, clk, func(c *AuthConfig) { c.NonceTTL = 2 * time.Second })
	ch := a.Challenge(false)[1]
	if _, r := a.Verify("REGISTER", testURI, []string{answer(t, ch, "alice", "secret", "REGISTER", testURI, 1)}); r != Ok {
		t.Fatalf("register: %v", r)
	}
	clk.Advance(3 * time.Second)
	if _, r := a.Verify("REGISTER", testURI, []string{answer(t, ch, "alice", "secret", "REGISTER", testURI, 2)}); !r.StaleNonce() {
		t.Fatalf("refresh on an expired nonce: %v, want a stale answer", r)
	}
	if _, r := a.Verify("REGISTER", testURI, []string{answer(t, staleChallenge(t, a), "alice", "secret", "REGISTER", testURI, 1)}); r != Ok {
		t.Fatalf("refresh after the stale challenge: %v", r)
	}
}

// TestReplayedRequestNeverAccepted: an attacker who captured a REGISTER
// or an INVITE with its credentials sends them again, as they are and at
// once, after the client moved on to a newer nonce-count, after the nonce
// expired, and after it was forgotten. None is accepted; each gets only a
// stale challenge, which the attacker cannot answer without the password.
func TestReplayedRequestNeverAccepted(t *testing.T) {
	for _, method := range []string{"REGISTER", "INVITE"} {
		t.Run(method, func(t *testing.T) {
			clk := newClock()
			a := newTestAuth(t, clk, func(c *AuthConfig) { c.NonceTTL = time.Minute; c.MaxNonces = 2 })
			ch := a.Challenge(false)[0]
			captured := answer(t, ch, "alice", "secret", method, testURI, 1)
			if _, r := a.Verify(method, testURI, []string{captured}); r != Ok {
				t.Fatalf("the client's own request: %v", r)
			}
			replay := func(when string) {
				t.Helper()
				user, r := a.Verify(method, testURI, []string{captured})
				if r == Ok || user != "" || !r.StaleNonce() {
					t.Fatalf("replay %s: %q %v, want a stale answer and no user", when, user, r)
				}
			}
			replay("at once")
			if _, r := a.Verify(method, testURI, []string{answer(t, ch, "alice", "secret", method, testURI, 2)}); r != Ok {
				t.Fatalf("the client's next request: %v", r)
			}
			replay("after the client's next nonce-count")
			// The attacker answers the stale challenge with a guess.
			if _, r := a.Verify(method, testURI, []string{answer(t, staleChallenge(t, a), "alice", "guess", method, testURI, 1)}); r != BadPassword {
				t.Fatalf("attacker's answer to the stale challenge: %v, want bad-password", r)
			}
			// The guard forgets the nonce (more nonces in use than MaxNonces).
			for range 3 {
				clk.Advance(time.Millisecond)
				if _, r := a.Verify(method, testURI, []string{answer(t, a.Challenge(false)[0], "bob", "hunter2", method, testURI, 1)}); r != Ok {
					t.Fatalf("another client: %v", r)
				}
			}
			replay("after the nonce was evicted")
			clk.Advance(2 * time.Minute)
			replay("after the nonce expired")
		})
	}
}

// TestReplayedRequestWrongURI: the captured credentials do not fit
// another request-URI either (a replay aimed at another number).
func TestReplayedRequestWrongURI(t *testing.T) {
	a := newTestAuth(t, newClock(), nil)
	captured := answer(t, a.Challenge(false)[0], "alice", "secret", "INVITE", "sip:100@sbc.example", 1)
	if _, r := a.Verify("INVITE", "sip:900123@sbc.example", []string{captured}); r != Malformed {
		t.Fatalf("credentials for another URI: %v, want malformed", r)
	}
	if _, r := a.Verify("INVITE", "sip:100@sbc.example", []string{strings.Replace(captured, "alice", "bob", 1)}); r != BadPassword {
		t.Fatalf("credentials with another user: %v, want bad-password", r)
	}
}
