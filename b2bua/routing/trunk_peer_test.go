package routing

import (
	"crypto/tls"
	"crypto/x509"
	"strings"
	"testing"
)

func TestTrunkIdentity(t *testing.T) {
	tests := []struct {
		name                      string
		c                         TrunkSpec
		assert, rewrite, trustDom bool
		domain                    string
	}{
		{name: "defaults: assert, rewrite From, outside the trust domain",
			c: TrunkSpec{}, assert: true, rewrite: true},
		{name: "trusted trunk is in the trust domain",
			c: TrunkSpec{Trusted: true}, assert: true, rewrite: true, trustDom: true},
		{name: "trust domain without trusting its calls",
			c: TrunkSpec{Identity: IdentitySpec{TrustDomain: true}}, assert: true, rewrite: true, trustDom: true},
		{name: "nothing asserted, From kept",
			c: TrunkSpec{Identity: IdentitySpec{Assert: "none", From: "keep", Domain: "sbc.example"}}, domain: "sbc.example"},
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
	if _, err := newTrunk(TrunkSpec{Name: "t", URI: "sip:192.0.2.1", Identity: IdentitySpec{Assert: "pai"}}); err == nil ||
		!strings.Contains(err.Error(), "identity.assert") {
		t.Fatalf("bad identity.assert: %v", err)
	}
}

func TestTrunkTLS(t *testing.T) {
	conf := &tls.Config{RootCAs: x509.NewCertPool(), Certificates: make([]tls.Certificate, 1)}
	tr := mustTrunk(t, TrunkSpec{Name: "t", URI: "sip:pbx.example.com;transport=tls", TLS: conf})
	if tr.TLS == nil || tr.TLS.RootCAs == nil || len(tr.TLS.Certificates) != 1 {
		t.Fatalf("tls trunk config %+v: want the CA and the client certificate", tr.TLS)
	}
	if tr := mustTrunk(t, TrunkSpec{Name: "t", URI: "sips:pbx.example.com"}); tr.TLS == nil || tr.TLS.RootCAs != nil {
		t.Fatalf("sips trunk without tls keys: %+v, want a config with the system roots", tr.TLS)
	}
	if tr := mustTrunk(t, TrunkSpec{Name: "t", URI: "sip:pbx.example.com;transport=tcp"}); tr.TLS != nil {
		t.Fatal("a tcp trunk has a TLS config")
	}
	if _, err := newTrunk(TrunkSpec{Name: "t", URI: "sip:192.0.2.1", TLS: conf}); err == nil ||
		!strings.Contains(err.Error(), "tls keys are set on a udp trunk") {
		t.Errorf("tls keys on udp: %v, want an error naming %q", err, "tls keys are set on a udp trunk")
	}
}
