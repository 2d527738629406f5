package transport

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"github.com/sbc-project/sbc/b2bua/transport/tlstest"
)

// tlsPeer is a TLS server on 127.0.0.1:0 standing in for a trunk. It
// records the server name each client asked for (SNI) and the client
// certificate it verified, and hands over every connection whose
// handshake succeeded.
type tlsPeer struct {
	addr  netip.AddrPort
	conns chan *tls.Conn

	mu     sync.Mutex
	sni    []string
	client []*x509.Certificate
}

func newTLSPeer(t *testing.T, conf *tls.Config) *tlsPeer {
	t.Helper()
	return newTLSPeerOn(t, conf, "127.0.0.1:0")
}

// newTLSPeerOn is newTLSPeer listening on addr.
func newTLSPeerOn(t *testing.T, conf *tls.Config, addr string) *tlsPeer {
	t.Helper()
	p := &tlsPeer{conns: make(chan *tls.Conn, 8)}
	conf = conf.Clone()
	conf.GetConfigForClient = func(h *tls.ClientHelloInfo) (*tls.Config, error) {
		p.mu.Lock()
		p.sni = append(p.sni, h.ServerName)
		p.mu.Unlock()
		return nil, nil
	}
	ln, err := tls.Listen("tcp", addr, conf)
	if err != nil {
		t.Fatal(err)
	}
	p.addr = tcpAddr(ln.Addr())
	var wg sync.WaitGroup
	t.Cleanup(func() { _ = ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			tc := nc.(*tls.Conn)
			t.Cleanup(func() { _ = tc.Close() })
			if err := tc.Handshake(); err != nil {
				_ = tc.Close()
				continue
			}
			p.mu.Lock()
			p.client = append(p.client, tc.ConnectionState().PeerCertificates...)
			p.mu.Unlock()
			p.conns <- tc
		}
	})
	return p
}

func (p *tlsPeer) names() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.sni...)
}

// TestDialTLSVerifiesTarget: a TLS connection we dial is verified against
// the target's host name (DNS or IP SAN) with the target's own CA bundle,
// carries that name as SNI, and presents the target's client certificate
// when the peer asks for one; every other peer is refused during the
// handshake with ErrTLSHandshake and a reason naming the problem.
func TestDialTLSVerifiesTarget(t *testing.T) {
	ca, rogue := tlstest.NewCA(t, "trunk ca"), tlstest.NewCA(t, "rogue ca")
	clientCA := tlstest.NewCA(t, "client ca")
	sbcCert := clientCA.Issue(t, "sbc.example")
	tests := []struct {
		name       string
		server     tls.Certificate
		clientAuth bool // the peer requires a client certificate from clientCA
		host       string
		certs      []tls.Certificate // the target's client certificate
		want       string            // error text; "" for a connection
		wantSNI    string
		listen     string // the peer's address; "": 127.0.0.1:0
	}{
		{name: "dns name", server: ca.Issue(t, "pbx", "localhost"), host: "localhost", wantSNI: "localhost"},
		{name: "ip literal against ip san", server: ca.Issue(t, "pbx", "127.0.0.1"), host: "127.0.0.1"},
		// A trunk at sip:[::1];transport=tls: its host is "::1", never sent
		// as SNI, verified against an IPv6 SAN.
		{name: "ipv6 literal against ip san", server: ca.Issue(t, "pbx", "::1"), host: "::1", listen: "[::1]:0"},
		{name: "ipv6 literal without its san", server: ca.Issue(t, "pbx", "127.0.0.1"), host: "::1", listen: "[::1]:0",
			want: "::1"},
		{name: "other name", server: ca.Issue(t, "pbx", "pbx.example"), host: "localhost", want: "pbx.example, not localhost"},
		{name: "ip literal without ip san", server: ca.Issue(t, "pbx", "localhost"), host: "127.0.0.1", want: "doesn't contain any IP SANs"},
		{name: "unknown ca", server: rogue.Issue(t, "pbx", "localhost"), host: "localhost", want: "unknown authority"},
		{name: "mutual", server: ca.Issue(t, "pbx", "localhost"), clientAuth: true, host: "localhost",
			certs: []tls.Certificate{sbcCert}, wantSNI: "localhost"},
		{name: "mutual without certificate", server: ca.Issue(t, "pbx", "localhost"), clientAuth: true, host: "localhost",
			want: "client certificate and none is configured"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checkRoutines(t)
			conf := &tls.Config{Certificates: []tls.Certificate{tc.server}, MinVersion: tls.VersionTLS12}
			if tc.clientAuth {
				conf.ClientAuth, conf.ClientCAs = tls.RequireAndVerifyClientCert, clientCA.Pool()
			}
			listen := tc.listen
			if listen == "" {
				listen = "127.0.0.1:0"
			}
			peer := newTLSPeerOn(t, conf, listen)
			l, _ := newTestLayer(t, Limits{})
			dst := Target{Kind: TLS, Addr: peer.addr, Host: tc.host,
				TLS: &tls.Config{RootCAs: ca.Pool(), Certificates: tc.certs, MinVersion: tls.VersionTLS12}}
			msg := []byte(sipMsg("OPTIONS", "Content-Length", ""))
			err := l.Send(dst, msg)
			if tc.want != "" {
				if !errors.Is(err, ErrTLSHandshake) || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("send: %v, want ErrTLSHandshake saying %q", err, tc.want)
				}
				if n := l.Stats().Open[TLS]; n != 0 {
					t.Fatalf("%d TLS connections open after a refused handshake", n)
				}
				return
			}
			if err != nil {
				t.Fatalf("send: %v", err)
			}
			got := readN(t, <-peer.conns, len(msg))
			if !bytes.Equal(got, msg) {
				t.Fatalf("peer got %q", got)
			}
			if names := peer.names(); len(names) != 1 || names[0] != tc.wantSNI {
				t.Fatalf("SNI %q, want %q", names, tc.wantSNI)
			}
			if tc.clientAuth {
				peer.mu.Lock()
				client := peer.client
				peer.mu.Unlock()
				if len(client) == 0 || client[0].Subject.CommonName != "sbc.example" {
					t.Fatalf("peer saw client certificates %v, want sbc.example", client)
				}
			}
		})
	}
}

