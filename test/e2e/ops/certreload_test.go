package ops

import (
	"crypto/tls"
	"crypto/x509"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sbc-project/sbc/internal/config"
	"github.com/sbc-project/sbc/security"
	"github.com/sbc-project/sbc/test/e2e"
)

// TestCertificateReloadKeepsCalls renews the WSS certificate files under a
// running SBC (sip.tls.reload_interval): a call up on a WSS connection made
// before the renewal carries on (its BYE is answered on the same
// connection), and a WSS connection made after it sees the new certificate.
func TestCertificateReloadKeepsCalls(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	oldSerial := writeCertPair(t, certFile, keyFile)
	sbc := e2e.StartSBC(t, e2e.SBCOptions{Mutate: func(c *config.Config) {
		c.SIP.TLS = config.TLS{CertFile: certFile, KeyFile: keyFile, ReloadInterval: 20 * time.Millisecond}
	}})

	before := e2e.DialUA(t, "WSS", sbc.WSS.String())
	if got := wssSerial(t, before); got.Cmp(oldSerial) != 0 {
		t.Fatalf("first connection sees serial %v, want the configured %v", got, oldSerial)
	}
	call := before.Invite("echo", "")
	call.Answered(before.Expect(200))
	call.Ack()

	newSerial := writeCertPair(t, certFile, keyFile)
	deadline := time.Now().Add(10 * time.Second)
	var after *e2e.UA
	for {
		after = e2e.DialUA(t, "WSS", sbc.WSS.String())
		if wssSerial(t, after).Cmp(newSerial) == 0 {
			break
		}
		after.Close()
		if time.Now().After(deadline) {
			t.Fatal("new WSS connections still see the old certificate")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if wssSerial(t, before).Cmp(oldSerial) != 0 {
		t.Fatal("the established connection changed certificate")
	}

	// The new connection works, and the call on the old one goes on.
	after.Send(e2e.OptionsTo(after))
	after.Expect(200)
	if n := sbc.App.Server().ActiveCalls(); n != 1 {
		t.Fatalf("%d calls after the renewal, want the 1 placed before it", n)
	}
	call.Bye()
	before.Expect(200)
	sbc.WaitIdle(t)
}

// writeCertPair writes a fresh self-signed pair for 127.0.0.1 (first the
// key, then the certificate, as a renewal script would) and returns the
// certificate's serial.
func writeCertPair(t *testing.T, certFile, keyFile string) *big.Int {
	t.Helper()
	certPEM, keyPEM, err := security.SelfSigned([]string{"127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certFile, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return leaf.SerialNumber
}

// wssSerial is the serial of the certificate the SBC presented on a WSS
// test UA's connection.
func wssSerial(t *testing.T, u *e2e.UA) *big.Int {
	t.Helper()
	c, ok := u.WS.NetConn().(*tls.Conn)
	if !ok {
		t.Fatalf("WSS connection is a %T, not TLS", u.WS.NetConn())
	}
	return c.ConnectionState().PeerCertificates[0].SerialNumber
}
