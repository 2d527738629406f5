package transport

import (
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"
)

// TestRawSendLikeUDPConn holds the raw sender (rawsend_linux.go) to what
// the listener's net.UDPConn did: the same bytes arrive from the
// listener's own address, a destination of the other family is left to
// the UDPConn (which reports it as before), and a send after Close is
// ErrClosed.
func TestRawSendLikeUDPConn(t *testing.T) {
	peer4 := listenPeer(t, "127.0.8.2:0")
	type rawCase struct {
		name    string
		listen  string
		peer    udpPeer        // receives what is sent; zero: nothing arrives
		to      netip.AddrPort // where it is sent
		wantRaw bool           // the raw sender takes it
	}
	mapped := netip.AddrPortFrom(netip.AddrFrom16(peer4.addr.Addr().As16()), peer4.addr.Port())
	tests := []rawCase{
		{"ipv4", "127.0.8.1:0", peer4, peer4.addr, true},
		{"ipv4 to ipv4-in-ipv6", "127.0.8.1:0", peer4, mapped, true},
		{"ipv4 to ipv6: the UDPConn's error", "127.0.8.1:0", udpPeer{}, netip.MustParseAddrPort("[::1]:9"), false},
	}
	if p6, ok := tryPeer("[::1]:0"); ok {
		t.Cleanup(func() { _ = p6.conn.Close() })
		tests = append(tests, rawCase{"ipv6", "[::1]:0", p6, p6.addr, true})
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l, _ := newTestLayer(t, Limits{})
			local, err := l.Listen("udp", UDP, tc.listen, ListenOptions{})
			if err != nil {
				t.Fatal(err)
			}
			dst := Target{Kind: UDP, Addr: tc.to, Listener: "udp"}
			li := l.udpFor(dst)
			if li == nil || li.raw == nil {
				t.Fatal("no raw sender on the listener")
			}
			msg := []byte(sipMsg("OPTIONS", "Content-Length", ""))
			if handled, err := li.raw.send(msg, tc.to); handled != tc.wantRaw {
				t.Fatalf("raw sender took it: %v, want %v (err %v)", handled, tc.wantRaw, err)
			}
			err = l.Send(dst, msg)
			if tc.peer.conn == nil {
				want := fromUDPConn(t, tc.listen, msg, tc.to)
				var got, exp *net.OpError
				if !errors.As(err, &got) || !errors.As(want, &exp) || got.Err.Error() != exp.Err.Error() {
					t.Fatalf("Send: %v, want the UDPConn's %v", err, want)
				}
				return
			}
			if err != nil {
				t.Fatalf("Send: %v", err)
			}
			for range 2 { // the raw send above, then Send
				data, from := tc.peer.read(t)
				if string(data) != string(msg) {
					t.Fatalf("received %q, want %q", data, msg)
				}
				if from != local {
					t.Fatalf("received from %s, want the listener's %s", from, local)
				}
			}
			_ = l.Close()
			if err := l.Send(dst, msg); err == nil {
				t.Fatal("send after Close succeeded")
			}
			if h, err := li.raw.send(msg, tc.to); !h || !errors.Is(err, ErrClosed) {
				t.Fatalf("raw send after close: handled %v, err %v; want ErrClosed", h, err)
			}
		})
	}
}

// fromUDPConn is the error a plain UDPConn bound like the listener gives
// for sending msg to to.
func fromUDPConn(t *testing.T, listen string, msg []byte, to netip.AddrPort) error {
	t.Helper()
	p := listenPeer(t, listen)
	_, err := p.conn.WriteToUDPAddrPort(msg, to)
	if err == nil {
		t.Fatalf("a UDPConn on %s sent to %s", listen, to)
	}
	return err
}

// TestRawSendAllocs: a SIP datagram sent from a UDP listener allocates
// nothing on the way to the kernel.
func TestRawSendAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	peer := listenPeer(t, "127.0.8.4:0")
	l, _ := newTestLayer(t, Limits{})
	if _, err := l.Listen("udp", UDP, "127.0.8.3:0", ListenOptions{}); err != nil {
		t.Fatal(err)
	}
	li := l.udpFor(Target{Kind: UDP, Addr: peer.addr, Listener: "udp"})
	msg := []byte(sipMsg("OPTIONS", "Content-Length", ""))
	if n := testing.AllocsPerRun(100, func() {
		if h, err := li.raw.send(msg, peer.addr); !h || err != nil {
			t.Fatalf("raw send: %v %v", h, err)
		}
	}); n != 0 {
		t.Fatalf("%v allocations per send, want 0", n)
	}
}

// udpPeer is a plain socket the tests send to.
type udpPeer struct {
	conn *net.UDPConn
	addr netip.AddrPort
}

func (p udpPeer) read(t *testing.T) ([]byte, netip.AddrPort) {
	t.Helper()
	buf := make([]byte, 4096)
	_ = p.conn.SetReadDeadline(time.Now().Add(3 * time.Second))
	n, from, err := p.conn.ReadFromUDPAddrPort(buf)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return buf[:n], netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
}

func tryPeer(addr string) (udpPeer, bool) {
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort(addr)))
	if err != nil {
		return udpPeer{}, false
	}
	return udpPeer{conn: c, addr: c.LocalAddr().(*net.UDPAddr).AddrPort()}, true
}

func listenPeer(t *testing.T, addr string) udpPeer {
	t.Helper()
	p, ok := tryPeer(addr)
	if !ok {
		t.Fatalf("listen %s", addr)
	}
	t.Cleanup(func() { _ = p.conn.Close() })
	return p
}
