package config

import (
	"strings"
	"testing"
	"time"
)

func TestValidateTrunkRegister(t *testing.T) {
	reg := func(r TrunkRegister) func(c *Config) {
		return func(c *Config) {
			withTrunks(c)
			c.Trunks[1].Register = r
		}
	}
	good := TrunkRegister{Username: "acct1", Password: "s3cret"}
	runValidateCases(t, []validateCase{
		{"username and password", reg(good), nil},
		{"every key", reg(TrunkRegister{Username: "acct1", Password: "s3cret", Realm: "carrier.test", Expires: time.Hour,
			ContactUser: "+4930123", AOR: "acct1", Registrar: "sip:reg.carrier.test;transport=tcp"}), nil},
		{"no password", reg(TrunkRegister{Username: "acct1"}), []string{"trunks[1].register.password: required"}},
		{"no username", reg(TrunkRegister{Password: "s3cret"}), []string{"trunks[1].register.username: required"}},
		{"expires too short", reg(TrunkRegister{Username: "a", Password: "b", Expires: time.Second}),
			[]string{"trunks[1].register.expires: want at least 10s"}},
		{"contact user with @", reg(TrunkRegister{Username: "a", Password: "b", ContactUser: "x@y"}),
			[]string{"trunks[1].register.contact_user: want a SIP user"}},
		{"bad registrar", reg(TrunkRegister{Username: "a", Password: "b", Registrar: "http://reg"}),
			[]string{"trunks[1].register.registrar: want a sip: or sips: URI"}},
	})
}

func TestValidatePasswordNotShown(t *testing.T) {
	c := Default()
	withTrunks(c)
	c.Trunks[0].Register = TrunkRegister{Password: "hunter2-secret"}
	err := c.Validate()
	if err == nil || strings.Contains(err.Error(), "hunter2-secret") {
		t.Fatalf("Validate = %v: want a problem that does not show the password", err)
	}
}

func TestValidateDNS(t *testing.T) {
	runValidateCases(t, []validateCase{
		{"servers", func(c *Config) { c.DNS.Servers = []string{"127.0.5.53:5353", "[::1]:53"} }, nil},
		{"server without port", func(c *Config) { c.DNS.Servers = []string{"127.0.5.53"} }, []string{"dns.servers[0]: want ip:port"}},
		{"server by name", func(c *Config) { c.DNS.Servers = []string{"ok:53", "1.1.1.1:53"} }, []string{"dns.servers[0]: want ip:port"}},
		{"negative timeout", func(c *Config) { c.DNS.Timeout = -time.Second }, []string{"dns.timeout: want a positive duration"}},
		{"max below min", func(c *Config) { c.DNS.MinTTL, c.DNS.MaxTTL = time.Minute, time.Second }, []string{"dns.max_ttl: below min_ttl"}},
	})
}
