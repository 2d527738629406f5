package transport

import (
	"bytes"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestRoundTrip(t *testing.T) {
	serverTLS, clientTLS := testTLS(t)
	tests := []struct {
		name string
		kind Kind
	}{
		{"udp", UDP},
		{"tcp", TCP},
		{"tls", TLS},
		{"ws", WS},
		{"wss", WSS},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checkRoutines(t)
			l, rec := newTestLayer(t, Limits{})
			addr := listen(t, l, "edge-"+tc.name, tc.kind, serverTLS)
			if got, ok := l.LocalAddr(tc.kind); !ok || got != addr {
				t.Fatalf("LocalAddr(%s) = %v, %v; want %v", tc.kind, got, ok, addr)
			}
			c := dialClient(t, tc.kind, addr, clientTLS)

			req := []byte(sipMsg("OPTIONS", "Content-Length", "hello"))
			c.send(t, req)
			p := rec.next(t)
			if !bytes.Equal(p.Data, req) {
				t.Fatalf("data %q, want %q", p.Data, req)
			}
			if p.Src != c.local() || p.Local != addr || p.Kind != tc.kind || p.Listener != "edge-"+tc.name {
				t.Fatalf("packet src=%v local=%v kind=%v listener=%q; want %v %v %v %q",
					p.Src, p.Local, p.Kind, p.Listener, c.local(), addr, tc.kind, "edge-"+tc.name)
			}
			if (p.Conn == nil) != (tc.kind == UDP) {
				t.Fatalf("packet conn = %v for %s", p.Conn, tc.kind)
			}
			if p.Conn != nil && (p.Conn.Kind() != tc.kind || p.Conn.RemoteAddr() != p.Src || p.Conn.LocalAddr() != addr) {
				t.Fatalf("conn %v remote %v local %v", p.Conn.Kind(), p.Conn.RemoteAddr(), p.Conn.LocalAddr())
			}

			res := []byte("SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n")
			if err := l.Send(Target{Kind: p.Kind, Addr: p.Src, Conn: p.Conn, Local: p.Local, Listener: p.Listener}, res); err != nil {
				t.Fatalf("send: %v", err)
			}
			if got := c.recv(t, len(res)); !bytes.Equal(got, res) {
				t.Fatalf("client got %q, want %q", got, res)
			}
			s := l.Stats()
			if s.Received != 1 || s.Sent != 1 {
				t.Fatalf("stats received=%d sent=%d, want 1 1", s.Received, s.Sent)
			}
			if tc.kind != UDP && s.Open[tc.kind] != 1 {
				t.Fatalf("open %s conns = %d, want 1", tc.kind, s.Open[tc.kind])
			}
		})
	}
}

func TestUDP(t *testing.T) {
	tests := []struct {
		name     string
		send     []byte
		deliver  bool
		oversize uint64
	}{
		{"message", []byte(sipMsg("OPTIONS", "l", "")), true, 0},
		{"crlf keepalive ignored", []byte("\r\n\r\n"), false, 0},
		{"largest allowed", bytes.Repeat([]byte("a"), 1000), true, 0},
		{"oversize dropped", bytes.Repeat([]byte("a"), 1001), false, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checkRoutines(t)
			l, rec := newTestLayer(t, Limits{MaxMessageSize: 1000})
			addr := listen(t, l, "udp", UDP, nil)
			c := dialClient(t, UDP, addr, nil)
			c.send(t, tc.send)
			if tc.deliver {
				if p := rec.next(t); !bytes.Equal(p.Data, tc.send) {
					t.Fatalf("got %q", p.Data)
				}
			} else {
				rec.none(t)
			}
			if got := l.Stats().Dropped.Oversize; got != tc.oversize {
				t.Fatalf("oversize = %d, want %d", got, tc.oversize)
			}
		})
	}
}

func TestSendErrors(t *testing.T) {
	checkRoutines(t)
	l, rec := newTestLayer(t, Limits{})
	wsAddr := listen(t, l, "ws", WS, nil)
	ws := dialClient(t, WS, wsAddr, nil)
	ws.send(t, []byte(sipMsg("REGISTER", "Content-Length", "")))
	p := rec.next(t)
	if err := p.Conn.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	select {
	case <-p.Conn.Done():
	default:
		t.Fatal("Done not closed after Close")
	}
	tests := []struct {
		name string
		t    Target
	}{
		{"closed conn", Target{Kind: WS, Addr: p.Src, Conn: p.Conn}},
		{"websocket without conn", Target{Kind: WS, Addr: p.Src}},
		{"udp without listener", Target{Kind: UDP, Addr: netip.MustParseAddrPort("127.0.0.1:9")}},
		{"no address", Target{Kind: TCP}},
		{"unknown kind", Target{Kind: 0, Addr: netip.MustParseAddrPort("127.0.0.1:9")}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := l.Send(tc.t, []byte("x")); err == nil {
				t.Fatal("Send succeeded")
			}
		})
	}
	if err := p.Conn.write([]byte("x")); !errors.Is(err, ErrConnClosed) {
		t.Fatalf("write on closed conn: %v, want ErrConnClosed", err)
	}
	if got := l.Stats().SendErrors; got != uint64(len(tests)) {
		t.Fatalf("send errors = %d, want %d", got, len(tests))
	}
}

