package transport

import (
	"bufio"
	"crypto/tls"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"
)

const ipv6Options = "OPTIONS sip:sbc@[::1] SIP/2.0\r\nVia: SIP/2.0/%s [::1]:5999;branch=z9hG4bK6\r\nContent-Length: 0\r\n\r\n"

// TestIPv6Listeners: UDP, TCP and TLS listeners on [::1] take a message
// from an IPv6 peer with its address as the source, and the answer sent to
// that source reaches the peer.
func TestIPv6Listeners(t *testing.T) {
	checkRoutines(t)
	server, client := testTLS(t)
	for _, kind := range []Kind{UDP, TCP, TLS} {
		t.Run(kind.String(), func(t *testing.T) {
			l, rec := newTestLayer(t, Limits{})
			addr, err := l.Listen("v6", kind, "[::1]:0", ListenOptions{TLS: server})
			if err != nil {
				t.Fatalf("listen: %v", err)
			}
			if addr.Addr() != netip.IPv6Loopback() {
				t.Fatalf("listener bound %s, want [::1]", addr)
			}
			var c net.Conn
			switch kind {
			case TLS: // the certificate names ::1: verified as an IP SAN
				c, err = tls.Dial("tcp6", addr.String(), client)
			default:
				c, err = net.Dial(strings.ToLower(kind.String())+"6", addr.String())
			}
			if err != nil {
				t.Fatalf("dial: %v", err)
			}
			defer c.Close()
			msg := strings.Replace(ipv6Options, "%s", kind.String(), 1)
			if _, err := c.Write([]byte(msg)); err != nil {
				t.Fatalf("write: %v", err)
			}
			p := rec.next(t)
			want := netip.MustParseAddrPort(c.LocalAddr().String())
			if p.Src != want || p.Local != addr || p.Listener != "v6" {
				t.Fatalf("packet from %s on %s (%q), want from %s on %s", p.Src, p.Local, p.Listener, want, addr)
			}
			reply := "SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n"
			if err := l.Send(Target{Kind: kind, Addr: p.Src, Conn: p.Conn, Local: p.Local}, []byte(reply)); err != nil {
				t.Fatalf("send to %s: %v", p.Src, err)
			}
			_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
			line, err := bufio.NewReader(c).ReadString('\n')
			if err != nil || line != "SIP/2.0 200 OK\r\n" {
				t.Fatalf("peer read %q, %v", line, err)
			}
		})
	}
}

// TestLocalAddrFor: the listener named in Via and Contact toward a peer is
// one of the peer's family, else the dual-stack one, else the first.
func TestLocalAddrFor(t *testing.T) {
	v4, v6 := netip.MustParseAddr("192.0.2.7"), netip.MustParseAddr("2001:db8::7")
	tests := []struct {
		name      string
		listeners []string // UDP listener addresses, in order
		dst       netip.Addr
		want      string
	}{
		{"v6 peer takes the v6 listener", []string{"127.0.0.1:0", "[::1]:0"}, v6, "::1"},
		{"v4 peer takes the v4 listener", []string{"[::1]:0", "127.0.0.1:0"}, v4, "127.0.0.1"},
		{"mapped v4 peer takes the v4 listener", []string{"[::1]:0", "127.0.0.1:0"}, netip.MustParseAddr("::ffff:192.0.2.7"), "127.0.0.1"},
		{"no peer takes the first", []string{"[::1]:0", "127.0.0.1:0"}, netip.Addr{}, "::1"},
		{"v4 peer, dual-stack before v6", []string{"[::1]:0", "[::]:0"}, v4, "::"},
		{"v4 wildcard serves v4", []string{"[::1]:0", "0.0.0.0:0"}, v4, "0.0.0.0"},
		{"no listener of the family takes the first", []string{"127.0.0.1:0"}, v6, "127.0.0.1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l, _ := newTestLayer(t, Limits{})
			for _, a := range tc.listeners {
				if _, err := l.Listen(a, UDP, a, ListenOptions{}); err != nil {
					t.Fatalf("listen %s: %v", a, err)
				}
			}
			got, ok := l.LocalAddrFor(UDP, tc.dst)
			if !ok || got.Addr().String() != tc.want {
				t.Fatalf("LocalAddrFor(%s) = %s, %v; want %s", tc.dst, got, ok, tc.want)
			}
			if _, ok := l.LocalAddrFor(TCP, tc.dst); ok {
				t.Fatal("LocalAddrFor(TCP) found a listener where there is none")
			}
		})
	}
}
