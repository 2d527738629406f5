package e2e

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/ghettovoice/gosip/sip"
	"github.com/sbc-project/sbc/b2bua/sipmsg"
	"github.com/sbc-project/sbc/b2bua/transport/tlstest"
)

// TLSUAS is a SIP UAS over TLS on 127.0.0.1 standing in for a trunk: it
// answers OPTIONS, INVITE (200 with SDP) and BYE with 200, and records the
// requests, the server names (SNI) clients asked for and the common names
// of the client certificates it verified.
type TLSUAS struct {
	t    *testing.T
	Port int

	mu     sync.Mutex
	reqs   []sip.Request
	sni    []string
	client []string
}

func StartTLSUAS(t *testing.T, conf *tls.Config) *TLSUAS {
	t.Helper()
	u := &TLSUAS{t: t}
	conf = conf.Clone()
	conf.MinVersion = tls.VersionTLS12
	conf.GetConfigForClient = func(h *tls.ClientHelloInfo) (*tls.Config, error) {
		u.mu.Lock()
		u.sni = append(u.sni, h.ServerName)
		u.mu.Unlock()
		return nil, nil
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", conf)
	if err != nil {
		t.Fatal(err)
	}
	u.Port = ln.Addr().(*net.TCPAddr).Port
	var wg sync.WaitGroup
	var cmu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		_ = ln.Close()
		cmu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		cmu.Unlock()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			cmu.Lock()
			conns = append(conns, nc)
			cmu.Unlock()
			wg.Go(func() { u.serve(nc.(*tls.Conn)) })
		}
	})
	return u
}

// serve reads one connection's requests until it closes.
func (u *TLSUAS) serve(c *tls.Conn) {
	defer c.Close()
	if err := c.Handshake(); err != nil {
		return // the test looks at what the SBC saw
	}
	if certs := c.ConnectionState().PeerCertificates; len(certs) > 0 {
		u.mu.Lock()
		u.client = append(u.client, certs[0].Subject.CommonName)
		u.mu.Unlock()
	}
	parser := sipmsg.NewParser(sipmsg.Limits{})
	r := bufio.NewReader(c)
	for {
		data, err := ReadStreamMessage(r)
		if err != nil {
			return
		}
		m, err := parser.Parse(data)
		req, ok := m.(sip.Request)
		if err != nil || !ok {
			continue
		}
		u.mu.Lock()
		u.reqs = append(u.reqs, req)
		u.mu.Unlock()
		if req.Method() == sip.ACK {
			continue
		}
		sdp := ""
		if req.Method() == sip.INVITE {
			sdp = UASSDP()
		}
		if _, err := c.Write([]byte(u.response(req, sdp))); err != nil {
			return
		}
	}
}

// response is a 200 to req, with sdp when not empty.
func (u *TLSUAS) response(req sip.Request, sdp string) string {
	var b strings.Builder
	b.WriteString("SIP/2.0 200 OK\r\n")
	for _, h := range req.GetHeaders("Via") {
		b.WriteString(h.String() + "\r\n")
	}
	from, _ := req.From()
	to, _ := req.To()
	toStr := to.String()
	if sipmsg.ToTag(req) == "" {
		toStr += ";tag=tlsuas"
	}
	fmt.Fprintf(&b, "%s\r\n%s\r\nCall-ID: %s\r\n", from.String(), toStr, sipmsg.CallID(req))
	cseq, _ := req.CSeq()
	b.WriteString(cseq.String() + "\r\n")
	if req.Method() == sip.INVITE {
		fmt.Fprintf(&b, "Contact: <sip:uas@127.0.0.1:%d;transport=tls>\r\n", u.Port)
	}
	body := strings.ReplaceAll(sdp, "\n", "\r\n")
	if body != "" {
		b.WriteString("Content-Type: application/sdp\r\n")
	}
	fmt.Fprintf(&b, "Content-Length: %d\r\n\r\n%s", len(body), body)
	return b.String()
}

// methods returns the methods of the requests received, except OPTIONS.
func (u *TLSUAS) Methods() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	var out []string
	for _, r := range u.reqs {
		if r.Method() != sip.OPTIONS {
			out = append(out, string(r.Method()))
		}
	}
	return out
}

func (u *TLSUAS) Seen() (sni, client []string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]string(nil), u.sni...), append([]string(nil), u.client...)
}

// tlsTrunkPKI is a trunk CA, a CA nobody trusts, and a CA for client
// certificates with the SBC's certificate files.
type tlsTrunkPKI struct {
	CA, Rogue, Clients *tlstest.CA
	CAFile             string
	CertFile, KeyFile  string
}

func NewTLSTrunkPKI(t *testing.T) tlsTrunkPKI {
	dir := t.TempDir()
	p := tlsTrunkPKI{CA: tlstest.NewCA(t, "trunk ca"), Rogue: tlstest.NewCA(t, "rogue ca"), Clients: tlstest.NewCA(t, "client ca")}
	p.CAFile = p.CA.WriteCA(t, dir, "trunk-ca.pem")
	p.CertFile, p.KeyFile = tlstest.WritePair(t, dir, "sbc", p.Clients.Issue(t, "sbc.example"))
	return p
}