func TestOutbound(t *testing.T) {
	serverTLS, clientTLS := testTLS(t)
	tests := []struct {
		name string
		kind Kind
		host string
	}{
		{"tcp", TCP, ""},
		{"tls by ip", TLS, ""},
		{"tls by name", TLS, "sbc.test"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checkRoutines(t)
			l, rec := newTestLayer(t, Limits{})
			l.SetClientTLS(clientTLS)
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			if tc.kind == TLS {
				ln = tls.NewListener(ln, serverTLS)
			}
			dst := Target{Kind: tc.kind, Addr: tcpAddr(ln.Addr()), Host: tc.host}

			m1 := []byte(sipMsg("INVITE", "Content-Length", "v=0\r\n"))
			m2 := []byte(sipMsg("BYE", "Content-Length", ""))
			// Accept concurrently: the TLS handshake needs both ends.
			accepted := make(chan net.Conn, 1)
			go func() {
				nc, err := ln.Accept()
				if err != nil {
					close(accepted)
					return
				}
				if tc, ok := nc.(*tls.Conn); ok {
					_ = tc.Handshake()
				}
				accepted <- nc
			}()
			if err := l.Send(dst, m1); err != nil {
				t.Fatalf("first send: %v", err)
			}
			peer, ok := <-accepted
			if !ok {
				t.Fatal("accept failed")
			}
			defer peer.Close()
			if got := readN(t, peer, len(m1)); !bytes.Equal(got, m1) {
				t.Fatalf("peer got %q", got)
			}
			if err := l.Send(dst, m2); err != nil {
				t.Fatalf("second send: %v", err)
			}
			if got := readN(t, peer, len(m2)); !bytes.Equal(got, m2) {
				t.Fatalf("peer got %q on the first connection", got)
			}
			if n := l.Stats().Open[tc.kind]; n != 1 {
				t.Fatalf("open %s conns = %d, want 1 (reused)", tc.kind, n)
			}

			res := []byte("SIP/2.0 200 OK\r\nl: 0\r\n\r\n")
			if _, err := peer.Write(res); err != nil {
				t.Fatal(err)
			}
			p := rec.next(t)
			if !bytes.Equal(p.Data, res) || p.Listener != "" || p.Conn == nil || p.Src != dst.Addr || p.Kind != tc.kind {
				t.Fatalf("reply packet %q listener=%q conn=%v src=%v kind=%v", p.Data, p.Listener, p.Conn, p.Src, p.Kind)
			}
		})
	}
}

func TestOutboundReusesInboundConn(t *testing.T) {
	checkRoutines(t)
	l, rec := newTestLayer(t, Limits{})
	addr := listen(t, l, "tcp", TCP, nil)
	c := dialClient(t, TCP, addr, nil)
	c.send(t, []byte(sipMsg("REGISTER", "Content-Length", "")))
	rec.next(t)
	req := []byte(sipMsg("OPTIONS", "Content-Length", ""))
	if err := l.Send(Target{Kind: TCP, Addr: c.local()}, req); err != nil {
		t.Fatalf("send: %v", err)
	}
	if got := c.recv(t, len(req)); !bytes.Equal(got, req) {
		t.Fatalf("got %q", got)
	}
	if n := l.Stats().Open[TCP]; n != 1 {
		t.Fatalf("open TCP conns = %d, want 1", n)
	}
}

