package config

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestValidateOps(t *testing.T) {
	runValidateCases(t, []validateCase{
		{"trace users", func(c *Config) { c.Log.Trace = []string{"alice", "+4930123"} }, nil},
		{"trace bad entries", func(c *Config) { c.Log.Trace = []string{"alice", "", "bob@example.com", "a b"} },
			[]string{"log.trace[1]: want a user name", "log.trace[2]: want a user name", "log.trace[3]: want a user name"}},
		{"drain timeout zero", func(c *Config) { c.Admin.DrainTimeout = 0 }, []string{"admin.drain_timeout: want a positive duration"}},
		{"hep on", func(c *Config) { c.HEP.Addr = "homer.example.com:9060" }, nil},
		{"hep ipv6", func(c *Config) { c.HEP.Addr = "[2001:db8::5]:9060" }, nil},
		{"hep without port", func(c *Config) { c.HEP.Addr = "10.0.0.5" }, []string{"hep.addr: want host:port"}},
		{"hep port zero", func(c *Config) { c.HEP.Addr = "10.0.0.5:0" }, []string{"hep.addr: want host:port"}},
		{"hep no host", func(c *Config) { c.HEP.Addr = ":9060" }, []string{"hep.addr: want host:port"}},
		{"hep capture id negative", func(c *Config) { c.HEP.CaptureID = -1 }, []string{"hep.capture_id: want 0..4294967295"}},
		{"hep capture id too large", func(c *Config) { c.HEP.CaptureID = 1 << 32 }, []string{"hep.capture_id: want 0..4294967295"}},
		{"hep password control", func(c *Config) { c.HEP.Password = "a\nb" }, []string{"hep.password: control"}},
	})
}

func TestLoadOps(t *testing.T) {
	path := writeConfig(t, `
log: {trace: [alice]}
admin: {drain_timeout: 5s}
hep: {addr: "127.0.0.1:9060", capture_id: 7, password: pw}
`)
	c, err := Load(path, []string{"SBC_LOG_TRACE=bob,+1555", "SBC_HEP_CAPTURE_ID=9"})
	if err != nil {
		t.Fatal(err)
	}
	equal(t, c.Log.Trace, []string{"bob", "+1555"})
	equal(t, c.Admin.DrainTimeout, 5*time.Second)
	equal(t, c.HEP, HEP{Addr: "127.0.0.1:9060", CaptureID: 9, Password: "pw"})
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}

	_, err = Load(writeConfig(t, "hep: {capture_id: x1, colour: red}\nadmin: {drain_timeout: 30}\n"), nil)
	wantProblems(t, err, "hep.colour: unknown key", "admin.drain_timeout: want a duration", "hep.capture_id: want a whole number")
}

func TestRedacted(t *testing.T) {
	c := Default()
	c.Admin.Token = "tok"
	c.HEP.Password = "heppw"
	c.Trunks = []Trunk{{Name: "pbx", URI: "sip:10.0.0.1", Username: "u", Password: "trunkpw"}}
	c.Users = []User{{Username: "alice", Password: "alicepw"}}
	c.Auth.HMACSecret = "0123456789abcdef0123"
	c.CDR = append(c.CDR, CDRWriter{Type: CDRPostgres, DSN: "postgres://sbc:dbpw@db:5432/cdr"},
		CDRWriter{Type: CDRPostgres, Name: "kv", DSN: "host=db user=sbc password=kvpw dbname=cdr"})
	doc := c.Redacted()
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	for _, secret := range []string{"tok", "heppw", "trunkpw", "alicepw", "0123456789abcdef0123", "dbpw", "kvpw"} {
		if strings.Contains(text, `"`+secret+`"`) || strings.Contains(text, ":"+secret+"@") || strings.Contains(text, "="+secret) {
			t.Errorf("secret %q in %s", secret, text)
		}
	}
	for _, want := range []string{`"node_id":"sbc-1"`, `"drain_timeout":"30s"`, `"username":"u"`,
		`"password":"(redacted)"`, `"token":"(redacted)"`, `postgres://sbc:xxxxx@db:5432/cdr`, `"capture_id":2001`} {
		if !strings.Contains(text, want) {
			t.Errorf("redacted config lacks %s:\n%s", want, text)
		}
	}
	if c.Admin.Token != "tok" {
		t.Error("Redacted changed the config")
	}
}

func TestDiff(t *testing.T) {
	a := Default()
	b := Default()
	b.Log.Trace = nil // nil and empty lists are the same
	equal(t, Diff(a, b), []string(nil))
	b.Log.Level = "debug"
	b.SIP.Listeners[0].Addr = "127.0.0.1:5070"
	b.SIP.TLS.CertFile = "/etc/sbc/cert.pem"
	b.Trunks = []Trunk{trunk("pbx")}
	b.Admin.Token = "secret"
	b.HEP.CaptureID = 9
	equal(t, Diff(a, b), []string{"log.level", "sip.listeners", "sip.tls.cert_file", "trunks", "admin.token", "hep.capture_id"})
}
