package transport

import (
	"bytes"
	"crypto/sha1"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
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

// wsReadBufferSize is the buffer a WebSocket is read with while it has
// data, lent by wsReadBufs: at least a TLS record's plaintext (16 kB), so
// that one read empties what crypto/tls decrypted (see readWS).
const wsReadBufferSize = 16<<10 + 512

// wsWaitBufferSize is the buffer of a read that may wait (see readWS).
const wsWaitBufferSize = 512

var wsReadBufs = sync.Pool{New: func() any { b := make([]byte, wsReadBufferSize); return &b }}

// wsGUID is the key suffix of the Sec-WebSocket-Accept hash (RFC 6455
// section 1.3).
const wsGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

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

// wsHandler upgrades WebSocket requests that offer the sip subprotocol;
// other requests go to the HTTP handler (404 by default). The request's
// goroutine returns once the connection is upgraded and what it sent is
// read, so that what net/http held for it (its stack, grown by the TLS
// handshake, the request and its buffers) is freed while the connection
// stays open; from then on the connection has a goroutine only while it
// has data to read (see readWS).
func (l *Layer) wsHandler(li *listener) http.Handler {
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
		if status, reason := checkUpgrade(r); status != 0 {
			l.stats.handshake.Add(1)
			l.log.Debug("sip websocket upgrade refused", "listener", li.name, "remote", r.RemoteAddr, "reason", reason)
			if status == http.StatusUpgradeRequired {
				w.Header().Set("Sec-WebSocket-Version", "13")
			}
			http.Error(w, reason, status)
			return
		}
		if !l.checkOrigin(r) {
			l.stats.handshake.Add(1)
			http.Error(w, "origin not allowed", http.StatusForbidden)
			return
		}
		if !l.enter() {
			http.Error(w, "shutting down", http.StatusServiceUnavailable)
			return
		}
		defer l.wg.Done()
		nc, pending, err := l.hijack(w, r)
		if err != nil {
			l.stats.handshake.Add(1)
			l.log.Debug("sip websocket upgrade", "listener", li.name, "remote", r.RemoteAddr, "err", err)
			return
		}
		l.serveWS(li, nc, pending)
	})
}

// checkUpgrade checks what a WebSocket opening handshake must carry (RFC
// 6455 section 4.2.1) beyond Upgrade and Connection; a non-zero status
// refuses it for reason.
func checkUpgrade(r *http.Request) (status int, reason string) {
	if r.Method != http.MethodGet {
		return http.StatusMethodNotAllowed, "websocket upgrade needs GET"
	}
	if r.Header.Get("Sec-WebSocket-Version") != "13" {
		return http.StatusUpgradeRequired, "unsupported Sec-WebSocket-Version"
	}
	key, err := base64.StdEncoding.DecodeString(r.Header.Get("Sec-WebSocket-Key"))
	if err != nil || len(key) != 16 {
		return http.StatusBadRequest, "bad Sec-WebSocket-Key"
	}
	return 0, ""
}

// hijack takes the connection from net/http and answers 101 with the sip
// subprotocol. pending is what the client sent after its request and
// net/http had buffered already.
func (l *Layer) hijack(w http.ResponseWriter, r *http.Request) (nc net.Conn, pending []byte, err error) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		http.Error(w, "websocket: cannot hijack", http.StatusInternalServerError)
		return nil, nil, errors.New("response cannot be hijacked")
	}
	nc, brw, err := hj.Hijack()
	if err != nil {
		return nil, nil, fmt.Errorf("hijack: %w", err)
	}
	if n := brw.Reader.Buffered(); n > 0 {
		b, _ := brw.Reader.Peek(n)
		pending = bytes.Clone(b)
	}
	sum := sha1.Sum([]byte(r.Header.Get("Sec-WebSocket-Key") + wsGUID))
	res := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Accept: " + base64.StdEncoding.EncodeToString(sum[:]) + "\r\n" +
		"Sec-WebSocket-Protocol: " + sipSubprotocol + "\r\n\r\n"
	if err := nc.SetWriteDeadline(time.Now().Add(l.lim.HandshakeTimeout)); err != nil {
		_ = nc.Close()
		return nil, nil, err
	}
	if _, err := io.WriteString(nc, res); err != nil {
		_ = nc.Close()
		return nil, nil, fmt.Errorf("write 101: %w", err)
	}
	return nc, pending, nil
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

// checkOrigin applies CheckOrigin and counts refusals.
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

// serveWS registers an upgraded connection, delivers what the client sent
// along with its upgrade request, and reads on until the connection has
// nothing more to read.
func (l *Layer) serveWS(li *listener, nc net.Conn, pending []byte) {
	raw := tcpUnder(nc)
	c := newConn(l, li.kind, li.name, nc, raw)
	c.ws = &wsReader{max: l.lim.MaxMessageSize}
	if !l.addConn(c) {
		_ = raw.Close()
		return
	}
	if len(pending) > 0 {
		c.touch()
		if err := c.ws.feed(pending, wsConnEvents{c}); err != nil {
			l.wsFailed(c, err)
			return
		}
	}
	l.readWS(c, false)
}

