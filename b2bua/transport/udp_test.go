package transport

import (
	"net"
	"net/netip"
	"testing"
	"time"
)

// TestUDPReplySource checks which socket a UDP Send leaves from.
func TestUDPReplySource(t *testing.T) {
	checkRoutines(t)
	l, _ := newTestLayer(t, Limits{})
	a := listen(t, l, "a", UDP, nil)
	b := listen(t, l, "b", UDP, nil)
	peer, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	to := addrPortOf(peer.LocalAddr())
	tests := []struct {
		name string
		t    Target
		from netip.AddrPort
	}{
		{"first of the family", Target{Kind: UDP, Addr: to}, a},
		{"by listener name", Target{Kind: UDP, Addr: to, Listener: "b"}, b},
		{"by local address", Target{Kind: UDP, Addr: to, Local: b}, b},
		{"name wins over local", Target{Kind: UDP, Addr: to, Listener: "a", Local: b}, a},
		{"unknown name falls back", Target{Kind: UDP, Addr: to, Listener: "zz"}, a},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := l.Send(tc.t, []byte("SIP/2.0 200 OK\r\n\r\n")); err != nil {
				t.Fatal(err)
			}
			_ = peer.SetReadDeadline(time.Now().Add(3 * time.Second))
			buf := make([]byte, 100)
			_, from, err := peer.ReadFromUDPAddrPort(buf)
			if err != nil {
				t.Fatal(err)
			}
			if from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port()); from != tc.from {
				t.Fatalf("sent from %v, want %v", from, tc.from)
			}
		})
	}
}

func TestBoundAddr(t *testing.T) {
	tests := []struct {
		name      string
		requested string
		socket    net.Addr
		want      string
	}{
		{"ipv4 wildcard stays ipv4", "0.0.0.0:5060", &net.TCPAddr{IP: net.IPv6unspecified, Port: 5060}, "0.0.0.0:5060"},
		{"empty host is dual-stack", ":5060", &net.TCPAddr{IP: net.IPv6unspecified, Port: 5060}, "[::]:5060"},
		{"ipv6 wildcard", "[::]:0", &net.UDPAddr{IP: net.IPv6unspecified, Port: 7}, "[::]:7"},
		{"mapped address unmapped", "127.0.0.1:0", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9}, "127.0.0.1:9"},
		{"nil socket address", "127.0.0.1:0", nil, "invalid AddrPort"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := boundAddr(tc.requested, tc.socket).String(); got != tc.want {
				t.Fatalf("got %s, want %s", got, tc.want)
			}
		})
	}
}
