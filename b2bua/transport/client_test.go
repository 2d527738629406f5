package transport

import (
	"crypto/tls"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// testClient is a SIP peer of one transport, as a test drives it.
type testClient interface {
	send(t *testing.T, msg []byte)
	recv(t *testing.T, n int) []byte // one message of n bytes
	local() netip.AddrPort
	close()
}

// dialClient connects a client of that kind to addr; the client is closed
// at the end of the test.
func dialClient(t *testing.T, kind Kind, addr netip.AddrPort, clientTLS *tls.Config) testClient {
	t.Helper()
	var c testClient
	switch kind {
	case UDP:
		uc, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(addr))
		if err != nil {
			t.Fatal(err)
		}
		c = &udpClient{uc}
	case TCP:
		nc, err := net.DialTimeout("tcp", addr.String(), 3*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		c = &streamClient{nc}
	case TLS:
		d := &net.Dialer{Timeout: 3 * time.Second}
		nc, err := tls.DialWithDialer(d, "tcp", addr.String(), clientTLS)
		if err != nil {
			t.Fatal(err)
		}
		c = &streamClient{nc}
	case WS, WSS:
		ws := dialWS(t, kind, addr, clientTLS, []string{"sip"})
		c = &wsClient{ws}
	default:
		t.Fatalf("no client for %s", kind)
	}
	t.Cleanup(c.close)
	return c
}

// dialWS opens a WebSocket offering those subprotocols.
func dialWS(t *testing.T, kind Kind, addr netip.AddrPort, clientTLS *tls.Config, protos []string) *websocket.Conn {
	t.Helper()
	d := websocket.Dialer{Subprotocols: protos, TLSClientConfig: clientTLS, HandshakeTimeout: 3 * time.Second}
	scheme := "ws"
	if kind == WSS {
		scheme = "wss"
	}
	ws, resp, err := d.Dial(scheme+"://"+addr.String()+"/", nil)
	if err != nil {
		t.Fatalf("websocket dial: %v", err)
	}
	_ = resp.Body.Close()
	if ws.Subprotocol() != "sip" {
		t.Fatalf("subprotocol %q, want sip", ws.Subprotocol())
	}
	return ws
}

type udpClient struct{ c *net.UDPConn }

func (u *udpClient) send(t *testing.T, msg []byte) {
	t.Helper()
	if _, err := u.c.Write(msg); err != nil {
		t.Fatal(err)
	}
}

func (u *udpClient) recv(t *testing.T, n int) []byte {
	t.Helper()
	_ = u.c.SetReadDeadline(time.Now().Add(3 * time.Second))
	buf := make([]byte, 65536)
	m, err := u.c.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	return buf[:m]
}

func (u *udpClient) local() netip.AddrPort { return addrPortOf(u.c.LocalAddr()) }
func (u *udpClient) close()                { _ = u.c.Close() }

type streamClient struct{ c net.Conn }

func (s *streamClient) send(t *testing.T, msg []byte) {
	t.Helper()
	if _, err := s.c.Write(msg); err != nil {
		t.Fatal(err)
	}
}

func (s *streamClient) recv(t *testing.T, n int) []byte { t.Helper(); return readN(t, s.c, n) }
func (s *streamClient) local() netip.AddrPort           { return addrPortOf(s.c.LocalAddr()) }
func (s *streamClient) close()                          { _ = s.c.Close() }

type wsClient struct{ c *websocket.Conn }

func (w *wsClient) send(t *testing.T, msg []byte) {
	t.Helper()
	if err := w.c.WriteMessage(websocket.TextMessage, msg); err != nil {
		t.Fatal(err)
	}
}

func (w *wsClient) recv(t *testing.T, n int) []byte {
	t.Helper()
	_ = w.c.SetReadDeadline(time.Now().Add(3 * time.Second))
	_, data, err := w.c.ReadMessage()
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func (w *wsClient) local() netip.AddrPort { return addrPortOf(w.c.LocalAddr()) }
func (w *wsClient) close()                { _ = w.c.Close() }
