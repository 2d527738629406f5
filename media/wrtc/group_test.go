package wrtc

import (
	"net"
	"net/netip"
	"testing"
	"time"
)

// TestSharedPortGroup: a Mux that serves a second transport reads its port
// with a group of sockets (SO_REUSEPORT) bound to the one address; the
// kernel spreads many sources over all of them, each socket's datagrams
// are routed to the transport their source is routed to, and datagrams to
// a peer leave from the shared port.
func TestSharedPortGroup(t *testing.T) {
	for _, ip := range []string{"127.0.0.1", "::1"} {
		t.Run(ip, func(t *testing.T) { testSharedPortGroup(t, ip) })
	}
}

func testSharedPortGroup(t *testing.T, ip string) {
	m := newTestMuxAt(t, ip, false)
	noPublic := func(c *Config) { c.PublicIP = netip.Addr{} }
	a := newTestTransport(t, m, noPublic)
	if n := m.sockets(); n != 1 {
		t.Fatalf("a Mux serving one transport reads %d sockets, want 1", n)
	}
	b := newTestTransport(t, m, noPublic)
	if n := m.sockets(); n < minGroup {
		t.Fatalf("a Mux serving two transports reads %d sockets, want at least %d", n, minGroup)
	}
	m.sockMu.Lock()
	socks := append([]*muxSocket(nil), m.socks...)
	m.sockMu.Unlock()
	for i, s := range socks {
		if p := s.conn.LocalAddr().(*net.UDPAddr).AddrPort(); p != m.Addr() {
			t.Fatalf("socket %d is bound to %s, not the Mux's %s", i, p, m.Addr())
		}
	}

	// 64 sources, half routed to each transport: the chance that the
	// kernel's hash puts them all on one socket is nil for practical purposes.
	const sources, each = 64, 5
	conns := make([]*net.UDPConn, sources)
	for i := range conns {
		c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(ip)})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns[i] = c
		to := a
		if i%2 == 1 {
			to = b
		}
		m.route(c.LocalAddr().(*net.UDPAddr).AddrPort(), to)
	}
	before := m.Counters().Direct
	ua, ub := a.Counters().Unknown, b.Counters().Unknown
	pkt := []byte{200, 1, 2, 3} // neither STUN nor SRTP: the demux counts it Unknown
	for range each {
		for _, c := range conns {
			if _, err := c.WriteToUDPAddrPort(pkt, m.Addr()); err != nil {
				t.Fatal(err)
			}
		}
	}
	until(t, "every datagram routed", func() bool { return m.Counters().Direct-before == sources*each })
	if ga, gb := a.Counters().Unknown-ua, b.Counters().Unknown-ub; ga != sources/2*each || gb != sources/2*each {
		t.Fatalf("transports got %d and %d datagrams, want %d each", ga, gb, sources/2*each)
	}
	for i, s := range socks {
		if s.got.Load() == 0 {
			t.Errorf("socket %d of %d read nothing of %d sources", i, len(socks), sources)
		}
	}

	peer, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(ip)})
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	if err := m.tx.send([]byte("reply"), peer.LocalAddr().(*net.UDPAddr).AddrPort()); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	_ = peer.SetReadDeadline(time.Now().Add(waitLong))
	n, from, err := peer.ReadFromUDPAddrPort(buf)
	if err != nil {
		t.Fatal(err)
	}
	if from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port()); from != m.Addr() || string(buf[:n]) != "reply" {
		t.Fatalf("got %q from %s, want \"reply\" from the shared port %s", buf[:n], from, m.Addr())
	}
}

// BenchmarkMuxSend: one 200-byte datagram from the Mux's socket to a
// loopback peer, through Go's UDP write and through the Mux's raw sendto
// (the kernel's loopback delivery to the peer included in both).
func BenchmarkMuxSend(b *testing.B) {
	m := newTestMux(b, false)
	peer, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	defer peer.Close()
	go func() { // drain, so the peer's buffer never drops
		buf := make([]byte, 256)
		for {
			if _, err := peer.Read(buf); err != nil {
				return
			}
		}
	}()
	to := peer.LocalAddr().(*net.UDPAddr).AddrPort()
	pkt := make([]byte, 200)
	b.Run("go", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := m.conn.WriteToUDPAddrPort(pkt, to); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("raw", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := m.tx.send(pkt, to); err != nil {
				b.Fatal(err)
			}
		}
	})
}
