package config

import "testing"

func TestValidateRegistration(t *testing.T) {
	runValidateCases(t, []validateCase{
		{"users ok", func(c *Config) {
			c.Users = []User{{Username: "alice", Password: "x"}, {Username: "bob", Password: "y"}}
		}, nil},
		{"user name", func(c *Config) { c.Users = []User{{Username: "a:b", Password: "x"}} },
			[]string{"users[0].username: without ':'"}},
		{"user twice", func(c *Config) {
			c.Users = []User{{Username: "alice", Password: "x"}, {Username: "Alice", Password: "y"}}
		},
			[]string{"users[1].username: already names users[0]"}},
		{"user password", func(c *Config) { c.Users = []User{{Username: "alice"}} }, []string{"users[0].password: must not be empty"}},
		{"realm", func(c *Config) { c.Auth.Realm = `a"b` }, []string{"auth.realm: without quotes"}},
		{"users file", func(c *Config) { c.Auth.UsersFile = "/nonexistent/users" }, []string{"auth.users_file: stat"}},
		{"hmac secret", func(c *Config) { c.Auth.HMACSecret = "short" }, []string{"auth.hmac_secret: at least 16"}},
		{"algorithm", func(c *Config) { c.Auth.Algorithms = []string{"SHA-512"} }, []string{"auth.algorithms[0]: want SHA-256 or MD5"}},
		{"no algorithm", func(c *Config) { c.Auth.Algorithms = nil }, []string{"auth.algorithms: want"}},
		{"expires", func(c *Config) { c.Registrar.MaxExpires = c.Registrar.MinExpires / 2 }, []string{"registrar.max_expires: at least min_expires"}},
		{"bindings", func(c *Config) { c.Registrar.MaxBindingsPerAOR = 0 }, []string{"registrar.max_bindings_per_aor: at least 1"}},
		{"keepalive", func(c *Config) { c.Registrar.KeepaliveInterval = -1 }, []string{"registrar.keepalive_interval: want 0"}},
	})
}
