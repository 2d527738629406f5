package media

import (
	"net/netip"
	"strings"
	"testing"
)

var (
	loopback6 = netip.IPv6Loopback()
	public6   = netip.MustParseAddr("2001:db8::5")
)

// dualStack sets a manager's addresses to 127.0.0.1 and ::1.
func dualStack(c *Config) { c.Addrs = []Addr{{Bind: loopback}, {Bind: loopback6}} }

// connLine returns the c= and o= address of an SDP the session produced,
// as "IN IP4 127.0.0.1".
func connLine(t testing.TB, body []byte) (c, o string) {
	t.Helper()
	sd := parse(t, body)
	if sd.ConnectionInformation == nil || sd.ConnectionInformation.Address == nil {
		t.Fatalf("no session c= line in\n%s", body)
	}
	ci := sd.ConnectionInformation
	return ci.NetworkType + " " + ci.AddressType + " " + ci.Address.Address,
		sd.Origin.NetworkType + " " + sd.Origin.AddressType + " " + sd.Origin.UnicastAddress
}

// TestFamilyPerSide: each side gets SDP, and media sockets, in the family
// its own SDP (or, before it sent one, its signaling) uses; RTP flows
// between an IPv4 and an IPv6 side both ways.
func TestFamilyPerSide(t *testing.T) {
	tests := []struct {
		name         string
		edit         func(*Config)
		ipA, ipB     string     // the peers' addresses (their SDP's c=)
		sigA, sigB   netip.Addr // where each side's SIP comes from
		wantA, wantB string     // the c= (and o=) line sent to each side
	}{
		{"v4 caller to v6 callee", dualStack, "127.0.0.1", "::1", loopback, loopback6, "IN IP4 127.0.0.1", "IN IP6 ::1"},
		{"v6 caller to v4 callee", dualStack, "::1", "127.0.0.1", loopback6, loopback, "IN IP6 ::1", "IN IP4 127.0.0.1"},
		{"v6 both", dualStack, "::1", "::1", loopback6, loopback6, "IN IP6 ::1", "IN IP6 ::1"},
		{"v6 only sbc", func(c *Config) { c.Addrs = []Addr{{Bind: loopback6}} }, "::1", "::1", loopback6, loopback6, "IN IP6 ::1", "IN IP6 ::1"},
		// The caller's SDP says where it takes media: it wins over its SIP.
		{"sdp family wins over signaling", dualStack, "::1", "127.0.0.1", loopback, loopback, "IN IP6 ::1", "IN IP4 127.0.0.1"},
		// Nothing of the callee's family: the SBC still offers its own.
		{"v4 only sbc, v6 callee signaling", nil, "127.0.0.1", "127.0.0.1", loopback, loopback6, "IN IP4 127.0.0.1", "IN IP4 127.0.0.1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := newTestManager(t, 8, netip.Addr{}, tc.edit)
			s := m.NewSession("call-family")
			t.Cleanup(s.Close)
			a, b := newPeerAt(t, tc.ipA, true), newPeerAt(t, tc.ipB, true)
			s.Configure(SideA, SideOptions{Signaling: tc.sigA})
			s.Configure(SideB, SideOptions{Signaling: tc.sigB})
			toB, err := s.Offer(SideA, a.sdp())
			if err != nil {
				t.Fatalf("Offer: %v", err)
			}
			toA, err := s.Answer(SideB, b.sdp())
			if err != nil {
				t.Fatalf("Answer: %v", err)
			}
			for _, got := range []struct {
				side, want string
				body       []byte
			}{{"A", tc.wantA, toA}, {"B", tc.wantB, toB}} {
				c, o := connLine(t, got.body)
				if c != got.want || o != got.want {
					t.Fatalf("SDP to %s has c=%q o=...%q, want %q\n%s", got.side, c, o, got.want, got.body)
				}
			}
			sbcA := netip.AddrPortFrom(sdpAddr(t, tc.wantA), uint16(mPort(t, toA, 0)))
			sbcB := netip.AddrPortFrom(sdpAddr(t, tc.wantB), uint16(mPort(t, toB, 0)))
			for i := range 3 {
				pkt := rtpPacket(uint16(i))
				sendTo(t, a.rtp, pkt, sbcA)
				if got, from := recv(t, b.rtp); !sameRTPPayload(got, pkt) || from != sbcB {
					t.Fatalf("A→B packet %d: %d bytes from %s, want from %s", i, len(got), from, sbcB)
				}
				sendTo(t, b.rtp, pkt, sbcB)
				if got, from := recv(t, a.rtp); !sameRTPPayload(got, pkt) || from != sbcA {
					t.Fatalf("B→A packet %d: %d bytes from %s, want from %s", i, len(got), from, sbcA)
				}
			}
		})
	}
}

