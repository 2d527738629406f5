package transport

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// sipSubprotocol is the WebSocket subprotocol of RFC 7118. A client must
// offer it; we never treat a WebSocket (or a failed upgrade) as raw SIP.
const sipSubprotocol = "sip"

// maxHTTPHeaderBytes bounds the upgrade request (and any other request on a
// WS listener).
const maxHTTPHeaderBytes = 64 << 10

// wsReadBufferSize is the read buffer an open WebSocket keeps for its life:
// room for frame headers and control frames. Payloads larger than what is
// buffered are read straight into the message, so a small buffer costs no
// copies, and an idle connection holds 512 bytes instead of net/http's 4 kB.
const wsReadBufferSize = 512

// wsWriteBuffers lends WebSocket writers their frame buffer (gorilla's
// default 4 kB) only while a message is written, instead of each open
// connection owning one.
var wsWriteBuffers wsBufferPool

// wsBufferPool is a websocket.BufferPool on a sync.Pool.
type wsBufferPool struct{ p sync.Pool }

func (b *wsBufferPool) Get() any  { return b.p.Get() }
func (b *wsBufferPool) Put(v any) { b.p.Put(v) }

// listenWS binds a WS or WSS listener served by net/http: the server runs
// each connection (the WSS TLS handshake, reading the upgrade request) on its
// own goroutine, bounded by ReadHeaderTimeout, so its accept loop never
// waits on a client.
func (l *Layer) listenWS(name string, kind Kind, addr string, tlsConf *tls.Config) (netip.AddrPort, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("listen %s on %s: %w", kind, addr, err)
	}
	li := &listener{name: name, kind: kind, addr: boundAddr(addr, ln.Addr()), tlsConf: tlsConf, ln: ln}
	var sln net.Listener = limitListener{Listener: ln, l: l}
	if kind == WSS {
		// tls.NewListener does not handshake in Accept; http.Server does it
		// on the connection's goroutine with the ReadHeaderTimeout deadline.
		sln = tls.NewListener(sln, tlsConf)
	}
	li.srv = &http.Server{
		Handler:           l.wsHandler(li),
		ReadHeaderTimeout: l.lim.HandshakeTimeout,
		IdleTimeout:       l.lim.HandshakeTimeout,
		MaxHeaderBytes:    maxHTTPHeaderBytes,
		ConnState:         l.trackHTTP,
		ErrorLog:          slog.NewLogLogger(l.log.Handler(), slog.LevelDebug),
		// No HTTP/2: a WebSocket upgrade needs HTTP/1.1.
		TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){},
	}
	serve := func() {
		// Serve after Close returns at once and closes sln.
		if err := li.srv.Serve(sln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			l.log.Error("sip websocket listener stopped", "listener", name, "err", err)
		}
	}
	if !l.addListener(li, serve) {
		_ = ln.Close()
		return netip.AddrPort{}, fmt.Errorf("listen %s on %s: %w", kind, addr, ErrClosed)
	}
	return li.addr, nil
}

// wsHandler upgrades WebSocket requests that offer the sip subprotocol and
// reads the connection on a goroutine of its own; other requests go to the
// HTTP handler (404 by default). The request's goroutine returns once the
// connection is upgraded, so that what net/http held for it (its stack,
// grown by the TLS handshake, the request and its buffers) is freed while
// the connection stays open.
func (l *Layer) wsHandler(li *listener) http.Handler {
	up := &websocket.Upgrader{
		HandshakeTimeout: l.lim.HandshakeTimeout,
		ReadBufferSize:   wsReadBufferSize,
		WriteBufferPool:  &wsWriteBuffers,
		Subprotocols:     []string{sipSubprotocol},
		CheckOrigin:      l.checkOrigin,
		Error: func(w http.ResponseWriter, _ *http.Request, status int, reason error) {
			http.Error(w, reason.Error(), status)
		},
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !websocket.IsWebSocketUpgrade(r) {
			l.nonUpgradeHandler().ServeHTTP(w, r)
			return
		}
		if !offersSIP(r) {
			l.stats.handshake.Add(1)
			l.log.Debug("sip websocket upgrade refused: no sip subprotocol", "listener", li.name, "remote", r.RemoteAddr)
			http.Error(w, `WebSocket subprotocol "sip" required (RFC 7118)`, http.StatusBadRequest)
			return
		}
		if !l.enter() {
			http.Error(w, "shutting down", http.StatusServiceUnavailable)
			return
		}
		defer l.wg.Done()
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			// Upgrade has answered with an HTTP error or closed the connection.
			l.stats.handshake.Add(1)
			l.log.Debug("sip websocket upgrade", "listener", li.name, "remote", r.RemoteAddr, "err", err)
			return
		}
		l.serveWS(li, ws)
	})
}

