package transport

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
)

// Send writes one message to t.
//
// With t.Conn set it writes on that connection, and fails if it is closed.
// Otherwise, by t.Kind: UDP is sent from the UDP listener named t.Listener,
// else the one bound to t.Local, else the first of the target's IP family.
// TCP and TLS reuse an open connection to t.Addr of that kind (one we dialed
// or one the peer opened; for TLS with t.Host or t.TLS set, only one we
// dialed with the same name and configuration) or dial one (from the IP
// of the stream listener named t.Listener when it is bound to one), bounded by
// HandshakeTimeout, verifying a TLS peer as clientConfig says; a dialed
// connection is read like an accepted one (its messages reach the Handler
// with Listener ""). WS and WSS fail: browsers cannot be dialed. A failed
// write closes the connection. data is written before Send returns and
// not kept: the caller may reuse it (the B2BUA renders into pooled
// buffers).
func (l *Layer) Send(t Target, data []byte) error {
	err := l.send(t, data)
	if err != nil {
		l.stats.sendErrors.Add(1)
		return err
	}
	l.stats.sent.Add(1)
	return nil
}

func (l *Layer) send(t Target, data []byte) error {
	if t.Conn != nil {
		return t.Conn.write(data)
	}
	if l.isClosed() {
		return fmt.Errorf("send to %s: %w", t, ErrClosed)
	}
	if !t.Addr.IsValid() {
		return fmt.Errorf("send to %s: no address", t)
	}
	t.Addr = netip.AddrPortFrom(t.Addr.Addr().Unmap(), t.Addr.Port())
	switch t.Kind {
	case UDP:
		return l.sendUDP(t, data)
	case TCP, TLS:
		return l.sendStream(t, data)
	case WS, WSS:
		return fmt.Errorf("send to %s: no open connection (WebSocket is never dialed)", t)
	default:
		return fmt.Errorf("send to %s: unknown transport", t)
	}
}

// sendStream writes on an open connection to t.Addr, or a new one. A reused
// connection may have died since it was last used: then it is closed by the
// failed write and the message goes on a fresh connection, once.
func (l *Layer) sendStream(t Target, data []byte) error {
	if c := l.lookupConn(keyOf(t)); c != nil {
		err := c.write(data)
		if err == nil {
			return nil
		}
		l.log.Debug("sip write on reused connection, redialing", "conn", c.String(), "err", err)
	}
	c, err := l.dialOnce(t)
	if err != nil {
		return err
	}
	return c.write(data)
}

// pendingDial lets concurrent Sends to one address share one dial.
type pendingDial struct {
	done chan struct{}
	c    *Conn
	err  error
}

// dialOnce returns an open connection to t, dialing it unless another Send
// is already doing so.
func (l *Layer) dialOnce(t Target) (*Conn, error) {
	key := keyOf(t)
	l.mu.Lock()
	if c := l.conns[key]; c != nil {
		l.mu.Unlock()
		return c, nil
	}
	if d := l.dialing[key]; d != nil {
		l.mu.Unlock()
		<-d.done
		return d.c, d.err
	}
	d := &pendingDial{done: make(chan struct{})}
	l.dialing[key] = d
	l.mu.Unlock()

	d.c, d.err = l.dial(t)
	l.mu.Lock()
	delete(l.dialing, key)
	l.mu.Unlock()
	close(d.done)
	return d.c, d.err
}

// dial opens a TCP or TLS connection to t and starts reading it.
func (l *Layer) dial(t Target) (*Conn, error) {
	ctx, cancel := context.WithTimeout(l.ctx, l.lim.HandshakeTimeout)
	defer cancel()
	var d net.Dialer
	if ip, ok := l.dialSource(t); ok {
		d.LocalAddr = &net.TCPAddr{IP: ip.AsSlice()}
	}
	raw, err := d.DialContext(ctx, "tcp", t.Addr.String())
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", t, err)
	}
	nc := raw
	if t.Kind == TLS {
		tc := tls.Client(raw, l.clientConfig(t))
		if err := l.handshake(tc); err != nil {
			l.stats.handshake.Add(1)
			_ = raw.Close()
			return nil, fmt.Errorf("%w with %s: %w", ErrTLSHandshake, t, err)
		}
		nc = tc
	}
	c := newConn(l, t.Kind, "", nc, raw)
	c.key = keyOf(t)
	if !l.addConn(c) {
		_ = raw.Close()
		return nil, fmt.Errorf("dial %s: %w", t, ErrClosed)
	}
	if !l.start(func() { l.readStream(c) }) {
		_ = c.Close()
		return nil, fmt.Errorf("dial %s: %w", t, ErrClosed)
	}
	return c, nil
}