// TestDialTLSReuseKeepsIdentity: a connection verified for one name is not
// reused for a target naming another host at the same address, nor is a
// connection the peer opened to us; each such target dials and verifies
// on its own.
func TestDialTLSReuseKeepsIdentity(t *testing.T) {
	checkRoutines(t)
	ca := tlstest.NewCA(t, "trunk ca")
	peer := newTLSPeer(t, &tls.Config{Certificates: []tls.Certificate{ca.Issue(t, "pbx", "localhost")}, MinVersion: tls.VersionTLS12})
	l, _ := newTestLayer(t, Limits{})
	trust := &tls.Config{RootCAs: ca.Pool(), MinVersion: tls.VersionTLS12}
	msg := []byte(sipMsg("OPTIONS", "Content-Length", ""))

	good := Target{Kind: TLS, Addr: peer.addr, Host: "localhost", TLS: trust}
	if err := l.Send(good, msg); err != nil {
		t.Fatalf("send to localhost: %v", err)
	}
	first := <-peer.conns
	readN(t, first, len(msg))
	if err := l.Send(good, msg); err != nil {
		t.Fatalf("second send to localhost: %v", err)
	}
	readN(t, first, len(msg)) // the same connection

	// The same address under a name the certificate does not carry: the
	// open connection must not carry it.
	other := Target{Kind: TLS, Addr: peer.addr, Host: "pbx.example", TLS: trust}
	if err := l.Send(other, msg); !errors.Is(err, ErrTLSHandshake) {
		t.Fatalf("send to pbx.example over a connection verified for localhost: %v, want a refused handshake", err)
	}
	// Another CA bundle for the same name: a connection of its own.
	if err := l.Send(Target{Kind: TLS, Addr: peer.addr, Host: "localhost", TLS: trust.Clone()}, msg); err != nil {
		t.Fatal(err)
	}
	readN(t, <-peer.conns, len(msg))
	if n := l.Stats().Open[TLS]; n != 2 {
		t.Fatalf("open TLS connections = %d, want 2", n)
	}
}

// TestNamedTargetSkipsAcceptedConn: a TLS connection a peer opened to our
// listener (which nobody verified) is reused for a target given by address
// only, as before, but never for a target with a name to verify.
func TestNamedTargetSkipsAcceptedConn(t *testing.T) {
	checkRoutines(t)
	serverTLS, clientTLS := testTLS(t)
	l, rec := newTestLayer(t, Limits{})
	addr := listen(t, l, "tls", TLS, serverTLS)
	c := dialClient(t, TLS, addr, clientTLS)
	c.send(t, []byte(sipMsg("OPTIONS", "Content-Length", "")))
	p := rec.next(t)

	byAddr := Target{Kind: TLS, Addr: p.Src}
	msg := []byte("SIP/2.0 200 OK\r\nl: 0\r\n\r\n")
	if err := l.Send(byAddr, msg); err != nil {
		t.Fatalf("send by address over the accepted connection: %v", err)
	}
	c.recv(t, len(msg))
	// Nothing listens at the client's own port: a named target must dial,
	// and fails, rather than write on the accepted connection.
	named := Target{Kind: TLS, Addr: p.Src, Host: "sbc.test"}
	if err := l.Send(named, msg); err == nil {
		t.Fatal("a named target was sent on a connection the peer opened")
	}
}
