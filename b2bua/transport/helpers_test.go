package transport

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"testing"
	"time"
)

// checkRoutines fails the test if, shortly after it ends, more goroutines
// run than at its start. Call it first in a test: its check is a Cleanup,
// so it runs after every Cleanup registered later (closing layers).
func checkRoutines(t *testing.T) {
	t.Helper()
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(3 * time.Second)
		for {
			n := runtime.NumGoroutine()
			if n <= before {
				return
			}
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<20)
				buf = buf[:runtime.Stack(buf, true)]
				t.Errorf("%d goroutines left running (%d before):\n%s", n, before, buf)
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
}

// recorder is a Handler that queues packets for the test.
type recorder chan Packet

func (r recorder) handle(p Packet) {
	select {
	case r <- p:
	default: // a test that does not read must not block the layer
	}
}

// next waits for the next packet.
func (r recorder) next(t *testing.T) Packet {
	t.Helper()
	select {
	case p := <-r:
		return p
	case <-time.After(3 * time.Second):
		t.Fatal("no packet received")
		return Packet{}
	}
}

// none asserts that no packet arrives for a short while.
func (r recorder) none(t *testing.T) {
	t.Helper()
	select {
	case p := <-r:
		t.Fatalf("unexpected packet %q", p.Data)
	case <-time.After(100 * time.Millisecond):
	}
}

// newTestLayer returns a layer and its packet queue; the layer is closed at
// the end of the test.
func newTestLayer(t *testing.T, lim Limits) (*Layer, recorder) {
	t.Helper()
	rec := make(recorder, 1024)
	l := New(nil, lim, rec.handle)
	t.Cleanup(func() { _ = l.Close() })
	return l, rec
}

// listen binds a listener on 127.0.0.1:0 or fails the test.
func listen(t *testing.T, l *Layer, name string, kind Kind, conf *tls.Config) netip.AddrPort {
	t.Helper()
	addr, err := l.Listen(name, kind, "127.0.0.1:0", ListenOptions{TLS: conf})
	if err != nil {
		t.Fatalf("listen %s: %v", kind, err)
	}
	return addr
}

// testTLS returns a server config with a fresh self-signed certificate for
// 127.0.0.1 and a client config trusting it.
func testTLS(t *testing.T) (server, client *tls.Config) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "sbc test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		DNSNames:     []string{"sbc.test"},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	server = &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}},
		MinVersion:   tls.VersionTLS12,
	}
	client = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return server, client
}

// sipMsg builds a small SIP request with that body and a correct
// Content-Length header spelled as clName.
func sipMsg(method, clName, body string) string {
	return fmt.Sprintf("%s sip:bob@example.com SIP/2.0\r\n"+
		"Via: SIP/2.0/TCP 127.0.0.1;branch=z9hG4bK-%s\r\n"+
		"From: <sip:alice@example.com>;tag=1\r\n"+
		"To: <sip:bob@example.com>\r\n"+
		"Call-ID: %s@test\r\n"+
		"CSeq: 1 %s\r\n"+
		"%s: %d\r\n\r\n%s", method, strings.ToLower(method), method, method, clName, len(body), body)
}

// readN reads exactly n bytes from c or fails the test.
func readN(t *testing.T, c net.Conn, n int) []byte {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
	buf := make([]byte, n)
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatalf("read %d bytes: %v", n, err)
	}
	return buf
}

// waitClosed asserts that the peer closes c within d.
func waitClosed(t *testing.T, c net.Conn, d time.Duration) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(d))
	buf := make([]byte, 4096)
	for {
		_, err := c.Read(buf)
		if err == nil {
			continue
		}
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatalf("connection still open after %v", d)
		}
		return
	}
}

// eventually polls cond for up to 3s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// tcpAddr returns the unmapped address of a socket end.
func tcpAddr(a net.Addr) netip.AddrPort { return addrPortOf(a) }
