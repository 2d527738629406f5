package registrar

import (
	"testing"
	"time"
)

// FuzzVerify feeds arbitrary Authorization values to Verify: it must never
// panic, and must name a user exactly when it says Ok.
func FuzzVerify(f *testing.F) {
	f.Add(`Digest username="alice", realm="sbc.example", nonce="x", uri="sip:sbc.example", response="00", qop=auth, nc=00000001, cnonce="c"`)
	f.Add(`Digest realm="sbc.example", username="a\"b\\", nonce=, uri`)
	clk := newClock()
	a, err := NewAuth(AuthConfig{
		Realm:      testRealm,
		Users:      map[string]string{"alice": "secret"},
		HMACSecret: []byte("k"),
		MaxNonces:  64,
		Now:        clk.Now,
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, value string) {
		clk.Advance(time.Millisecond)
		user, r := a.Verify("REGISTER", testURI, []string{value, value})
		if r < Ok || r > Expired {
			t.Fatalf("result %d out of range", r)
		}
		if (r == Ok) != (user != "") {
			t.Fatalf("user %q with result %v", user, r)
		}
		if p, err := parseDigest(value); err == nil {
			for k := range p {
				if k == "" {
					t.Fatal("empty parameter name")
				}
			}
		}
	})
}