// dialSource is the IP a connection dialed to t leaves from: that of the
// stream listener named t.Listener when it is bound to one of t's family
// (a cluster's internal listener: its peers and the firewalls between
// them see the node's internal address); false lets the kernel choose.
func (l *Layer) dialSource(t Target) (netip.Addr, bool) {
	if t.Listener == "" {
		return netip.Addr{}, false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, li := range l.listeners {
		if li.name != t.Listener || !li.kind.Reliable() {
			continue
		}
		ip := li.addr.Addr().Unmap()
		if ip.IsUnspecified() || ip.Is4() != t.Addr.Addr().Unmap().Is4() {
			return netip.Addr{}, false
		}
		return ip, true
	}
	return netip.Addr{}, false
}

// ErrTLSHandshake wraps the failure of the TLS handshake of a connection
// Send dialed: the peer's certificate did not verify (another name, an
// unknown CA, expired), the peer asked for a client certificate and none
// is configured, or the handshake failed or timed out.
var ErrTLSHandshake = errors.New("tls handshake")

// errNoClientCert refuses a handshake in which the peer asks for a client
// certificate that the configuration does not have.
var errNoClientCert = errors.New("the peer asks for a TLS client certificate and none is configured")

// clientConfig clones the client TLS config for one dial (t.TLS, else the
// layer's), naming the server for SNI and certificate verification: its
// own ServerName, else t.Host, else the target IP (verified against the
// certificate's IP addresses).
//
// A server's request for a client certificate is answered with the
// configured one whatever CAs the server names (the server decides), and
// with none configured the handshake is refused here: a TLS 1.3 server
// refuses a missing certificate only after the client's side of the
// handshake has ended, which would look like a peer that never answers.
func (l *Layer) clientConfig(t Target) *tls.Config {
	conf := t.TLS
	if conf == nil {
		l.mu.Lock()
		conf = l.clientTLS
		l.mu.Unlock()
	}
	if conf == nil {
		conf = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	conf = conf.Clone()
	if conf.ServerName == "" {
		conf.ServerName = t.Host
		if conf.ServerName == "" {
			conf.ServerName = t.Addr.Addr().String()
		}
	}
	if conf.GetClientCertificate == nil {
		certs := conf.Certificates
		conf.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			if len(certs) == 0 {
				return nil, errNoClientCert
			}
			return &certs[0], nil
		}
	}
	return conf
}

// sendUDP sends a datagram from the UDP listener named t.Listener, else the
// one bound to t.Local, else the first one of the target's IP family.
func (l *Layer) sendUDP(t Target, data []byte) error {
	li := l.udpFor(t)
	if li == nil {
		return fmt.Errorf("send to %s: no UDP listener for this address family", t)
	}
	if handled, err := li.raw.send(data, t.Addr); handled {
		if err != nil {
			return fmt.Errorf("send to %s: %w", t, err)
		}
		return nil
	}
	if _, err := li.udp.WriteToUDPAddrPort(data, t.Addr); err != nil {
		if errors.Is(err, net.ErrClosed) {
			err = ErrClosed
		}
		return fmt.Errorf("send to %s: %w", t, err)
	}
	return nil
}

// udpFor picks the UDP socket for t: the listener named t.Listener, else
// the one bound to t.Local (both as the peer addressed us, whatever its
// family), else the first that reaches the target's family; a listener on
// the IPv6 wildcard is dual-stack and reaches both.
func (l *Layer) udpFor(t Target) *listener {
	l.mu.Lock()
	defer l.mu.Unlock()
	ip := t.Addr.Addr()
	var byName, byLocal, first *listener
	for _, li := range l.listeners {
		if li.kind != UDP {
			continue
		}
		if byName == nil && t.Listener != "" && li.name == t.Listener {
			byName = li
		}
		if byLocal == nil && t.Local.IsValid() && li.addr == t.Local {
			byLocal = li
		}
		bound := li.addr.Addr()
		if first == nil && (bound.Is4() == ip.Is4() || (bound.Is6() && bound.IsUnspecified())) {
			first = li
		}
	}
	switch {
	case byName != nil:
		return byName
	case byLocal != nil:
		return byLocal
	}
	return first
}