// TestFamilyPublicIPs: with a public address of each family, each side's
// SDP names the public address of its family, never the bound one.
func TestFamilyPublicIPs(t *testing.T) {
	m := newTestManager(t, 4, netip.Addr{}, func(c *Config) {
		c.Addrs = []Addr{{Bind: loopback, Public: public}, {Bind: loopback6, Public: public6}}
	})
	s := m.NewSession("call-public")
	t.Cleanup(s.Close)
	s.Configure(SideB, SideOptions{Signaling: loopback6})
	a, b := newPeer(t, true), newPeerAt(t, "::1", true)
	toB, err := s.Offer(SideA, a.sdp())
	if err != nil {
		t.Fatalf("Offer: %v", err)
	}
	toA, err := s.Answer(SideB, b.sdp())
	if err != nil {
		t.Fatalf("Answer: %v", err)
	}
	if c, o := connLine(t, toB); c != "IN IP6 2001:db8::5" || o != c {
		t.Fatalf("offer to the IPv6 side: c=%q o=%q\n%s", c, o, toB)
	}
	if c, o := connLine(t, toA); c != "IN IP4 203.0.113.5" || o != c {
		t.Fatalf("answer to the IPv4 side: c=%q o=%q\n%s", c, o, toA)
	}
	for _, body := range [][]byte{toA, toB} {
		if strings.Contains(string(body), "127.0.0.1") || strings.Contains(string(body), "::1") {
			t.Fatalf("SDP names the SBC's or a peer's loopback address:\n%s", body)
		}
	}
}

// sdpAddr is the address of a "IN IP4 addr" line.
func sdpAddr(t testing.TB, line string) netip.Addr {
	t.Helper()
	f := strings.Fields(line)
	return netip.MustParseAddr(f[len(f)-1])
}

// TestFamilyFailover: an offer re-sent toward a callee of the other family
// (failover to another trunk) moves that side to its family while it has
// not answered; once it has, a re-offer keeps the family its sockets use.
func TestFamilyFailover(t *testing.T) {
	m := newTestManager(t, 8, netip.Addr{}, dualStack)
	s := m.NewSession("call-failover")
	t.Cleanup(s.Close)
	a, b := newPeer(t, true), newPeerAt(t, "::1", true)
	s.Configure(SideA, SideOptions{Signaling: loopback})
	s.Configure(SideB, SideOptions{Signaling: loopback})
	first, err := s.Offer(SideA, a.sdp())
	if err != nil {
		t.Fatalf("Offer: %v", err)
	}
	if c, _ := connLine(t, first); c != "IN IP4 127.0.0.1" {
		t.Fatalf("offer to the first (IPv4) trunk: c=%q", c)
	}
	s.Configure(SideB, SideOptions{Signaling: loopback6})
	toB, err := s.Offer(SideA, a.sdp())
	if err != nil {
		t.Fatalf("failover Offer: %v", err)
	}
	if c, o := connLine(t, toB); c != "IN IP6 ::1" || o != c {
		t.Fatalf("offer to the second (IPv6) trunk: c=%q o=%q\n%s", c, o, toB)
	}
	if n := m.pool.inUse(); n != 2 {
		t.Fatalf("%d port pairs in use after the failover, want 2 (the first trunk's released)", n)
	}
	toA, err := s.Answer(SideB, b.sdp())
	if err != nil {
		t.Fatalf("Answer: %v", err)
	}
	sbcA := netip.AddrPortFrom(loopback, uint16(mPort(t, toA, 0)))
	sbcB := netip.AddrPortFrom(loopback6, uint16(mPort(t, toB, 0)))
	pkt := rtpPacket(1)
	sendTo(t, a.rtp, pkt, sbcA)
	if got, from := recv(t, b.rtp); !sameRTPPayload(got, pkt) || from != sbcB {
		t.Fatalf("A→B: %d bytes from %s, want from %s", len(got), from, sbcB)
	}
	sendTo(t, b.rtp, pkt, sbcB)
	if got, from := recv(t, a.rtp); !sameRTPPayload(got, pkt) || from != sbcA {
		t.Fatalf("B→A: %d bytes from %s, want from %s", len(got), from, sbcA)
	}
	// Answered: a re-offer keeps B on IPv6 whatever its signaling says.
	s.Configure(SideB, SideOptions{Signaling: loopback})
	again, err := s.Offer(SideA, a.sdp())
	if err != nil {
		t.Fatalf("re-offer: %v", err)
	}
	if c, _ := connLine(t, again); c != "IN IP6 ::1" || mPort(t, again, 0) != int(sbcB.Port()) {
		t.Fatalf("re-offer to the answered side: c=%q port %d, want IN IP6 ::1 port %d", c, mPort(t, again, 0), sbcB.Port())
	}
}
