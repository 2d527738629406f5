package security

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// serveTLS runs a TLS server on loopback that answers "ok" on every
// connection, and returns its address.
func serveTLS(t *testing.T, cfg *tls.Config) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { ln.Close(); <-done })
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(5 * time.Second))
				buf := make([]byte, 2)
				for {
					if _, err := io.ReadFull(c, buf); err != nil {
						return
					}
					if _, err := c.Write([]byte("ok")); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// dial connects with the given roots and server name, exchanges one
// message, and returns the connection (closed at cleanup).
func dial(t *testing.T, addr string, roots *x509.CertPool, serverName string, maxVersion uint16) (*tls.Conn, error) {
	t.Helper()
	d := &net.Dialer{Timeout: 5 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", addr, &tls.Config{RootCAs: roots, ServerName: serverName, MaxVersion: maxVersion})
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { c.Close() })
	if err := ping(c); err != nil {
		return nil, err
	}
	return c, nil
}

func ping(c *tls.Conn) error {
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte("hi")); err != nil {
		return err
	}
	buf := make([]byte, 2)
	_, err := io.ReadFull(c, buf)
	return err
}

func poolOf(certPEMs ...[]byte) *x509.CertPool {
	p := x509.NewCertPool()
	for _, c := range certPEMs {
		p.AppendCertsFromPEM(c)
	}
	return p
}

func leafPEM(c *tls.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Certificate[0]})
}

func peerSerial(c *tls.Conn) *big.Int {
	return c.ConnectionState().PeerCertificates[0].SerialNumber
}

// writePair generates a certificate for hosts with the given lifetime and
// writes it to cert.pem and key.pem in dir.
func writePair(t *testing.T, dir string, hosts []string, lifetime time.Duration) (certFile, keyFile string, certPEM, keyPEM []byte) {
	t.Helper()
	certPEM, keyPEM, err := SelfSigned(hosts, lifetime)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	writeFile(t, certFile, certPEM)
	writeFile(t, keyFile, keyPEM)
	return certFile, keyFile, certPEM, keyPEM
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), nil))
}

func TestSelfSignedHandshake(t *testing.T) {
	s, err := NewCertStore("", "", nil, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	addr := serveTLS(t, s.TLSConfig())
	roots := poolOf(leafPEM(s.Certificate()))
	tests := []struct {
		name       string
		serverName string
		maxVersion uint16
		wantErr    string
	}{
		{name: "by IP", serverName: "127.0.0.1"},
		{name: "by IPv6 loopback name in SAN", serverName: "::1"},
		{name: "by localhost", serverName: "localhost"},
		{name: "other name refused", serverName: "example.com", wantErr: "certificate"},
		{name: "TLS 1.1 refused", serverName: "localhost", maxVersion: tls.VersionTLS11, wantErr: "version"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := dial(t, addr, roots, tt.serverName, tt.maxVersion)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("dial: err %v, want one mentioning %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got, want := peerSerial(c), s.Certificate().Leaf.SerialNumber; got.Cmp(want) != 0 {
				t.Errorf("peer serial %v, want %v", got, want)
			}
		})
	}
	leaf := s.Certificate().Leaf
	if life := leaf.NotAfter.Sub(leaf.NotBefore); life < SelfSignedLifetime || life > SelfSignedLifetime+2*time.Minute {
		t.Errorf("lifetime %v, want about %v", life, SelfSignedLifetime)
	}
}

