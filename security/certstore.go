// Package security holds what protects the SBC's edges: the TLS certificate
// store used by the TLS and WSS listeners (with reload without restart), and,
// as they arrive, digest authentication and bans.
package security

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// CertStore holds the server certificate for TLS and WSS listeners and lets
// it be replaced while they run: a handshake uses the certificate current
// when it starts, and connections already established keep theirs, so a
// renewal drops no call. Reload re-reads the files on demand (SIGHUP);
// Watch does it when they change. It is safe for concurrent use. Create it
// with NewCertStore; the zero value is not usable.
type CertStore struct {
	certFile, keyFile string // both empty: self-signed, nothing to reload
	log               *slog.Logger

	cert     atomic.Pointer[tls.Certificate] // never nil after NewCertStore
	reloadMu sync.Mutex                      // one Reload or watcher check at a time
	loaded   [sha256.Size]byte               // pairHash of the files in force; under reloadMu
}

// NewCertStore returns a store holding the PEM certificate chain and key in
// certFile and keyFile. With both empty it generates a self-signed ECDSA
// P-256 certificate valid for hosts (IP addresses and DNS names; none means
// 127.0.0.1, ::1 and localhost) for SelfSignedLifetime. One of the two without the other, an
// unreadable or mismatched pair, or an expired certificate is an error.
// A nil log discards.
func NewCertStore(certFile, keyFile string, hosts []string, log *slog.Logger) (*CertStore, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &CertStore{certFile: certFile, keyFile: keyFile, log: log}
	switch {
	case certFile == "" && keyFile == "":
		if len(hosts) == 0 {
			hosts = defaultHosts()
		}
		certPEM, keyPEM, err := SelfSigned(hosts, SelfSignedLifetime)
		if err != nil {
			return nil, fmt.Errorf("self-signed certificate: %w", err)
		}
		pair, err := tls.X509KeyPair(certPEM, keyPEM)
		if err == nil {
			err = setLeaf(&pair)
		}
		if err != nil {
			return nil, fmt.Errorf("self-signed certificate: %w", err)
		}
		s.cert.Store(&pair)
		log.Warn("using a self-signed TLS certificate; browsers will not trust it until told to",
			"hosts", hosts, "sha256", fingerprint(&pair), "not_after", pair.Leaf.NotAfter)
	case certFile == "" || keyFile == "":
		return nil, errors.New("tls certificate: cert file and key file must be given together")
	default:
		pair, sum, err := loadPair(certFile, keyFile)
		if err != nil {
			return nil, err
		}
		s.cert.Store(pair)
		s.loaded = sum
		log.Info("TLS certificate loaded", "cert_file", certFile,
			"subject", pair.Leaf.Subject.String(), "sha256", fingerprint(pair), "not_after", pair.Leaf.NotAfter)
	}
	return s, nil
}

// TLSConfig returns a new server configuration (TLS 1.2 or later) whose
// GetCertificate hands out the store's current certificate. The caller may
// adjust the returned value, e.g. set NextProtos.
func (s *CertStore) TLSConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return s.cert.Load(), nil
		},
	}
}

// Certificate returns the current certificate, with Leaf set. The caller
// must not modify it.
func (s *CertStore) Certificate() *tls.Certificate { return s.cert.Load() }

// Reload re-reads the certificate and key files and makes them current for
// new handshakes. On any error (unreadable, mismatched, expired) the current
// certificate stays in use and the error is returned. For a self-signed
// store it does nothing and returns nil.
func (s *CertStore) Reload() error {
	if s.certFile == "" {
		return nil
	}
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	pair, sum, err := loadPair(s.certFile, s.keyFile)
	if err != nil {
		return fmt.Errorf("reload: %w", err)
	}
	s.swap(pair, sum)
	return nil
}

// swap puts pair, read from files with that pairHash, in force; under
// reloadMu.
func (s *CertStore) swap(pair *tls.Certificate, sum [sha256.Size]byte) {
	s.loaded = sum
	old := s.cert.Swap(pair)
	if fp := fingerprint(pair); fp != fingerprint(old) {
		s.log.Info("TLS certificate replaced", "cert_file", s.certFile,
			"subject", pair.Leaf.Subject.String(), "sha256", fp, "not_after", pair.Leaf.NotAfter)
	}
}

// loadPair reads a PEM pair and refuses an expired certificate. It also
// returns the pairHash of what it read.
func loadPair(certFile, keyFile string) (*tls.Certificate, [sha256.Size]byte, error) {
	certPEM, keyPEM, err := readPair(certFile, keyFile)
	if err != nil {
		return nil, [sha256.Size]byte{}, err
	}
	pair, err := parsePair(certFile, certPEM, keyPEM)
	return pair, pairHash(certPEM, keyPEM), err
}

// readPair reads the two PEM files.
func readPair(certFile, keyFile string) (certPEM, keyPEM []byte, err error) {
	if certPEM, err = os.ReadFile(certFile); err != nil {
		return nil, nil, fmt.Errorf("load tls certificate %s: %w", certFile, err)
	}
	if keyPEM, err = os.ReadFile(keyFile); err != nil {
		return nil, nil, fmt.Errorf("load tls certificate %s: key: %w", certFile, err)
	}
	return certPEM, keyPEM, nil
}

// parsePair makes a certificate of a PEM pair read from certFile and
// refuses an expired one.
func parsePair(certFile string, certPEM, keyPEM []byte) (*tls.Certificate, error) {
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("load tls certificate %s: %w", certFile, err)
	}
	if err := setLeaf(&pair); err != nil {
		return nil, fmt.Errorf("load tls certificate %s: %w", certFile, err)
	}
	if now := time.Now(); now.After(pair.Leaf.NotAfter) {
		return nil, fmt.Errorf("load tls certificate %s: expired at %s", certFile, pair.Leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	return &pair, nil
}

// pairHash identifies the content of a PEM pair.
func pairHash(certPEM, keyPEM []byte) [sha256.Size]byte {
	h := sha256.New()
	fmt.Fprintf(h, "%d:", len(certPEM))
	h.Write(certPEM)
	h.Write(keyPEM)
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	return sum
}

// setLeaf parses the leaf certificate if the tls package did not (it does
// since Go 1.23 unless GODEBUG=x509keypairleaf=0).
func setLeaf(c *tls.Certificate) error {
	if c.Leaf != nil {
		return nil
	}
	leaf, err := x509.ParseCertificate(c.Certificate[0])
	if err != nil {
		return fmt.Errorf("parse leaf certificate: %w", err)
	}
	c.Leaf = leaf
	return nil
}

// fingerprint is the SHA-256 of the leaf certificate, in hex, for logs.
func fingerprint(c *tls.Certificate) string {
	if c == nil || len(c.Certificate) == 0 {
		return ""
	}
	sum := sha256.Sum256(c.Certificate[0])
	return hex.EncodeToString(sum[:])
}
