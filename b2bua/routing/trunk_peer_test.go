package routing

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/sbc-project/sbc/b2bua/transport/tlstest"
	"github.com/sbc-project/sbc/internal/config"
)

func TestTrunkIdentity(t *testing.T) {
	tests := []struct {
		name                      string
		c                         config.Trunk
		assert, rewrite, trustDom bool
		domain                    string
	}{
		{name: "defaults: assert, rewrite From, outside the trust domain",
			c: config.Trunk{}, assert: true, rewrite: true},
		{name: "trusted trunk is in the trust domain",
			c: config.Trunk{Trusted: true}, assert: true, rewrite: true, trustDom: true},
		{name: "trust domain without trusting its calls",
			c: config.Trunk{Identity: config.TrunkIdentity{TrustDomain: true}}, assert: true, rewrite: true, trustDom: true},
		{name: "nothing asserted, From kept",
			c: config.Trunk{Identity: config.TrunkIdentity{Assert: "none", From: "keep", Domain: "sbc.example"}}, domain: "sbc.example"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.c.Name, tc.c.URI = "t", "sip:192.0.2.1"
			tr := mustTrunk(t, tc.c)
			if tr.AssertIdentity != tc.assert || tr.RewriteFrom != tc.rewrite || tr.TrustDomain != tc.trustDom || tr.IdentityDomain != tc.domain {
				t.Fatalf("assert=%v rewrite=%v trust=%v domain=%q, want %v %v %v %q", tr.AssertIdentity, tr.RewriteFrom,
					tr.TrustDomain, tr.IdentityDomain, tc.assert, tc.rewrite, tc.trustDom, tc.domain)
			}
		})
	}
	if _, err := newTrunk(config.Trunk{Name: "t", URI: "sip:192.0.2.1", Identity: config.TrunkIdentity{Assert: "pai"}}); err == nil ||
		!strings.Contains(err.Error(), "identity.assert") {
		t.Fatalf("bad identity.assert: %v", err)
	}
}

func TestTrunkTLS(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "trunk ca")
	caFile := ca.WriteCA(t, dir, "ca.pem")
	certFile, keyFile := tlstest.WritePair(t, dir, "sbc", ca.Issue(t, "sbc.example"))

	tr := mustTrunk(t, config.Trunk{Name: "t", URI: "sip:pbx.example.com;transport=tls",
		TLS: config.TrunkTLS{CAFile: caFile, CertFile: certFile, KeyFile: keyFile}})
	if tr.TLS == nil || tr.TLS.RootCAs == nil || len(tr.TLS.Certificates) != 1 {
		t.Fatalf("tls trunk config %+v: want the CA and the client certificate", tr.TLS)
	}
	if tr := mustTrunk(t, config.Trunk{Name: "t", URI: "sips:pbx.example.com"}); tr.TLS == nil || tr.TLS.RootCAs != nil {
		t.Fatalf("sips trunk without tls keys: %+v, want a config with the system roots", tr.TLS)
	}
	if tr := mustTrunk(t, config.Trunk{Name: "t", URI: "sip:pbx.example.com;transport=tcp"}); tr.TLS != nil {
		t.Fatal("a tcp trunk has a TLS config")
	}
	for _, bad := range []struct {
		name string
		c    config.Trunk
		want string
	}{
		{"tls keys on udp", config.Trunk{URI: "sip:192.0.2.1", TLS: config.TrunkTLS{CAFile: caFile}}, "tls keys are set on a udp trunk"},
		{"missing ca", config.Trunk{URI: "sip:pbx.example.com;transport=tls", TLS: config.TrunkTLS{CAFile: filepath.Join(dir, "none.pem")}}, "tls.ca_file"},
		{"key without cert", config.Trunk{URI: "sip:pbx.example.com;transport=tls", TLS: config.TrunkTLS{KeyFile: keyFile}}, "tls.cert_file"},
	} {
		bad.c.Name = "t"
		if _, err := newTrunk(bad.c); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%s: %v, want an error naming %q", bad.name, err, bad.want)
		}
	}
}
