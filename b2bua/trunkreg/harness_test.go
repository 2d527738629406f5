package trunkreg

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ghettovoice/gosip/sip"

	"github.com/sbc-project/sbc/b2bua/routing"
	"github.com/sbc-project/sbc/b2bua/sipmsg"
	"github.com/sbc-project/sbc/b2bua/transport"
	"github.com/sbc-project/sbc/b2bua/txn"
)

// Addresses of this package's tests (127.0.5.0/24).
const (
	sbcIP       = "127.0.5.60"
	registrarIP = "127.0.5.61"
)

// wait bounds every wait.
const wait = 10 * time.Second

type noRequests struct{}

func (noRequests) OnRequest(sip.Request, *txn.ServerTx) {}

// newManager runs a transport and transaction layer on sbcIP and a
// manager on them, closed at the end of the test.
func newManager(t *testing.T, cfg Config) *Manager {
	t.Helper()
	parser := sipmsg.NewParser(sipmsg.Limits{})
	var tx *txn.Layer
	tp := transport.New(nil, transport.Limits{}, func(p transport.Packet) {
		if msg, err := parser.Parse(p.Data); err == nil {
			tx.Receive(msg, p.Source())
		}
	})
	tx = txn.New(func(msg sip.Message, dst transport.Target) error { return tp.Send(dst, sipmsg.Render(msg)) },
		noRequests{}, txn.Timers{T1: 50 * time.Millisecond, T2: 200 * time.Millisecond, T4: 200 * time.Millisecond}, nil)
	local, err := tp.Listen("udp", transport.UDP, sbcIP+":0", transport.ListenOptions{Symmetric: true})
	if err != nil {
		t.Fatal(err)
	}
	m := New(cfg, Deps{Tx: tx, Log: slog.New(slog.NewTextHandler(tWriter{t}, nil)), Host: func(transport.Kind, netip.Addr) (string, uint16, error) {
		return local.Addr().String(), local.Port(), nil
	}})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		m.Close(ctx)
		tx.Close()
		_ = tp.Close()
	})
	return m
}

// registrar is a registrar on UDP that challenges every REGISTER without
// credentials with SHA-256 digest and checks the answers itself.
type registrar struct {
	t     *testing.T
	conn  *net.UDPConn
	realm string
	users map[string]string // user -> password

	mu       sync.Mutex
	log      []registerSeen
	failNext int  // answer the next n REGISTERs 503 with Retry-After: 1
	proxy    bool // challenge with 407 (realm proxy.test) before the 401
	wg       sync.WaitGroup
}

// registerSeen is one REGISTER with credentials the registrar accepted.
type registerSeen struct {
	user, contact string
	expires       int
}

func startRegistrar(t *testing.T, users map[string]string) *registrar {
	t.Helper()
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort(registrarIP+":0")))
	if err != nil {
		t.Fatal(err)
	}
	r := &registrar{t: t, conn: c, realm: "carrier.test", users: users}
	r.wg.Add(1)
	go r.serve()
	t.Cleanup(func() { c.Close(); r.wg.Wait() })
	return r
}

func (r *registrar) addr() netip.AddrPort { return r.conn.LocalAddr().(*net.UDPAddr).AddrPort() }

func (r *registrar) serve() {
	defer r.wg.Done()
	parser := sipmsg.NewParser(sipmsg.Limits{})
	buf := make([]byte, 65535)
	for {
		n, from, err := r.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		msg, err := parser.Parse(append([]byte(nil), buf[:n]...))
		req, ok := msg.(sip.Request)
		if err != nil || !ok {
			continue
		}
		res := r.answer(req)
		_, _ = r.conn.WriteToUDPAddrPort(sipmsg.Render(res), from)
	}
}

