package config

import (
	"os"
	"strconv"
	"strings"
)

// validateRegistration checks users, auth and registrar.
func (c *Config) validateRegistration(ps *Problems) {
	seen := map[string]int{}
	for i, u := range c.Users {
		key := "users[" + strconv.Itoa(i) + "]"
		switch {
		case u.Username == "" || strings.ContainsAny(u.Username, ":@ \t"):
			ps.add(key+".username", u.Username, "want a user name without ':', '@' or spaces")
		case seen[strings.ToLower(u.Username)] > 0:
			ps.add(key+".username", u.Username, "already names users["+strconv.Itoa(seen[strings.ToLower(u.Username)]-1)+"]")
		default:
			seen[strings.ToLower(u.Username)] = i + 1
		}
		if u.Password == "" {
			ps.add(key+".password", "", "must not be empty")
		}
		checkCallerID(ps, key+".caller_id", u.CallerID)
	}
	a := c.Auth
	if strings.TrimSpace(a.Realm) == "" || strings.ContainsAny(a.Realm, "\"\\") {
		ps.add("auth.realm", a.Realm, "want a non-empty realm without quotes or backslashes")
	}
	if a.UsersFile != "" {
		if _, err := os.Stat(a.UsersFile); err != nil {
			ps.add("auth.users_file", a.UsersFile, err.Error())
		}
	}
	if a.HMACSecret != "" && len(a.HMACSecret) < 16 {
		ps.add("auth.hmac_secret", "(redacted)", "want at least 16 characters")
	}
	checkPositive(ps, "auth.nonce_ttl", a.NonceTTL)
	if len(a.Algorithms) == 0 {
		ps.add("auth.algorithms", "", "want SHA-256, MD5 or both")
	}
	for i, alg := range a.Algorithms {
		if !strings.EqualFold(alg, "SHA-256") && !strings.EqualFold(alg, "MD5") {
			ps.add("auth.algorithms["+strconv.Itoa(i)+"]", alg, "want SHA-256 or MD5")
		}
	}
	r := c.Registrar
	checkPositive(ps, "registrar.min_expires", r.MinExpires)
	if r.MaxExpires < r.MinExpires {
		ps.add("registrar.max_expires", r.MaxExpires.String(), "must be at least min_expires "+r.MinExpires.String())
	}
	if r.MaxBindingsPerAOR < 1 {
		ps.add("registrar.max_bindings_per_aor", strconv.Itoa(r.MaxBindingsPerAOR), "want at least 1")
	}
	if r.KeepaliveInterval < 0 {
		ps.add("registrar.keepalive_interval", r.KeepaliveInterval.String(), "want 0 (off) or a positive duration")
	}
}
