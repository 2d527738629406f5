package config

import (
	"strings"

	"github.com/sbc-project/sbc/b2bua/routing"
)

// identityHeaders are the caller identity headers (RFC 3325, RFC 3323),
// lower case. The SBC writes them itself from what it authenticated, so no
// header whitelist may pass them.
var identityHeaders = []string{"p-asserted-identity", "p-preferred-identity", "privacy"}

// validateTrunkTLS checks trunks[i].tls: only on a tls trunk, with
// readable files and a matching pair.
func validateTrunkTLS(ps *Problems, key string, t Trunk) {
	if t.TLS.IsZero() {
		return
	}
	if tr := t.Transport(); tr != "" && tr != routing.TransportTLS {
		for _, k := range []struct{ name, value string }{
			{"ca_file", t.TLS.CAFile}, {"cert_file", t.TLS.CertFile}, {"key_file", t.TLS.KeyFile},
		} {
			if k.value != "" {
				ps.add(key+".tls."+k.name, k.value, "only a tls trunk (transport=tls or sips:) takes tls keys; this one is "+tr)
			}
		}
		return
	}
	_, tps := t.TLS.clientConfig()
	for _, p := range tps {
		ps.add(key+"."+p.Key, p.Value, p.Reason)
	}
}

// validateTrunkIdentity checks trunks[i].identity.
func validateTrunkIdentity(ps *Problems, key string, id TrunkIdentity) {
	if id.Assert != "" {
		checkOneOf(ps, key+".identity.assert", id.Assert, []string{IdentityAssertUser, IdentityAssertNone})
	}
	if id.From != "" {
		checkOneOf(ps, key+".identity.from", id.From, []string{IdentityFromAsserted, IdentityFromKeep})
	}
	if id.Domain != "" && !routing.ValidHost(id.Domain) {
		ps.add(key+".identity.domain", id.Domain, "want an IP address or DNS name")
	}
}

// checkCallerID checks users[i].caller_id: empty, or a telephone number
// (+ and digits) or a plain SIP user part of letters, digits and -._~.
func checkCallerID(ps *Problems, key, v string) {
	if v == "" {
		return
	}
	body := strings.TrimPrefix(v, "+")
	ok := body != ""
	for i := 0; i < len(body) && ok; i++ {
		c := body[i]
		ok = isAlnum(c) || strings.IndexByte("-._~", c) >= 0
	}
	if !ok {
		ps.add(key, v, "want a number such as +12125550100 or a user name of letters, digits and -._~")
	}
}
