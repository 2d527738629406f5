package transport

import (
	"bytes"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

func TestWSUpgradeRequiresSIP(t *testing.T) {
	tests := []struct {
		name   string
		protos []string
	}{
		{"no subprotocol", nil},
		{"other subprotocol", []string{"chat"}},
		{"wrong case", []string{"SIP"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checkRoutines(t)
			l, rec := newTestLayer(t, Limits{})
			addr := listen(t, l, "ws", WS, nil)
			d := websocket.Dialer{Subprotocols: tc.protos, HandshakeTimeout: 3 * time.Second}
			ws, resp, err := d.Dial("ws://"+addr.String()+"/", nil)
			if err == nil {
				_ = ws.Close()
				t.Fatal("upgrade accepted")
			}
			if !errors.Is(err, websocket.ErrBadHandshake) || resp == nil {
				t.Fatalf("dial error %v, want a refused handshake", err)
			}
			defer resp.Body.Close()
			var body bytes.Buffer
			_, _ = body.ReadFrom(resp.Body)
			if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body.String(), `"sip"`) {
				t.Fatalf("status %d body %q, want 400 naming the sip subprotocol", resp.StatusCode, body.String())
			}
			rec.none(t)
			s := l.Stats()
			if s.Open[WS] != 0 || s.Dropped.Handshake != 1 {
				t.Fatalf("open=%d handshake drops=%d, want 0 1", s.Open[WS], s.Dropped.Handshake)
			}
		})
	}
}

func TestWSCheckOrigin(t *testing.T) {
	checkRoutines(t)
	l, _ := newTestLayer(t, Limits{})
	l.CheckOrigin = func(r *http.Request) bool { return r.Header.Get("Origin") == "https://good.example" }
	addr := listen(t, l, "ws", WS, nil)
	d := websocket.Dialer{Subprotocols: []string{"sip"}, HandshakeTimeout: 3 * time.Second}
	for origin, ok := range map[string]bool{"https://good.example": true, "https://evil.example": false} {
		ws, resp, err := d.Dial("ws://"+addr.String()+"/", http.Header{"Origin": {origin}})
		if resp != nil {
			_ = resp.Body.Close()
		}
		if ok != (err == nil) {
			t.Fatalf("origin %s: err %v", origin, err)
		}
		if ws != nil {
			_ = ws.Close()
		}
	}
}

func TestWSFrameTooLarge(t *testing.T) {
	checkRoutines(t)
	l, rec := newTestLayer(t, Limits{MaxMessageSize: 1000})
	addr := listen(t, l, "ws", WS, nil)
	ws := dialClient(t, WS, addr, nil).(*wsClient)
	ok := bytes.Repeat([]byte("a"), 1000)
	ws.send(t, ok)
	if p := rec.next(t); len(p.Data) != 1000 {
		t.Fatalf("got %d bytes", len(p.Data))
	}
	ws.send(t, bytes.Repeat([]byte("a"), 1001))
	_ = ws.c.SetReadDeadline(time.Now().Add(3 * time.Second))
	_, _, err := ws.c.ReadMessage()
	if !websocket.IsCloseError(err, websocket.CloseMessageTooBig) {
		t.Fatalf("read after oversize frame: %v, want close 1009", err)
	}
	rec.none(t)
	// gorilla sends the close frame before the reader sees the error.
	eventually(t, "oversize counted and conn removed", func() bool {
		s := l.Stats()
		return s.Dropped.Oversize == 1 && s.Open[WS] == 0
	})
}

func TestWSKeepalive(t *testing.T) {
	checkRoutines(t)
	l, rec := newTestLayer(t, Limits{})
	addr := listen(t, l, "ws", WS, nil)
	ws := dialClient(t, WS, addr, nil)
	ws.send(t, []byte("\r\n\r\n"))
	if got := ws.recv(t, 2); string(got) != "\r\n" {
		t.Fatalf("pong %q, want CRLF", got)
	}
	rec.none(t)

	// A WebSocket ping is answered with a pong carrying the same data.
	wc := ws.(*wsClient).c
	pong := make(chan string, 1)
	wc.SetPongHandler(func(data string) error { pong <- data; return nil })
	if err := wc.WriteControl(websocket.PingMessage, []byte("hi"), time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	// The client processes control frames while reading.
	_ = wc.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	_, _, _ = wc.ReadMessage()
	select {
	case got := <-pong:
		if got != "hi" {
			t.Fatalf("pong %q, want hi", got)
		}
	default:
		t.Fatal("no pong")
	}
}

// silentConns opens n TCP connections to addr that never send anything.
func silentConns(t *testing.T, addr string, n int) []net.Conn {
	t.Helper()
	conns := make([]net.Conn, 0, n)
	for range n {
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, nc)
	}
	t.Cleanup(func() {
		for _, nc := range conns {
			_ = nc.Close()
		}
	})
	return conns
}

