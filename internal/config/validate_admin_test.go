package config

import "testing"

func TestValidateAdmin(t *testing.T) {
	runValidateCases(t, []validateCase{
		{"loopback without token", func(c *Config) { c.Admin.Addr = "127.0.0.1:9090" }, nil},
		{"ipv6 loopback without token", func(c *Config) { c.Admin.Addr = "[::1]:9090" }, nil},
		{"other loopback address", func(c *Config) { c.Admin.Addr = "127.0.0.9:9090" }, nil},
		{"every address without token", func(c *Config) { c.Admin.Addr = "0.0.0.0:9090" },
			[]string{"admin.token: required when admin.addr (0.0.0.0:9090) is not a loopback address"}},
		{"ipv6 any without token", func(c *Config) { c.Admin.Addr = "[::]:9090" },
			[]string{"admin.token: required when admin.addr ([::]:9090) is not a loopback address"}},
		{"private address without token", func(c *Config) { c.Admin.Addr = "10.0.0.5:9090" },
			[]string{"admin.token: required when admin.addr (10.0.0.5:9090)"}},
		{"mapped loopback is loopback", func(c *Config) { c.Admin.Addr = "[::ffff:127.0.0.1]:9090" }, nil},
		{"every address with token", func(c *Config) { c.Admin.Addr, c.Admin.Token = "0.0.0.0:9090", "9f2c1e0d8b7a" }, nil},
		{"token with space", func(c *Config) { c.Admin.Token = "a b" }, []string{"admin.token: must not contain spaces"}},
		{"token with newline", func(c *Config) { c.Admin.Token = "a\nb" }, []string{"admin.token: must not contain spaces"}},
		{"hosts", func(c *Config) { c.Admin.Hosts = []string{"sbc-admin.example.com", "10.0.0.5", "[2001:db8::1]"} }, nil},
		{"bad hosts", func(c *Config) {
			c.Admin.Hosts = []string{"http://sbc.example.com", "sbc.example.com:9090", "", "a b"}
		}, []string{"admin.hosts[0]: want a host name", "admin.hosts[1]: want a host name", "admin.hosts[2]: want a host name",
			"admin.hosts[3]: want a host name"}},
	})
}
