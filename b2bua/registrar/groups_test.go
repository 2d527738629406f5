package registrar

import (
	"strconv"
	"testing"
)

func TestVerifyGroup(t *testing.T) {
	clk := newClock()
	secret := []byte("shared-with-webapp")
	a := newTestAuth(t, clk, func(c *AuthConfig) {
		c.Groups = map[string]string{"alice": "intl"}
	})
	minted := strconv.FormatInt(clk.Now().Unix()+3600, 10) + ":alice"
	tests := []struct {
		name, user, password string
		wantUser, wantGroup  string
		want                 Result
	}{
		{"static with group", "alice", "secret", "alice", "intl", Ok},
		{"static without group", "bob", "hunter2", "bob", "", Ok},
		{"hmac names a static user", minted, EphemeralPassword(secret, minted), "alice", "", Ok},
		{"wrong password", "alice", "guess", "", "", BadPassword},
		{"unknown user", "mallory", "x", "", "", UnknownUser},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ch := a.Challenge(false)[0]
			cred := answer(t, ch, tt.user, tt.password, "INVITE", testURI, uint32(i+1))
			user, group, r := a.VerifyGroup("INVITE", testURI, []string{cred})
			if user != tt.wantUser || group != tt.wantGroup || r != tt.want {
				t.Fatalf("VerifyGroup = %q, %q, %v; want %q, %q, %v", user, group, r, tt.wantUser, tt.wantGroup, tt.want)
			}
		})
	}
}

// TestAuthCopiesGroups: changing the map given to NewAuth changes nothing.
func TestAuthCopiesGroups(t *testing.T) {
	groups := map[string]string{"alice": "intl"}
	a := newTestAuth(t, newClock(), func(c *AuthConfig) { c.Groups = groups })
	groups["alice"] = "premium"
	cred := answer(t, a.Challenge(false)[0], "alice", "secret", "INVITE", testURI, 1)
	if _, g, r := a.VerifyGroup("INVITE", testURI, []string{cred}); r != Ok || g != "intl" {
		t.Fatalf("VerifyGroup = %q, %v; want intl", g, r)
	}
}