// TestSilentClientsDoNotBlock checks that handshakes are never serialized
// behind clients that connect and say nothing: with a 10s handshake
// timeout, 200 silent connections on the WS port and a few on the WSS and
// TLS ports, a client of each still completes a round trip at once.
func TestSilentClientsDoNotBlock(t *testing.T) {
	checkRoutines(t)
	serverTLS, clientTLS := testTLS(t)
	l, rec := newTestLayer(t, Limits{HandshakeTimeout: 10 * time.Second})
	addrs := map[Kind]string{}
	for _, k := range []Kind{WS, WSS, TLS} {
		addrs[k] = listen(t, l, k.String(), k, serverTLS).String()
	}
	silentConns(t, addrs[WS], 200)
	silentConns(t, addrs[WSS], 5)
	silentConns(t, addrs[TLS], 5)

	// Every client step has a 3s deadline, so a round trip stuck behind
	// the silent ones fails rather than hangs.
	for _, k := range []Kind{WS, WSS, TLS} {
		ap, _ := l.LocalAddr(k)
		start := time.Now()
		c := dialClient(t, k, ap, clientTLS)
		msg := []byte(sipMsg("REGISTER", "Content-Length", ""))
		c.send(t, msg)
		p := rec.next(t)
		if err := l.Send(Target{Conn: p.Conn}, msg); err != nil {
			t.Fatalf("%s send: %v", k, err)
		}
		c.recv(t, len(msg))
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("%s round trip took %v behind silent clients", k, d)
		}
	}
}

// TestSilentClientsClosed checks that connections that never complete a
// handshake are closed after HandshakeTimeout and counted.
func TestSilentClientsClosed(t *testing.T) {
	serverTLS, _ := testTLS(t)
	tests := []struct {
		name string
		kind Kind
		n    int
	}{
		{"ws", WS, 20},
		{"wss", WSS, 5},
		{"tls", TLS, 5},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checkRoutines(t)
			l, _ := newTestLayer(t, Limits{HandshakeTimeout: 300 * time.Millisecond})
			addr := listen(t, l, tc.name, tc.kind, serverTLS)
			start := time.Now()
			for _, nc := range silentConns(t, addr.String(), tc.n) {
				waitClosed(t, nc, 3*time.Second)
			}
			if d := time.Since(start); d < 250*time.Millisecond {
				t.Fatalf("closed after %v, before the handshake timeout", d)
			}
			eventually(t, "handshake drops counted", func() bool { return l.Stats().Dropped.Handshake == uint64(tc.n) })
		})
	}
}

// TestCloseStopsEverything closes a layer with live connections of every
// kind, a dialed connection and handshakes in progress.
func TestCloseStopsEverything(t *testing.T) {
	checkRoutines(t)
	serverTLS, clientTLS := testTLS(t)
	rec := make(recorder, 64)
	l := New(nil, Limits{}, rec.handle)
	closed := make(chan *Conn, 16)
	l.OnConnClose(func(c *Conn) { closed <- c })
	for _, k := range []Kind{UDP, TCP, TLS, WS, WSS} {
		ap := listen(t, l, k.String(), k, serverTLS)
		c := dialClient(t, k, ap, clientTLS)
		c.send(t, []byte(sipMsg("OPTIONS", "Content-Length", "")))
		rec.next(t)
		if k != UDP {
			silentConns(t, ap.String(), 3)
		}
	}
	peer, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	if err := l.Send(Target{Kind: TCP, Addr: tcpAddr(peer.Addr())}, []byte(sipMsg("OPTIONS", "l", ""))); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	// TCP has no handshake: its silent conns are open conns too.
	if got := len(closed); got != 8 {
		t.Fatalf("OnConnClose ran %d times, want 8 (TCP 1+3, TLS, WS, WSS, dialed)", got)
	}
	s := l.Stats()
	for k, n := range s.Open {
		if n != 0 {
			t.Fatalf("%d %s conns open after Close", n, k)
		}
	}
	if _, err := l.Listen("late", TCP, "127.0.0.1:0", ListenOptions{}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Listen after Close: %v, want ErrClosed", err)
	}
	if err := l.Send(Target{Kind: TCP, Addr: tcpAddr(peer.Addr())}, []byte("x")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Send after Close: %v, want ErrClosed", err)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
}
