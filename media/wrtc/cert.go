package wrtc

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"

	// Hashes a peer may name in a=fingerprint (RFC 8122 section 5).
	_ "crypto/sha1" //nolint:gosec // sha-1 fingerprints are still legal
	_ "crypto/sha256"
	_ "crypto/sha512"
)

// certLifetime is how long a generated certificate is valid. Peers check the
// fingerprint, not the validity period, but a Manager should still create a
// new certificate at least this often.
const certLifetime = 365 * 24 * time.Hour

// ErrFingerprintMismatch means the peer's DTLS certificate matches none of
// the a=fingerprint values in its SDP.
var ErrFingerprintMismatch = errors.New("wrtc: peer certificate matches no a=fingerprint")

// GenerateCertificate creates a self-signed ECDSA P-256 certificate for DTLS,
// valid for a year. Create one per Manager and share it between transports.
func GenerateCertificate() (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("wrtc: generate key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("wrtc: generate serial: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "WebRTC"},
		NotBefore:             now.Add(-24 * time.Hour), // tolerate peers with a slow clock
		NotAfter:              now.Add(certLifetime),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("wrtc: create certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("wrtc: parse certificate: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}

// Fingerprint returns the a=fingerprint value of cert's leaf:
// "sha-256 " followed by the upper-case hex digest with colons.
func Fingerprint(cert tls.Certificate) (string, error) {
	if len(cert.Certificate) == 0 {
		return "", errors.New("wrtc: fingerprint of an empty certificate")
	}
	return "sha-256 " + hexDigest(crypto.SHA256, cert.Certificate[0]), nil
}

// fingerprintHashes maps the RFC 8122 hash names we accept to Go hashes.
var fingerprintHashes = map[string]crypto.Hash{
	"sha-1":   crypto.SHA1,
	"sha-224": crypto.SHA224,
	"sha-256": crypto.SHA256,
	"sha-384": crypto.SHA384,
	"sha-512": crypto.SHA512,
}

// parseFingerprint splits "sha-256 AB:CD:.." into its hash and digest.
func parseFingerprint(fp string) (crypto.Hash, string, error) {
	name, digest, ok := strings.Cut(strings.TrimSpace(fp), " ")
	if !ok {
		return 0, "", fmt.Errorf("wrtc: fingerprint %q: want \"<hash> <hex>\"", fp)
	}
	h, ok := fingerprintHashes[strings.ToLower(name)]
	if !ok {
		return 0, "", fmt.Errorf("wrtc: fingerprint %q: unsupported hash %q", fp, name)
	}
	return h, strings.TrimSpace(digest), nil
}

// matchFingerprint reports whether the DER certificate der matches one of fps.
// Unparseable entries never match (SetRemote rejected a list without a valid one).
func matchFingerprint(der []byte, fps []string) bool {
	for _, fp := range fps {
		h, digest, err := parseFingerprint(fp)
		if err != nil {
			continue
		}
		if strings.EqualFold(hexDigest(h, der), digest) {
			return true
		}
	}
	return false
}

// hexDigest hashes data with h and formats it as "AB:CD:..".
func hexDigest(h crypto.Hash, data []byte) string {
	hash := h.New()
	hash.Write(data)
	sum := hash.Sum(nil)
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(sum) * 3)
	for i, c := range sum {
		if i > 0 {
			b.WriteByte(':')
		}
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&0x0f])
	}
	return b.String()
}