// offersSIP reports whether the upgrade request lists the sip subprotocol.
// Tokens are compared exactly, as gorilla does when it selects one.
func offersSIP(r *http.Request) bool {
	for _, p := range websocket.Subprotocols(r) {
		if p == sipSubprotocol {
			return true
		}
	}
	return false
}

// checkOrigin applies CheckOrigin and counts refusals; gorilla answers a
// refused upgrade 403.
func (l *Layer) checkOrigin(r *http.Request) bool {
	if l.CheckOrigin == nil || l.CheckOrigin(r) {
		return true
	}
	l.stats.origin.Add(1)
	l.log.Debug("sip websocket upgrade refused: origin not allowed", "remote", r.RemoteAddr, "origin", r.Header.Get("Origin"))
	return false
}

func (l *Layer) nonUpgradeHandler() http.Handler {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.httpHandler == nil {
		return http.NotFoundHandler()
	}
	return l.httpHandler
}

// serveWS registers an upgraded connection and starts its reader, which
// reads it until it closes.
func (l *Layer) serveWS(li *listener, ws *websocket.Conn) {
	raw := tcpUnder(ws.UnderlyingConn())
	c := newConn(l, li.kind, li.name, nil, ws, raw)
	// A frame or message above the limit makes gorilla close with 1009.
	ws.SetReadLimit(int64(l.lim.MaxMessageSize))
	ws.SetPingHandler(func(data string) error {
		c.touch()
		err := ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(l.lim.WriteTimeout))
		var ne net.Error
		if errors.Is(err, websocket.ErrCloseSent) || (errors.As(err, &ne) && ne.Timeout()) {
			return nil
		}
		return err
	})
	ws.SetPongHandler(func(string) error {
		c.touch()
		return nil
	})
	if !l.addConn(c) {
		_ = raw.Close()
		return
	}
	// A fresh goroutine starts with a small stack; an idle connection's
	// reader keeps only what a blocked read needs.
	if !l.start(func() { l.readWS(c) }) {
		_ = c.Close()
	}
}

// readWS delivers one SIP message per WebSocket message (text or binary)
// until the connection fails or closes, then closes it. It stops at the
// first error: gorilla cannot read on after one (not even a timeout).
func (l *Layer) readWS(c *Conn) {
	defer func() { _ = c.Close() }()
	for {
		_, data, err := c.ws.ReadMessage()
		if err != nil {
			l.wsEnded(c, err)
			return
		}
		c.touch()
		if isKeepalive(data) {
			// SIP.js pings with "\r\n\r\n" and expects "\r\n", as on TCP.
			l.stats.keepalives.Add(1)
			if bytes.Equal(data, []byte("\r\n\r\n")) {
				if err := c.write(crlf); err != nil {
					l.log.Debug("sip keepalive pong", "conn", c.String(), "err", err)
					return
				}
			}
			continue
		}
		l.deliver(Packet{Data: data, Src: c.remote, Local: c.local, Kind: c.kind, Conn: c, Listener: c.listener})
	}
}

// wsEnded counts why a WebSocket's reader stopped.
func (l *Layer) wsEnded(c *Conn, err error) {
	var ne net.Error
	switch {
	case errors.Is(err, websocket.ErrReadLimit):
		l.stats.oversize.Add(1)
	case errors.As(err, &ne) && ne.Timeout():
		l.stats.idleClosed.Add(1)
	case websocket.IsCloseError(err, websocket.CloseNormalClosure, websocket.CloseGoingAway, websocket.CloseNoStatusReceived),
		errors.Is(err, net.ErrClosed):
		return
	}
	l.log.Debug("sip websocket read", "conn", c.String(), "err", err)
}

// trackHTTP follows the net/http connections of WS listeners: Close waits
// for them, and one that closes without ever sending a request (TLS
// handshake failed, or silent until ReadHeaderTimeout) is counted as a
// failed handshake.
func (l *Layer) trackHTTP(nc net.Conn, st http.ConnState) {
	l.httpMu.Lock()
	defer l.httpMu.Unlock()
	switch st {
	case http.StateNew:
		l.httpConns.Add(1)
		l.httpSeen[nc] = false
	case http.StateActive:
		if _, ok := l.httpSeen[nc]; ok {
			l.httpSeen[nc] = true
		}
	case http.StateHijacked, http.StateClosed:
		seen, ok := l.httpSeen[nc]
		if !ok {
			return
		}
		delete(l.httpSeen, nc)
		l.httpConns.Done()
		if st == http.StateClosed && !seen && l.ctx.Err() == nil {
			l.stats.handshake.Add(1)
		}
	}
}