func TestSelfSignedHosts(t *testing.T) {
	s, err := NewCertStore("", "", []string{"sbc.example.net", "192.0.2.7"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	leaf := s.Certificate().Leaf
	for _, h := range []string{"sbc.example.net", "192.0.2.7"} {
		if err := leaf.VerifyHostname(h); err != nil {
			t.Errorf("VerifyHostname(%s): %v", h, err)
		}
	}
	if err := leaf.VerifyHostname("localhost"); err == nil {
		t.Error("certificate valid for localhost, want only the given hosts")
	}
	if err := s.Reload(); err != nil {
		t.Errorf("Reload of a self-signed store: %v, want nil", err)
	}
	if s.Certificate().Leaf != leaf {
		t.Error("Reload of a self-signed store changed the certificate")
	}
}

func TestLoadFilePair(t *testing.T) {
	certFile, keyFile, certPEM, _ := writePair(t, t.TempDir(), []string{"sbc.test"}, time.Hour)
	s, err := NewCertStore(certFile, keyFile, []string{"ignored.example"}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	addr := serveTLS(t, s.TLSConfig())
	if _, err := dial(t, addr, poolOf(certPEM), "sbc.test", 0); err != nil {
		t.Fatalf("handshake with the file certificate: %v", err)
	}
}

func TestNewCertStoreErrors(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, _, _ := writePair(t, dir, nil, time.Hour)
	other := t.TempDir()
	_, otherKey, _, _ := writePair(t, other, nil, time.Hour)
	expiredDir := t.TempDir()
	expiredCert, expiredKey, _, _ := writePair(t, expiredDir, nil, -30*time.Second)
	garbage := filepath.Join(dir, "garbage.pem")
	writeFile(t, garbage, []byte("not pem"))
	tests := []struct {
		name, cert, key, wantErr string
	}{
		{"cert without key", certFile, "", "together"},
		{"key without cert", "", keyFile, "together"},
		{"missing cert file", filepath.Join(dir, "nope.pem"), keyFile, "no such file"},
		{"garbage cert", garbage, keyFile, "load tls certificate"},
		{"mismatched key", certFile, otherKey, "private key does not match"},
		{"expired", expiredCert, expiredKey, "expired"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := NewCertStore(tt.cert, tt.key, nil, nil)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("NewCertStore: %v, %v; want error mentioning %q", s, err, tt.wantErr)
			}
		})
	}
}

func TestReloadSwapsCertificate(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, certA, _ := writePair(t, dir, nil, time.Hour)
	s, err := NewCertStore(certFile, keyFile, nil, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	addr := serveTLS(t, s.TLSConfig())
	before, err := dial(t, addr, poolOf(certA), "localhost", 0)
	if err != nil {
		t.Fatal(err)
	}
	serialA := peerSerial(before)

	_, _, certB, _ := writePair(t, dir, nil, time.Hour) // overwrites the same files
	if err := s.Reload(); err != nil {
		t.Fatal(err)
	}
	after, err := dial(t, addr, poolOf(certB), "localhost", 0)
	if err != nil {
		t.Fatalf("handshake after reload: %v", err)
	}
	if serialB := peerSerial(after); serialB.Cmp(serialA) == 0 {
		t.Fatal("new handshake still sees the old certificate")
	}
	if peerSerial(after).Cmp(s.Certificate().Leaf.SerialNumber) != 0 {
		t.Error("Certificate() does not return the certificate served")
	}
	// The connection made before the reload keeps working: renewals drop
	// no call.
	if err := ping(before); err != nil {
		t.Errorf("connection from before the reload: %v", err)
	}
}

func TestReloadKeepsOldOnError(t *testing.T) {
	tests := []struct {
		name    string
		corrupt func(t *testing.T, certFile, keyFile string)
		wantErr string
	}{
		{"garbage cert", func(t *testing.T, c, _ string) { writeFile(t, c, []byte("garbage")) }, "load tls certificate"},
		{"missing key", func(t *testing.T, _, k string) { os.Remove(k) }, "no such file"},
		{"mismatched key", func(t *testing.T, _, k string) {
			_, key, err := SelfSigned(nil, time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			writeFile(t, k, key)
		}, "private key does not match"},
		{"expired", func(t *testing.T, c, k string) {
			cert, key, err := SelfSigned(nil, -30*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			writeFile(t, c, cert)
			writeFile(t, k, key)
		}, "expired"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			certFile, keyFile, certA, _ := writePair(t, t.TempDir(), nil, time.Hour)
			s, err := NewCertStore(certFile, keyFile, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			old := s.Certificate()
			addr := serveTLS(t, s.TLSConfig())
			tt.corrupt(t, certFile, keyFile)
			if err := s.Reload(); err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Reload: %v, want error mentioning %q", err, tt.wantErr)
			}
			if s.Certificate() != old {
				t.Error("Certificate() changed after a failed reload")
			}
			c, err := dial(t, addr, poolOf(certA), "localhost", 0)
			if err != nil {
				t.Fatalf("handshake after failed reload: %v", err)
			}
			if peerSerial(c).Cmp(old.Leaf.SerialNumber) != 0 {
				t.Error("handshake after failed reload sees another certificate")
			}
		})
	}
}

// TestWatchReloadsOnChange rewrites the files under a running watcher: new
// handshakes get the new certificate, a connection made before keeps
// working.
func TestWatchReloadsOnChange(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, certA, _ := writePair(t, dir, nil, time.Hour)
	s, err := NewCertStore(certFile, keyFile, nil, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	addr := serveTLS(t, s.TLSConfig())
	before, err := dial(t, addr, poolOf(certA), "localhost", 0)
	if err != nil {
		t.Fatal(err)
	}
	serialA := peerSerial(before)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { s.Watch(ctx, 10*time.Millisecond) })
	defer func() { cancel(); wg.Wait() }()

	_, _, certB, _ := writePair(t, dir, nil, time.Hour)
	wantSerial := parseLeaf(t, certB).SerialNumber
	deadline := time.Now().Add(5 * time.Second)
	for s.Certificate().Leaf.SerialNumber.Cmp(wantSerial) != 0 {
		if time.Now().After(deadline) {
			t.Fatal("watcher did not load the rewritten files")
		}
		time.Sleep(10 * time.Millisecond)
	}
	after, err := dial(t, addr, poolOf(certB), "localhost", 0)
	if err != nil {
		t.Fatalf("handshake after the rewrite: %v", err)
	}
	if got := peerSerial(after); got.Cmp(wantSerial) != 0 || got.Cmp(serialA) == 0 {
		t.Fatalf("new handshake serial %v, want the new %v (old %v)", got, wantSerial, serialA)
	}
	if err := ping(before); err != nil {
		t.Errorf("connection from before the rewrite: %v", err)
	}
}

// TestWatchBrokenRewrite drives the watcher's checks by hand: each broken
// state keeps the old certificate and logs one error however often it is
// checked; the completed pair is then picked up.
func TestWatchBrokenRewrite(t *testing.T) {
	steps := []struct {
		name    string
		write   func(t *testing.T, certFile, keyFile string)
		wantNew bool // the certificate changes
		errors  int  // errors logged by this step over three checks
	}{
		{"unchanged", func(*testing.T, string, string) {}, false, 0},
		{"half-written cert", func(t *testing.T, c, _ string) {
			cert, _, err := SelfSigned(nil, time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			writeFile(t, c, cert[:len(cert)/2])
		}, false, 1},
		{"new key, cert still half-written", func(t *testing.T, _, k string) {
			_, key, err := SelfSigned(nil, time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			writeFile(t, k, key)
		}, false, 1},
		{"key file gone", func(t *testing.T, _, k string) { _ = os.Remove(k) }, false, 1},
		{"expired pair", func(t *testing.T, c, k string) {
			cert, key, err := SelfSigned(nil, -30*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			writeFile(t, c, cert)
			writeFile(t, k, key)
		}, false, 1},
		{"complete new pair", func(t *testing.T, c, k string) {
			cert, key, err := SelfSigned(nil, time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			writeFile(t, c, cert)
			writeFile(t, k, key)
		}, true, 0},
		{"same content rewritten", func(t *testing.T, c, k string) {
			cert, _ := os.ReadFile(c)
			key, _ := os.ReadFile(k)
			writeFile(t, c, cert)
			writeFile(t, k, key)
		}, false, 0},
	}
	dir := t.TempDir()
	certFile, keyFile, _, _ := writePair(t, dir, nil, time.Hour)
	errs := new(errorCounter)
	s, err := NewCertStore(certFile, keyFile, nil, slog.New(errs))
	if err != nil {
		t.Fatal(err)
	}
	var w certWatch
	for _, st := range steps {
		old, before := s.Certificate(), errs.n.Load()
		st.write(t, certFile, keyFile)
		for range 3 {
			s.check(&w)
		}
		if changed := s.Certificate() != old; changed != st.wantNew {
			t.Fatalf("%s: certificate changed=%v, want %v", st.name, changed, st.wantNew)
		}
		if got := errs.n.Load() - before; got != int64(st.errors) {
			t.Fatalf("%s: %d errors logged over three checks, want %d", st.name, got, st.errors)
		}
	}
}

// TestWatchSelfSignedReturns: nothing to watch for a generated certificate.
func TestWatchSelfSignedReturns(t *testing.T) {
	s, err := NewCertStore("", "", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { s.Watch(context.Background(), time.Millisecond); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Watch of a self-signed store did not return")
	}
}

func parseLeaf(t *testing.T, certPEM []byte) *x509.Certificate {
	t.Helper()
	b, _ := pem.Decode(certPEM)
	if b == nil {
		t.Fatal("no PEM block")
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// errorCounter is a slog.Handler counting records at level Error.
type errorCounter struct{ n atomic.Int64 }

func (e *errorCounter) Enabled(context.Context, slog.Level) bool { return true }
func (e *errorCounter) Handle(_ context.Context, r slog.Record) error {
	if r.Level >= slog.LevelError {
		e.n.Add(1)
	}
	return nil
}
func (e *errorCounter) WithAttrs([]slog.Attr) slog.Handler { return e }
func (e *errorCounter) WithGroup(string) slog.Handler      { return e }
