package transport

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"time"
)

// crlf is the RFC 5626 keepalive pong, also sent back on WebSockets.
var crlf = []byte("\r\n")

// listenStream binds a TCP or TLS listener.
func (l *Layer) listenStream(name string, kind Kind, addr string, tlsConf *tls.Config) (netip.AddrPort, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("listen %s on %s: %w", kind, addr, err)
	}
	li := &listener{name: name, kind: kind, addr: boundAddr(addr, ln.Addr()), tlsConf: tlsConf, ln: ln}
	if !l.addListener(li, func() { l.acceptLoop(li) }) {
		_ = ln.Close()
		return netip.AddrPort{}, fmt.Errorf("listen %s on %s: %w", kind, addr, ErrClosed)
	}
	return li.addr, nil
}

// acceptLoop only accepts: every handshake and read runs on the
// connection's own goroutine, so a silent client delays nobody.
func (l *Layer) acceptLoop(li *listener) {
	ln := limitListener{Listener: li.ln, l: l}
	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) || l.ctx.Err() != nil {
				return
			}
			// Out of file descriptors and the like: wait rather than spin.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			l.log.Warn("sip accept", "listener", li.name, "err", err, "retry_in", backoff)
			select {
			case <-l.ctx.Done():
				return
			case <-time.After(backoff):
			}
			continue
		}
		backoff = 0
		if !l.start(func() { l.serveAccepted(li, nc) }) {
			_ = nc.Close()
			return
		}
	}
}

// serveAccepted runs the TLS handshake if any, then reads the connection
// until it closes.
func (l *Layer) serveAccepted(li *listener, raw net.Conn) {
	nc := raw
	if li.kind == TLS {
		tc := tls.Server(raw, li.tlsConf)
		if err := l.handshake(tc); err != nil {
			l.stats.handshake.Add(1)
			_ = raw.Close()
			l.log.Debug("sip tls handshake", "listener", li.name, "remote", raw.RemoteAddr().String(), "err", err)
			return
		}
		nc = tc
	}
	c := newConn(l, li.kind, li.name, nc, raw)
	if !l.addConn(c) {
		_ = raw.Close()
		return
	}
	l.readStream(c)
}

// handshake runs a TLS handshake bounded by HandshakeTimeout and by Close.
func (l *Layer) handshake(tc *tls.Conn) error {
	ctx, cancel := context.WithTimeout(l.ctx, l.lim.HandshakeTimeout)
	defer cancel()
	// The deadline also covers a peer that stops reading our flight.
	deadline, _ := ctx.Deadline()
	if err := tc.SetDeadline(deadline); err != nil {
		return err
	}
	if err := tc.HandshakeContext(ctx); err != nil {
		return err
	}
	return tc.SetDeadline(time.Time{})
}

// readStream delivers the messages of a TCP or TLS connection until it
// fails or closes, then closes it.
func (l *Layer) readStream(c *Conn) {
	defer func() { _ = c.Close() }()
	f := newFramer(idleReader{c}, l.lim.MaxMessageSize, l.lim.MaxLineLength)
	for {
		msg, ping, err := f.next()
		if err != nil {
			l.streamEnded(c, err)
			return
		}
		if ping {
			l.stats.keepalives.Add(1)
			if err := c.write(crlf); err != nil {
				l.log.Debug("sip keepalive pong", "conn", c.String(), "err", err)
				return
			}
			continue
		}
		l.deliver(Packet{Data: msg, Src: c.remote, Local: c.local, Kind: c.kind, Conn: c, Listener: c.listener})
	}
}

// streamEnded counts why a stream's reader stopped.
func (l *Layer) streamEnded(c *Conn, err error) {
	switch {
	case errors.Is(err, errOversize):
		l.stats.oversize.Add(1)
	case errors.Is(err, errLineTooLong):
		l.stats.lineTooLong.Add(1)
	case errors.Is(err, errBadFraming):
		l.stats.badFraming.Add(1)
	case errors.Is(err, errIdle):
		l.stats.idleClosed.Add(1)
	case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed):
		return
	}
	l.log.Debug("sip connection read", "conn", c.String(), "err", err)
}
