package config

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/sbc-project/sbc/b2bua/transport/tlstest"
)

// trunkFiles writes a CA bundle, a client pair and a file that is no
// certificate into a temporary directory.
type trunkFiles struct {
	ca, cert, key, junk, missing string
}

func newTrunkFiles(t *testing.T) trunkFiles {
	t.Helper()
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "trunk ca")
	var f trunkFiles
	f.ca = ca.WriteCA(t, dir, "ca.pem")
	f.cert, f.key = tlstest.WritePair(t, dir, "client", ca.Issue(t, "sbc.example"))
	f.junk = filepath.Join(dir, "junk.pem")
	writeFile(t, f.junk, []byte("not a certificate\n"))
	f.missing = filepath.Join(dir, "missing.pem")
	return f
}

func TestValidateTrunkTLS(t *testing.T) {
	f := newTrunkFiles(t)
	other := tlstest.NewCA(t, "other")
	_, otherKey := tlstest.WritePair(t, t.TempDir(), "other", other.Issue(t, "other"))
	tlsTrunk := func(tt TrunkTLS) func(c *Config) {
		return func(c *Config) {
			withTrunks(c)
			c.Trunks[0].URI = "sip:pbx.example.com:5061;transport=tls"
			c.Trunks[0].TLS = tt
		}
	}
	runValidateCases(t, []validateCase{
		{"ca, cert and key", tlsTrunk(TrunkTLS{CAFile: f.ca, CertFile: f.cert, KeyFile: f.key}), nil},
		{"sips", func(c *Config) {
			withTrunks(c)
			c.Trunks[1].URI, c.Trunks[1].TLS = "sips:pbx.example.com", TrunkTLS{CAFile: f.ca}
		}, nil},
		{"ca unreadable", tlsTrunk(TrunkTLS{CAFile: f.missing}), []string{"trunks[0].tls.ca_file: cannot open"}},
		{"ca not pem", tlsTrunk(TrunkTLS{CAFile: f.junk}), []string{"trunks[0].tls.ca_file: no PEM certificate"}},
		{"key without cert", tlsTrunk(TrunkTLS{KeyFile: f.key}), []string{"trunks[0].tls.cert_file: required when key_file"}},
		{"cert without key", tlsTrunk(TrunkTLS{CertFile: f.cert}), []string{"trunks[0].tls.key_file: required when cert_file"}},
		{"key unreadable", tlsTrunk(TrunkTLS{CertFile: f.cert, KeyFile: f.missing}), []string{"trunks[0].tls.key_file: cannot open"}},
		{"mismatched pair", tlsTrunk(TrunkTLS{CertFile: f.cert, KeyFile: otherKey}),
			[]string{"trunks[0].tls.cert_file: no valid certificate and key pair"}},
		{"tls keys on a udp trunk", func(c *Config) {
			withTrunks(c)
			c.Trunks[1].TLS = TrunkTLS{CAFile: f.ca, CertFile: f.cert, KeyFile: f.key}
		}, []string{"trunks[1].tls.ca_file: only a tls trunk", "trunks[1].tls.cert_file: only a tls trunk",
			"trunks[1].tls.key_file: only a tls trunk"}},
		{"tls keys on a tcp trunk", func(c *Config) {
			withTrunks(c)
			c.Trunks[0].URI, c.Trunks[0].TLS = "sip:pbx.example.com;transport=tcp", TrunkTLS{CAFile: f.ca}
		}, []string{"trunks[0].tls.ca_file: this one is tcp"}},
	})
}

func TestValidateTrunkIdentity(t *testing.T) {
	identity := func(id TrunkIdentity) func(c *Config) {
		return func(c *Config) { withTrunks(c); c.Trunks[1].Identity = id }
	}
	runValidateCases(t, []validateCase{
		{"defaults", identity(TrunkIdentity{}), nil},
		{"explicit", identity(TrunkIdentity{Assert: IdentityAssertNone, From: IdentityFromKeep, Domain: "sbc.example.com", TrustDomain: true}), nil},
		{"assert", identity(TrunkIdentity{Assert: "pai"}), []string{"trunks[1].identity.assert: want one of user, none"}},
		{"from", identity(TrunkIdentity{From: "caller"}), []string{"trunks[1].identity.from: want one of asserted, keep"}},
		{"domain", identity(TrunkIdentity{Domain: "bad domain"}), []string{"trunks[1].identity.domain: want an IP address or DNS name"}},
		{"pass_headers may not name identity headers", func(c *Config) {
			withTrunks(c)
			c.Trunks[0].PassHeaders = []string{"p-asserted-identity", "P-Preferred-Identity", "Diversion"}
		}, []string{"trunks[0].pass_headers[0]: asserts caller identity itself", "trunks[0].pass_headers[1]: asserts caller identity itself"}},
	})
}

func TestValidateCallerID(t *testing.T) {
	user := func(id string) func(c *Config) {
		return func(c *Config) { c.Users = []User{{Username: "alice", Password: "secret", CallerID: id}} }
	}
	runValidateCases(t, []validateCase{
		{"number", user("+12125550100"), nil},
		{"name", user("alice.smith"), nil},
		{"uri", user("sip:alice@example.com"), []string{"users[0].caller_id: want a number"}},
		{"header injection", user("+1212\r\nP-Asserted-Identity: x"), []string{"users[0].caller_id: want a number"}},
		{"bare plus", user("+"), []string{"users[0].caller_id: want a number"}},
	})
}

// TestTrunkTLSClientConfig: what routing gets from a valid tls section.
func TestTrunkTLSClientConfig(t *testing.T) {
	f := newTrunkFiles(t)
	conf, err := TrunkTLS{CAFile: f.ca, CertFile: f.cert, KeyFile: f.key}.ClientConfig()
	if err != nil {
		t.Fatal(err)
	}
	if conf.RootCAs == nil || len(conf.Certificates) != 1 || conf.ServerName != "" || conf.InsecureSkipVerify {
		t.Fatalf("config %+v: want the CA, one certificate, no server name, verification on", conf)
	}
	conf, err = TrunkTLS{}.ClientConfig()
	if err != nil || conf.RootCAs != nil || len(conf.Certificates) != 0 {
		t.Fatalf("empty section: %v %+v, want system roots and no certificate", err, conf)
	}
	if err := os.Remove(f.ca); err != nil {
		t.Fatal(err)
	}
	if _, err := (TrunkTLS{CAFile: f.ca}).ClientConfig(); err == nil {
		t.Fatal("a removed CA file gave no error")
	}
}

func TestValidateTrunkIPv6(t *testing.T) {
	uri := func(u string) func(c *Config) {
		return func(c *Config) { withTrunks(c); c.Trunks[0].URI = u }
	}
	runValidateCases(t, []validateCase{
		{"bracketed with port", uri("sip:[2001:db8::1]:5060"), nil},
		{"bracketed loopback over tcp", uri("sip:[::1]:5070;transport=tcp"), nil},
		{"without brackets", uri("sip:2001:db8::1"), []string{"trunks[0].uri"}},
		{"unclosed bracket", uri("sip:[2001:db8::1:5060"), []string{"trunks[0].uri"}},
	})
}