// readWS reads a WebSocket while it has data, delivering one SIP message
// per WebSocket message (text or binary), then leaves it to waitReadable
// and returns: an idle connection has no goroutine and no read buffer.
// With wait, the first read blocks (the connection was reported readable,
// or this is the fallback that has a goroutine per connection); the reads
// after it only take what is there already, with a deadline in the past:
// on WSS that empties the records crypto/tls read ahead. A partly read
// frame or message is read on, blocking, until it is whole or the
// connection idles out. On an error the connection is closed.
//
// A read that may block uses a 512-byte buffer unless the read before it
// filled its buffer: a peer that sends a frame header and stops makes us
// hold that much, not the 16 kB lent for the reads that find data.
func (l *Layer) readWS(c *Conn, wait bool) {
	var big *[]byte // from wsReadBufs while data flows
	defer func() {
		if big != nil {
			wsReadBufs.Put(big)
		}
	}()
	lend := func() []byte {
		if big == nil {
			big = wsReadBufs.Get().(*[]byte)
		}
		return *big
	}
	var small []byte
	ev := wsConnEvents{c}
	flowing := false // the last read filled its buffer: more is likely there
	for {
		var (
			buf []byte
			n   int
			err error
		)
		switch {
		case (wait || !c.ws.idle()) && !flowing:
			if big != nil {
				wsReadBufs.Put(big)
				big = nil
			}
			if small == nil {
				small = make([]byte, wsWaitBufferSize)
			}
			buf = small
			n, err = idleReader{c}.Read(buf)
		case wait || !c.ws.idle():
			buf = lend()
			n, err = idleReader{c}.Read(buf)
		default:
			buf = lend()
			n, err = c.readBuffered(buf)
		}
		flowing = n == len(buf)
		if n > 0 {
			c.touch()
			if ferr := c.ws.feed(buf[:n], ev); ferr != nil {
				l.wsFailed(c, ferr)
				return
			}
		}
		wait = false
		switch {
		case errors.Is(err, errNothingBuffered):
			if !c.ws.idle() {
				continue // the rest of the frame is yet to come: wait for it
			}
			if !l.waitReadable(c) {
				_ = c.Close()
			}
			return
		case err != nil:
			l.wsFailed(c, err)
			return
		}
	}
}

// errNothingBuffered is readBuffered's: nothing was there to read.
var errNothingBuffered = errors.New("nothing buffered")

// readBuffered reads what can be read without waiting. Its deadline in the
// past makes the socket read fail at once, so only what crypto/tls holds
// already (WSS) is returned; a TLS connection survives the timeout.
func (c *Conn) readBuffered(p []byte) (int, error) {
	if err := c.nc.SetReadDeadline(time.Unix(1, 0)); err != nil {
		return 0, err
	}
	n, err := c.nc.Read(p)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		err = errNothingBuffered
	}
	return n, err
}

// wsConnEvents answers a WebSocket's control frames and delivers its
// messages.
type wsConnEvents struct{ c *Conn }

func (e wsConnEvents) message(data []byte) {
	c, l := e.c, e.c.layer
	if isKeepalive(data) {
		// SIP.js pings with "\r\n\r\n" and expects "\r\n", as on TCP.
		l.stats.keepalives.Add(1)
		if bytes.Equal(data, []byte("\r\n\r\n")) {
			if err := c.write(crlf); err != nil {
				l.log.Debug("sip keepalive pong", "conn", c.String(), "err", err)
			}
		}
		return
	}
	l.deliver(Packet{Data: data, Src: c.remote, Local: c.local, Kind: c.kind, Conn: c, Listener: c.listener})
}

func (e wsConnEvents) control(op byte, payload []byte) error {
	c := e.c
	switch op {
	case wsPing:
		if err := c.writeFrame(wsPong, payload); err != nil && !errors.Is(err, ErrConnClosed) {
			return err
		}
	case wsClose:
		// Echo the status code and close: the server closes the TCP
		// connection first (RFC 6455 section 7.1.1).
		if len(payload) == 1 {
			return errWSProtocol
		}
		_ = c.writeFrame(wsClose, payload[:min(len(payload), 2)])
		return errWSClosed
	}
	return nil // a pong: the read already counted as traffic
}

// errWSClosed ends the reading of a WebSocket the client closed.
var errWSClosed = errors.New("websocket closed by the client")

// wsFailed closes the connection after a read or framing error, with the
// close frame the error calls for, and counts why.
func (l *Layer) wsFailed(c *Conn, err error) {
	switch {
	case errors.Is(err, errOversize):
		l.stats.oversize.Add(1)
		_ = c.writeFrame(wsClose, closePayload(wsCloseTooBig))
	case errors.Is(err, errWSProtocol):
		_ = c.writeFrame(wsClose, closePayload(wsCloseProtocol))
	case errors.Is(err, errIdle):
		l.stats.idleClosed.Add(1)
	}
	_ = c.Close()
	if errors.Is(err, errWSClosed) || errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
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