func (r *registrar) answer(req sip.Request) sip.Response {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.failNext > 0 {
		r.failNext--
		res := txn.NewResponse(req, 503, "Service Unavailable")
		res.AppendHeader(sipmsg.Generic("Retry-After", "1"))
		return res
	}
	if r.proxy {
		if _, ok := r.verify(req, sipmsg.Header(req, "Proxy-Authorization"), "proxy.test"); !ok {
			res := txn.NewResponse(req, 407, "Proxy Authentication Required")
			res.AppendHeader(sipmsg.Generic("Proxy-Authenticate",
				fmt.Sprintf(`Digest realm="proxy.test", nonce="%s", algorithm=SHA-256, qop="auth", opaque="op1"`, sipmsg.NewToken(10))))
			return res
		}
	}
	auth := sipmsg.Header(req, "Authorization")
	user, ok := r.verify(req, auth, r.realm)
	if !ok {
		res := txn.NewResponse(req, 401, "Unauthorized")
		res.AppendHeader(sipmsg.Generic("WWW-Authenticate",
			fmt.Sprintf(`Digest realm="%s", nonce="%s", algorithm=SHA-256, qop="auth", opaque="op1"`, r.realm, sipmsg.NewToken(10))))
		return res
	}
	expires, _ := sipmsg.HeaderInt(req, "Expires")
	contact := strings.Trim(sipmsg.Header(req, "Contact"), "<>")
	r.log = append(r.log, registerSeen{user: user, contact: contact, expires: expires})
	res := txn.NewResponse(req, 200, "OK")
	if expires > 0 {
		res.AppendHeader(sipmsg.Generic("Contact", fmt.Sprintf("<%s>;expires=%d", contact, expires)))
	}
	return res
}

// verify checks a SHA-256 qop=auth answer, computed here independently.
func (r *registrar) verify(req sip.Request, auth, realm string) (string, bool) {
	if auth == "" {
		return "", false
	}
	p, err := parseParams(strings.TrimPrefix(auth, "Digest "))
	if err != nil || p["algorithm"] != "SHA-256" || p["qop"] != "auth" || p["opaque"] != "op1" || p["realm"] != realm {
		return "", false
	}
	pw, ok := r.users[p["username"]]
	if !ok {
		return "", false
	}
	h := func(s string) string { x := sha256.Sum256([]byte(s)); return hex.EncodeToString(x[:]) }
	ha1 := h(p["username"] + ":" + realm + ":" + pw)
	ha2 := h("REGISTER:" + p["uri"])
	want := h(ha1 + ":" + p["nonce"] + ":" + p["nc"] + ":" + p["cnonce"] + ":auth:" + ha2)
	return p["username"], p["response"] == want && p["uri"] == req.Recipient().String()
}

func (r *registrar) seen() []registerSeen {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]registerSeen(nil), r.log...)
}

// waitSeen waits until the registrar has accepted a REGISTER that ok
// holds for.
func (r *registrar) waitSeen(t *testing.T, what string, ok func(registerSeen) bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for time.Now().Before(deadline) {
		for _, s := range r.seen() {
			if ok(s) {
				return
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("registrar never saw %s: %+v", what, r.seen())
}

// trunks compiles trunks registering at r.
func trunks(t *testing.T, r *registrar, regs ...RegisterAt) []*routing.Trunk {
	t.Helper()
	var specs []routing.TrunkSpec
	for _, g := range regs {
		spec := g.Spec
		specs = append(specs, routing.TrunkSpec{Name: g.Name, URI: "sip:" + r.addr().String(), Register: &spec})
	}
	tab, err := routing.New(routing.TableSpec{Trunks: specs}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return tab.Trunks()
}

// RegisterAt names a trunk's registration for trunks.
type RegisterAt struct {
	Name string
	Spec routing.RegisterSpec
}

func regSpec(user, pw, contact string) routing.RegisterSpec {
	return routing.RegisterSpec{Username: user, Password: pw, Expires: time.Minute, ContactUser: contact}
}

// tWriter writes the manager's log to the test's.
type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}
