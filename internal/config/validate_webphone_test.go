package config

import "testing"

func TestValidateWebPhone(t *testing.T) {
	runValidateCases(t, []validateCase{
		{"default on listeners", func(c *Config) {}, nil},
		{"disabled", func(c *Config) { c.WebPhone = WebPhone{Enabled: false, Addr: "bad"} }, nil},
		{"own address", func(c *Config) { c.WebPhone.Addr = "127.0.0.1:8444" }, nil},
		{"own address any port", func(c *Config) { c.WebPhone.Addr = "127.0.0.1:0" }, nil},
		{"host name", func(c *Config) { c.WebPhone.Addr = "localhost:8444" }, []string{"webphone.addr: literal IP"}},
		{"no port", func(c *Config) { c.WebPhone.Addr = "127.0.0.1" }, []string{"webphone.addr: want ip:port"}},
		{"on the wss listener", func(c *Config) { c.WebPhone.Addr = "127.0.0.1:8443" },
			[]string{"webphone.addr: tcp port already bound by sip.listeners[3]"}},
		{"wildcard over tcp listener", func(c *Config) { c.WebPhone.Addr = "0.0.0.0:5060" },
			[]string{"webphone.addr: tcp port already bound by sip.listeners[1]"}},
		{"udp port is free for tcp", func(c *Config) {
			c.SIP.Listeners = []Listener{{Name: "udp", Transport: "udp", Addr: "127.0.0.1:5070"}}
			c.WebPhone.Addr = "127.0.0.1:5070"
		}, nil},
		{"other ip same port", func(c *Config) { c.WebPhone.Addr = "127.0.0.2:8443" }, nil},
		{"on the admin server", func(c *Config) { c.WebPhone.Addr = "[::]:9090" },
			[]string{"webphone.addr: tcp port already bound by admin"}},
		{"no websocket listener", func(c *Config) {
			c.SIP.Listeners = []Listener{{Name: "udp", Transport: "udp", Addr: "127.0.0.1:5060"}}
		}, nil},
		{"no websocket listener, own address", func(c *Config) {
			c.SIP.Listeners = []Listener{{Name: "udp", Transport: "udp", Addr: "127.0.0.1:5060"}}
			c.WebPhone.Addr = "127.0.0.1:8444"
		}, nil},
	})
}
