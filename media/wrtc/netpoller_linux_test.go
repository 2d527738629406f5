package wrtc

import (
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"
)

// TestMuxLeavesNetpoller: once poll loops read a Mux's sockets through
// descriptors of their own, the Go sockets are closed (out of the
// runtime's netpoller, which each datagram received or sent would wake
// for nothing), and the port still works: datagrams from a routed source
// reach their transport on every socket of a widened group, and the Mux
// still sends from its port, its own datagrams and pion's alike.
func TestMuxLeavesNetpoller(t *testing.T) {
	m := newTestMuxAt(t, "127.0.9.1", false)
	noPublic := func(c *Config) { c.PublicIP = netip.Addr{} }
	a := newTestTransport(t, m, noPublic)
	_ = newTestTransport(t, m, noPublic) // a second transport widens the port
	m.sockMu.Lock()
	socks := append([]*muxSocket(nil), m.socks...)
	m.sockMu.Unlock()
	if len(socks) < minGroup {
		t.Fatalf("the Mux reads %d sockets, want at least %d", len(socks), minGroup)
	}
	for i, s := range socks {
		if s.ps == nil {
			t.Fatalf("socket %d is not read by a poll loop", i)
		}
		if err := s.conn.SetReadDeadline(time.Time{}); !errors.Is(err, net.ErrClosed) {
			t.Errorf("socket %d: the Go socket is open (SetReadDeadline: %v), want it closed", i, err)
		}
	}

	// Many sources, so that the kernel's hash reaches every socket of the
	// group: each is still read.
	const sources = 32
	before, unknown := m.Counters().Direct, a.Counters().Unknown
	for range sources {
		c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP("127.0.9.2")})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		m.route(c.LocalAddr().(*net.UDPAddr).AddrPort(), a)
		if _, err := c.WriteToUDPAddrPort([]byte{200, 1, 2, 3}, m.Addr()); err != nil {
			t.Fatal(err)
		}
	}
	until(t, "every datagram handed to its transport", func() bool {
		return m.Counters().Direct-before == sources && a.Counters().Unknown-unknown == sources
	})

	peer, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP("127.0.9.3")})
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	to := peer.LocalAddr().(*net.UDPAddr)
	if err := m.tx.send([]byte("media"), to.AddrPort()); err != nil {
		t.Fatalf("send from the Mux: %v", err)
	}
	if _, err := m.feed.WriteTo([]byte("stun"), to); err != nil {
		t.Fatalf("pion's send from the Mux: %v", err)
	}
	_ = peer.SetReadDeadline(time.Now().Add(waitLong))
	buf := make([]byte, 64)
	for _, want := range []string{"media", "stun"} {
		n, from, err := peer.ReadFromUDPAddrPort(buf)
		if err != nil {
			t.Fatalf("read what the Mux sent: %v", err)
		}
		if string(buf[:n]) != want || from != m.Addr() {
			t.Fatalf("got %q from %s, want %q from the Mux's %s", buf[:n], from, want, m.Addr())
		}
	}
}
