package transport

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// Conn is an open stream connection (TCP, TLS, WS or WSS), accepted by a
// listener or dialed by Send. Its methods are safe for concurrent use. Writes
// are serialized and bounded by Limits.WriteTimeout; a failed write closes
// the connection.
type Conn struct {
	layer    *Layer
	kind     Kind
	listener string // "" when we dialed it
	remote   netip.AddrPort
	local    netip.AddrPort
	key      connKey // set before addConn; fixed afterwards

	nc  net.Conn  // what we read and write (a *tls.Conn for TLS and WSS)
	ws  *wsReader // WS, WSS: the frames being read; used by one reader at a time
	raw net.Conn  // the TCP connection underneath; closing it unblocks everything

	wmu        sync.Mutex   // one writer at a time
	lastActive atomic.Int64 // unix nanoseconds of the last read or write
	closed     atomic.Bool
	done       chan struct{}
	pollID     uint64 // WS, WSS on Linux: key in the readiness watcher; 0 until first parked
}

// newConn wraps a connection (nc), a TCP or TLS one or one upgraded to a
// WebSocket (the caller then sets ws). raw is the TCP connection under it.
func newConn(l *Layer, kind Kind, listener string, nc net.Conn, raw net.Conn) *Conn {
	c := &Conn{
		layer:    l,
		kind:     kind,
		listener: listener,
		remote:   addrPortOf(raw.RemoteAddr()),
		local:    addrPortOf(raw.LocalAddr()),
		nc:       nc,
		raw:      raw,
		done:     make(chan struct{}),
	}
	c.key = connKey{kind: kind, addr: c.remote}
	c.touch()
	return c
}

// Kind returns the connection's transport.
func (c *Conn) Kind() Kind { return c.kind }

// RemoteAddr returns the peer's address, IPv4 unmapped.
func (c *Conn) RemoteAddr() netip.AddrPort { return c.remote }

// LocalAddr returns our end's address, IPv4 unmapped.
func (c *Conn) LocalAddr() netip.AddrPort { return c.local }

// Listener returns the name of the listener that accepted the connection,
// or "" if we dialed it.
func (c *Conn) Listener() string { return c.listener }

// Done returns a channel closed when the connection is closed.
func (c *Conn) Done() <-chan struct{} { return c.done }

// String is for logs.
func (c *Conn) String() string { return c.kind.String() + ":" + c.remote.String() }

// Close closes the connection, removes it from the layer's table and then
// runs the OnConnClose observers. Only the first call does anything; it
// returns the error from closing the socket.
func (c *Conn) Close() error {
	if !c.closed.CompareAndSwap(false, true) {
		return nil
	}
	close(c.done)
	// Close the TCP connection, not the TLS or WebSocket one above it: their
	// Close may write (close_notify) and wait behind a stuck writer.
	err := c.raw.Close()
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	c.layer.unwatch(c)
	if fs := c.layer.removeConn(c); fs != nil {
		c.layer.log.Debug("sip connection closed", "conn", c.String())
		for _, f := range fs {
			f(c)
		}
	}
	return err
}

// touch records traffic: reads and writes both keep a connection from
// idling out.
func (c *Conn) touch() { c.lastActive.Store(time.Now().UnixNano()) }

// write writes one message (or a keepalive) with a deadline. On failure the
// connection is closed; if it was closed already the error wraps
// ErrConnClosed.
func (c *Conn) write(data []byte) error {
	err := c.writeLocked(data)
	if err == nil {
		c.touch()
		return nil
	}
	_ = c.Close()
	return fmt.Errorf("write to %s: %w", c, err)
}

func (c *Conn) writeLocked(data []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closed.Load() {
		return ErrConnClosed
	}
	if c.ws != nil {
		// RFC 7118 allows text or binary frames; browsers want text, so
		// binary is only for a body that is not UTF-8.
		op := byte(wsText)
		if !utf8.Valid(data) {
			op = wsBinary
		}
		return c.writeFrameLocked(op, data)
	}
	if err := c.nc.SetWriteDeadline(time.Now().Add(c.layer.lim.WriteTimeout)); err != nil {
		return err
	}
	_, err := c.nc.Write(data)
	return err
}

// writeFrame writes one WebSocket frame (a control frame, or a whole
// message) with a deadline. Unlike write it leaves the connection open on
// failure: its callers close it.
func (c *Conn) writeFrame(op byte, payload []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closed.Load() {
		return ErrConnClosed
	}
	return c.writeFrameLocked(op, payload)
}

func (c *Conn) writeFrameLocked(op byte, payload []byte) error {
	if err := c.nc.SetWriteDeadline(time.Now().Add(c.layer.lim.WriteTimeout)); err != nil {
		return err
	}
	bp := wsFrame(op, payload)
	defer putFrame(bp)
	_, err := c.nc.Write(*bp)
	return err
}

// idleReader reads a TCP or TLS connection and fails with errIdle once
// nothing was read or written for IdleTimeout. The deadline is recomputed
// from the last traffic in either direction, so writes keep the connection
// alive too.
type idleReader struct{ c *Conn }

