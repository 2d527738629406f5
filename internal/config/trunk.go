package config

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/sbc-project/sbc/b2bua/routing"
)

// Caller identity toward a trunk (trunks[].identity, RFC 3325): routing's,
// which compiles them.
const (
	// IdentityAssertUser: P-Asserted-Identity is the authenticated caller
	// (users[].caller_id, else the user name, at the identity domain), or
	// what a trusted source asserted.
	IdentityAssertUser = routing.IdentityAssertUser
	// IdentityAssertNone: no P-Asserted-Identity is sent.
	IdentityAssertNone = routing.IdentityAssertNone
	// IdentityFromAsserted: From is the asserted identity of an
	// authenticated caller (a trusted source's From is kept).
	IdentityFromAsserted = routing.IdentityFromAsserted
	// IdentityFromKeep: From user and display name are the caller's, as
	// sent (only the host is the SBC's, as ever).
	IdentityFromKeep = routing.IdentityFromKeep

	DefaultIdentityAssert = IdentityAssertUser   // trunks[].identity.assert
	DefaultIdentityFrom   = IdentityFromAsserted // trunks[].identity.from
)

// TrunkIdentity says which caller identity the SBC asserts toward a trunk
// (RFC 3325). The zero value is the safe default: assert the authenticated
// caller, write From from it, and treat the trunk as outside the trust
// domain unless it is trusted. Whatever it says, P-Asserted-Identity and
// P-Preferred-Identity from an untrusted caller never pass, and Privacy
// (RFC 3323) is honoured.
type TrunkIdentity struct {
	// Assert is user (P-Asserted-Identity names the authenticated caller,
	// or keeps what a trusted source asserted) or none (no
	// P-Asserted-Identity). Empty: DefaultIdentityAssert.
	Assert string `mapstructure:"assert"`
	// From is asserted (From names the authenticated caller, without the
	// display name the caller chose) or keep (the caller's From user and
	// display name). A caller asking for privacy gets an anonymous From
	// either way. Empty: DefaultIdentityFrom.
	From string `mapstructure:"from"`
	// Domain is the host of the identities the SBC asserts toward this
	// trunk, e.g. sip:+12125550100@Domain. Empty: from_domain, else the
	// SBC's address.
	Domain string `mapstructure:"domain"`
	// TrustDomain puts the trunk in the SBC's trust domain (RFC 3325):
	// it gets P-Asserted-Identity even when the caller asked for
	// Privacy: id, and the identity it asserts on calls it sends is kept.
	// A trunk with trusted: true always is. Default false.
	TrustDomain bool `mapstructure:"trust_domain"`
}

// TrunkTLS configures the TLS connections the SBC dials to a tls trunk
// (transport=tls or sips:). The trunk's certificate is always verified
// against the host of its URI (a DNS name, or an IP address against the
// certificate's IP addresses), which is also sent as SNI. All empty: the
// system roots and no client certificate.
type TrunkTLS struct {
	// CAFile is a PEM bundle of the CA certificates the trunk's certificate
	// must chain to, instead of the system roots. Default: empty.
	CAFile string `mapstructure:"ca_file"`
	// CertFile and KeyFile are the PEM client certificate chain (leaf
	// first) and key the SBC presents when the trunk asks for one (mutual
	// TLS). Both or neither. A trunk that asks for a certificate when none
	// is set is refused at the handshake. Default: empty.
	CertFile string `mapstructure:"cert_file"`
	KeyFile  string `mapstructure:"key_file"`
}

// IsZero reports whether no key is set.
func (t TrunkTLS) IsZero() bool { return t == TrunkTLS{} }

// ClientConfig reads the files and returns the client configuration for
// dialing the trunk: TLS 1.2 or later, RootCAs from CAFile (nil: the
// system roots), Certificates from CertFile and KeyFile. ServerName is
// left empty for the dialer to fill from the trunk's host. The error
// names the key at fault, relative to the trunk (tls.ca_file ...).
func (t TrunkTLS) ClientConfig() (*tls.Config, error) {
	conf, ps := t.clientConfig()
	if len(ps) > 0 {
		return nil, ps
	}
	return conf, nil
}

// clientConfig is ClientConfig with every problem, keys relative to the
// trunk.
func (t TrunkTLS) clientConfig() (*tls.Config, Problems) {
	var ps Problems
	conf := &tls.Config{MinVersion: tls.VersionTLS12}
	if t.CAFile != "" {
		pool, err := readCAFile(t.CAFile)
		if err != nil {
			ps.add("tls.ca_file", t.CAFile, err.Error())
		}
		conf.RootCAs = pool
	}
	switch {
	case t.CertFile == "" && t.KeyFile == "":
	case t.CertFile == "":
		ps.add("tls.cert_file", "", "required when key_file is set")
	case t.KeyFile == "":
		ps.add("tls.key_file", "", "required when cert_file is set")
	default:
		pair, key, reason := readPair(t.CertFile, t.KeyFile)
		if reason != "" {
			value := t.CertFile
			if key == "key_file" {
				value = t.KeyFile
			}
			ps.add("tls."+key, value, reason)
			break
		}
		conf.Certificates = []tls.Certificate{pair}
	}
	return conf, ps
}

// readCAFile reads a PEM bundle holding at least one CA certificate.
func readCAFile(path string) (*x509.CertPool, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, errors.New(fileReason(err))
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, errors.New("no PEM certificate in the file")
	}
	return pool, nil
}

// readPair loads a certificate and key; on failure it returns the key
// (cert_file or key_file) at fault and why.
func readPair(certFile, keyFile string) (pair tls.Certificate, key, reason string) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return pair, "cert_file", fileReason(err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return pair, "key_file", fileReason(err)
	}
	pair, err = tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return pair, "cert_file", "no valid certificate and key pair with key_file: " + err.Error()
	}
	if time.Now().After(pair.Leaf.NotAfter) {
		return pair, "cert_file", fmt.Sprintf("certificate expired at %s", pair.Leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	return pair, "", ""
}
