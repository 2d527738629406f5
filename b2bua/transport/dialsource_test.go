package transport

import (
	"net"
	"net/netip"
	"testing"
)

// TestDialLeavesFromNamedListener: a connection dialed for a target that
// names a stream listener bound to an IP leaves from that IP (a cluster
// node's internal address), not from the one the kernel's route picks
// (127.0.0.1 on loopback); one that names no listener, or a listener on
// the wildcard, leaves from where the kernel says.
func TestDialLeavesFromNamedListener(t *testing.T) {
	l, _ := newTestLayer(t, Limits{})
	if _, err := l.Listen("internal", TCP, "127.0.8.41:0", ListenOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Listen("any", TCP, "0.0.0.0:0", ListenOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		listener, want string
	}{
		{"internal", "127.0.8.41"},
		{"", "127.0.0.1"},
		{"any", "127.0.0.1"},
	} {
		ln, err := net.Listen("tcp", "127.0.8.42:0")
		if err != nil {
			t.Fatal(err)
		}
		dst := netip.MustParseAddrPort(ln.Addr().String())
		if err := l.Send(Target{Kind: TCP, Addr: dst, Listener: tc.listener}, []byte("OPTIONS sip:x SIP/2.0\r\n\r\n")); err != nil {
			t.Fatalf("send naming %q: %v", tc.listener, err)
		}
		c, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		got := netip.MustParseAddrPort(c.RemoteAddr().String()).Addr().String()
		c.Close()
		ln.Close()
		if got != tc.want {
			t.Errorf("a connection dialed naming listener %q came from %s, want %s", tc.listener, got, tc.want)
		}
	}
}