func TestOutboundRedialsAfterClose(t *testing.T) {
	checkRoutines(t)
	l, _ := newTestLayer(t, Limits{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	dst := Target{Kind: TCP, Addr: tcpAddr(ln.Addr())}
	msg := []byte(sipMsg("OPTIONS", "Content-Length", ""))
	for i := range 2 {
		if err := l.Send(dst, msg); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
		peer, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		readN(t, peer, len(msg))
		_ = peer.Close()
		eventually(t, "dialed conn to close", func() bool { return l.Stats().Open[TCP] == 0 })
	}
}

func TestMaxConnsPerIP(t *testing.T) {
	checkRoutines(t)
	l, rec := newTestLayer(t, Limits{MaxConnsPerIP: 2})
	addr := listen(t, l, "tcp", TCP, nil)
	msg := []byte(sipMsg("OPTIONS", "Content-Length", ""))
	a := dialClient(t, TCP, addr, nil)
	b := dialClient(t, TCP, addr, nil)
	a.send(t, msg)
	b.send(t, msg)
	rec.next(t)
	rec.next(t)

	excess := dialClient(t, TCP, addr, nil).(*streamClient)
	waitClosed(t, excess.c, 2*time.Second)
	if got := l.Stats().Dropped.ConnLimit; got != 1 {
		t.Fatalf("conn limit drops = %d, want 1", got)
	}

	a.close()
	eventually(t, "slot to free", func() bool { return l.Stats().Open[TCP] == 1 })
	c := dialClient(t, TCP, addr, nil)
	c.send(t, msg)
	if p := rec.next(t); p.Src != c.local() {
		t.Fatalf("packet from %v, want %v", p.Src, c.local())
	}
}

func TestIdleTimeout(t *testing.T) {
	serverTLS, clientTLS := testTLS(t)
	tests := []struct {
		name string
		kind Kind
	}{
		{"tcp", TCP},
		{"tls", TLS},
		{"ws", WS},
		{"wss", WSS},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checkRoutines(t)
			l, rec := newTestLayer(t, Limits{IdleTimeout: 300 * time.Millisecond})
			closed := make(chan *Conn, 1)
			l.OnConnClose(func(c *Conn) {
				if l.lookupConn(connKey{kind: c.Kind(), addr: c.RemoteAddr()}) != nil {
					t.Error("conn still in the table when OnConnClose runs")
				}
				closed <- c
			})
			addr := listen(t, l, tc.name, tc.kind, serverTLS)
			c := dialClient(t, tc.kind, addr, clientTLS)
			c.send(t, []byte(sipMsg("REGISTER", "Content-Length", "")))
			p := rec.next(t)

			// Writes count as traffic: keep it alive for longer than the
			// idle timeout by sending to it only.
			for range 4 {
				time.Sleep(150 * time.Millisecond)
				if err := l.Send(Target{Conn: p.Conn}, []byte("SIP/2.0 100 Trying\r\n\r\n")); err != nil {
					t.Fatalf("send while active: %v", err)
				}
			}
			select {
			case got := <-closed:
				if got != p.Conn {
					t.Fatal("OnConnClose got another conn")
				}
			case <-time.After(3 * time.Second):
				t.Fatal("idle conn not closed")
			}
			select {
			case <-p.Conn.Done():
			default:
				t.Fatal("Done not closed")
			}
			if got := l.Stats().Dropped.IdleClosed; got != 1 {
				t.Fatalf("idle closed = %d, want 1", got)
			}
		})
	}
}

func TestHTTPOnWSListener(t *testing.T) {
	checkRoutines(t)
	l, _ := newTestLayer(t, Limits{})
	addr := listen(t, l, "ws", WS, nil)
	get := func(path string) string {
		t.Helper()
		nc, err := net.Dial("tcp", addr.String())
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		if _, err := nc.Write([]byte("GET " + path + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")); err != nil {
			t.Fatal(err)
		}
		_ = nc.SetReadDeadline(time.Now().Add(3 * time.Second))
		var buf bytes.Buffer
		_, _ = buf.ReadFrom(nc)
		status, _, _ := strings.Cut(buf.String(), "\r\n")
		return status
	}
	if status := get("/"); !strings.Contains(status, " 404 ") {
		t.Fatalf("default status %q, want 404", status)
	}
	l.SetHTTPHandler(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	if status := get("/phone"); !strings.Contains(status, " 204 ") {
		t.Fatalf("handler status %q, want 204", status)
	}
}

// TestWriteDeadline checks that a peer that stops reading cannot block Send:
// once the socket buffers are full the write times out and the connection
// is closed.
func TestWriteDeadline(t *testing.T) {
	checkRoutines(t)
	l, rec := newTestLayer(t, Limits{WriteTimeout: 200 * time.Millisecond})
	addr := listen(t, l, "tcp", TCP, nil)
	c := dialClient(t, TCP, addr, nil).(*streamClient)
	_ = c.c.(*net.TCPConn).SetReadBuffer(4096)
	c.send(t, []byte(sipMsg("REGISTER", "Content-Length", "")))
	p := rec.next(t)

	big := bytes.Repeat([]byte("x"), 1<<20)
	start := time.Now()
	var err error
	for range 256 {
		if err = l.Send(Target{Conn: p.Conn}, big); err != nil {
			break
		}
	}
	if err == nil {
		t.Fatal("256 MiB written to a peer that never reads")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("send blocked for %v", d)
	}
	select {
	case <-p.Conn.Done():
	default:
		t.Fatal("conn still open after a failed write")
	}
	if n := l.Stats().Open[TCP]; n != 0 {
		t.Fatalf("%d TCP conns open, want 0", n)
	}
}