var errIdle = errors.New("idle timeout")

func (r idleReader) Read(p []byte) (int, error) {
	idle := r.c.layer.lim.IdleTimeout
	for {
		deadline := time.Unix(0, r.c.lastActive.Load()).Add(idle)
		if !time.Now().Before(deadline) {
			return 0, errIdle
		}
		if err := r.c.nc.SetReadDeadline(deadline); err != nil {
			return 0, err
		}
		n, err := r.c.nc.Read(p)
		if n > 0 {
			r.c.touch()
		}
		var ne net.Error
		if n == 0 && errors.As(err, &ne) && ne.Timeout() {
			// A write may have moved lastActive; the loop decides. A TLS
			// connection survives a read timeout (it is a temporary error).
			continue
		}
		return n, err
	}
}

// connKey indexes open connections for Send reuse. A TLS connection we
// dialed also carries the server name and client configuration it was
// verified with, so that it is reused only by targets that would verify
// the same peer the same way: never by a target naming another host or
// trusting other CAs, and a connection a peer opened (verified by nobody)
// never serves a target with a name.
type connKey struct {
	kind Kind
	addr netip.AddrPort
	host string
	conf *tls.Config
}

// keyOf is the key under which a Send to t looks for a connection and
// files the one it dials.
func keyOf(t Target) connKey {
	k := connKey{kind: t.Kind, addr: t.Addr}
	if t.Kind == TLS {
		k.host, k.conf = t.Host, t.TLS
	}
	return k
}

// addConn puts c in the connection table; false once the layer is closed
// (the caller then closes c.raw itself).
func (l *Layer) addConn(c *Conn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return false
	}
	l.all[c] = struct{}{}
	l.conns[c.key] = c
	l.stats.open[c.kind].Add(1)
	l.log.Debug("sip connection open", "conn", c.String(), "listener", c.listener)
	return true
}

// removeConn takes c out of the table. It returns the OnConnClose observers
// to run, or nil if c was not in the table.
func (l *Layer) removeConn(c *Conn) []func(*Conn) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.all[c]; !ok {
		return nil
	}
	delete(l.all, c)
	if l.conns[c.key] == c {
		delete(l.conns, c.key)
	}
	l.stats.open[c.kind].Add(-1)
	return append([]func(*Conn){}, l.onClose...)
}

// lookupConn returns the open connection filed under key, or nil.
func (l *Layer) lookupConn(key connKey) *Conn {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.conns[key]
}

// acquireIP counts one more accepted connection from ip; false if that would
// exceed MaxConnsPerIP.
func (l *Layer) acquireIP(ip netip.Addr) bool {
	if l.lim.MaxConnsPerIP <= 0 {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.perIP[ip] >= l.lim.MaxConnsPerIP {
		return false
	}
	l.perIP[ip]++
	return true
}

func (l *Layer) releaseIP(ip netip.Addr) {
	if l.lim.MaxConnsPerIP <= 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.perIP[ip]--; l.perIP[ip] <= 0 {
		delete(l.perIP, ip)
	}
}

// limitListener enforces MaxConnsPerIP at accept: an excess connection is
// closed at once and counted, and Accept goes on to the next one.
type limitListener struct {
	net.Listener
	l *Layer
}

func (ll limitListener) Accept() (net.Conn, error) {
	for {
		nc, err := ll.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ip := addrPortOf(nc.RemoteAddr()).Addr()
		if !ll.l.acquireIP(ip) {
			// Count before closing, so whoever sees the close sees the count.
			ll.l.stats.connLimit.Add(1)
			_ = nc.Close()
			continue
		}
		return &countedConn{Conn: nc, release: func() { ll.l.releaseIP(ip) }}, nil
	}
}

// countedConn gives its per-IP slot back when closed.
type countedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *countedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

// tcpUnder returns the TCP connection under a TLS connection, or nc itself.
func tcpUnder(nc net.Conn) net.Conn {
	if tc, ok := nc.(*tls.Conn); ok {
		return tc.NetConn()
	}
	return nc
}

// Ping sends a keepalive the peer need not answer at the SIP layer: a
// WebSocket ping frame on WS/WSS, a CRLF CRLF (RFC 5626 section 4.4.1) on
// TCP/TLS. It keeps NATs and proxies on the path from timing the
// connection out. On failure the connection is closed.
func (c *Conn) Ping() error {
	err := func() error {
		c.wmu.Lock()
		defer c.wmu.Unlock()
		if c.closed.Load() {
			return ErrConnClosed
		}
		if c.ws != nil {
			return c.writeFrameLocked(wsPing, nil)
		}
		if err := c.nc.SetWriteDeadline(time.Now().Add(c.layer.lim.WriteTimeout)); err != nil {
			return err
		}
		_, err := c.nc.Write([]byte("\r\n\r\n"))
		return err
	}()
	if err != nil {
		_ = c.Close()
		return fmt.Errorf("ping %s: %w", c, err)
	}
	return nil
}
