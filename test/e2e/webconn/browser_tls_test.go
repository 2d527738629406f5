package webconn

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sbc-project/sbc/internal/config"
	"github.com/sbc-project/sbc/test/browser"
	"github.com/sbc-project/sbc/test/e2e"
)

// certFiles are a CA and a leaf for 127.0.0.1 signed by it, written as
// the SBC's sip.tls files (chain leaf first), with the base64 SHA-256 of
// the leaf's public key (what --ignore-certificate-errors-spki-list takes)
// and the leaf's DER fingerprint.
type certFiles struct {
	cert, key string
	spki      string
	leaf      [32]byte
}

func writeCAAndLeaf(t *testing.T) certFiles {
	t.Helper()
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "SBC test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	leafKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leaf := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, ca, &leafKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(leafKey)
	if err != nil {
		t.Fatal(err)
	}
	spkiDER, err := x509.MarshalPKIXPublicKey(&leafKey.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	f := certFiles{cert: filepath.Join(dir, "cert.pem"), key: filepath.Join(dir, "key.pem"), leaf: sha256.Sum256(leafDER)}
	spki := sha256.Sum256(spkiDER)
	f.spki = base64.StdEncoding.EncodeToString(spki[:])
	chain := append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leafDER}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})...)
	if err := os.WriteFile(f.cert, chain, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f.key, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// TestBrowserFileCertificate: with sip.tls naming a CA-signed leaf, a
// browser that trusts only that leaf's key (and no certificate error)
// loads the page over HTTPS and calls the echo over WSS; a browser that
// trusts another key cannot load it.
func TestBrowserFileCertificate(t *testing.T) {
	certs := writeCAAndLeaf(t)
	sbc := e2e.StartSBC(t, e2e.SBCOptions{Mutate: func(c *config.Config) {
		c.SIP.TLS.CertFile, c.SIP.TLS.KeyFile = certs.cert, certs.key
	}})
	if e2e.ServedCert(t, sbc.WSS.String()) != certs.leaf {
		t.Fatal("the WSS listener does not serve the certificate of sip.tls.cert_file")
	}
	t.Run("trusted", func(t *testing.T) {
		sc := e2e.NewScenario(t, browser.Phone{Name: "web", URL: e2e.PhoneURL(sbc.WSS, true, e2e.Autoconnect),
			Steps: append(e2e.EchoCallSteps(), e2e.HangupSteps()...)})
		sc.IgnoreHTTPSErrors, sc.SPKI = false, certs.spki
		res := browser.Start(t, sc).MustPass()["web"]
		e2e.CheckAudio(t, "web phone", res.Stats(t, "echo"))
	})
	t.Run("untrusted", func(t *testing.T) {
		other := writeCAAndLeaf(t)
		sc := e2e.NewScenario(t, browser.Phone{Name: "web", URL: e2e.PhoneURL(sbc.WSS, true, e2e.Autoconnect)})
		sc.IgnoreHTTPSErrors, sc.SPKI, sc.FailureShots = false, other.spki, ""
		res := browser.Start(t, sc).Wait()["web"]
		if res.OK || !strings.Contains(res.Error, "ERR_CERT") {
			t.Errorf("page loaded from a certificate the browser does not trust: ok %v, error %q", res.OK, res.Error)
		}
	})
	sbc.WaitCallsIdle(t)
}

// TestBrowserConnectionRefused: a page whose server parameter names a WSS
// port where nothing listens shows the connection error in #error.
func TestBrowserConnectionRefused(t *testing.T) {
	sbc := e2e.StartSBC(t, e2e.SBCOptions{})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close()
	q := url.Values{"server": {"wss://" + closed}, "autoconnect": {"1"}}
	sc := e2e.NewScenario(t, browser.Phone{Name: "web", URL: e2e.PhoneURL(sbc.WSS, true, q), Steps: []browser.Step{
		browser.Do("waitError", "label", "error"),
	}})
	res := browser.Start(t, sc).MustPass()["web"]
	text := res.Text("error")
	t.Logf("#error: %q; status %q", text, res.DOM.Status)
	if text == "" || res.DOM.Status == "connected" || res.DOM.Status == "registered" {
		t.Errorf("refused connection: #error %q, status %q", text, res.DOM.Status)
	}
}
