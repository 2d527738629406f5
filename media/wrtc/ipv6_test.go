package wrtc

import (
	"net"
	"net/netip"
	"strings"
	"testing"
)

// TestIPv6Candidates: a Mux on an IPv6 address gathers IPv6 host
// candidates only, with the public IPv6 address in place of the bound one;
// a public IPv4 address on an IPv6 Mux is refused. (pion gathers ICE-TCP
// candidates from the interface list, where it skips ::1 as an
// "IPv4-compatible" address; on a real IPv6 address it advertises one, so
// only udp is counted here.)
func TestIPv6Candidates(t *testing.T) {
	tests := []struct {
		name   string
		public string // Config.PublicIP; "" keeps the bound address
		want   string // the address every candidate names
	}{
		{"bound address", "", "::1"},
		{"public address", "2001:db8::5", "2001:db8::5"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := newTestMuxAt(t, "::1", true)
			tr := newTestTransport(t, m, func(c *Config) {
				c.PublicIP = netip.Addr{}
				if tc.public != "" {
					c.PublicIP = netip.MustParseAddr(tc.public)
				}
			})
			udp := 0
			for _, c := range tr.Local().Candidates {
				f := strings.Fields(c)
				if len(f) < 8 || f[4] != tc.want || f[7] != "host" {
					t.Fatalf("candidate %q: want a host candidate on %s", c, tc.want)
				}
				if strings.EqualFold(f[2], "udp") {
					udp++
				}
			}
			if udp != 1 {
				t.Fatalf("candidates %q: want one udp", tr.Local().Candidates)
			}
		})
	}
	t.Run("public ipv4 on an ipv6 mux", func(t *testing.T) {
		cert, err := testCert()
		if err != nil {
			t.Fatal(err)
		}
		m := newTestMuxAt(t, "::1", false)
		if tr, err := New(Config{Mux: m, PublicIP: netip.MustParseAddr("203.0.113.5"), Certificate: cert}); err == nil {
			_ = tr.Close()
			t.Fatal("New accepted a public IPv4 address on an IPv6 mux")
		}
	})
}

// TestIPv6Media: a pion peer on [::1] connects to a transport on [::1]
// over udp6 and media flows both ways.
func TestIPv6Media(t *testing.T) {
	m := newTestMuxAt(t, "::1", false)
	tr := newTestTransport(t, m, func(c *Config) { c.PublicIP = netip.Addr{} })
	states := watchState(tr)
	pc := newPeer(t, peerOpts{v6: true})
	track := addTrack(t, pc, "opus")
	got := peerTracks(pc)
	rm := answerPion(t, tr, pc, offerFrom(t, pc, false), []mediaLine{opusLine})
	sink := newChanSink()
	tr.SetRoutes([]Route{{PTs: []uint8{opusLine.pt}, SSRCs: rm[0].ssrcs, Sink: sink}})
	states.connected(t)
	local := tr.conn.LocalAddr().String()
	if host, _, _ := net.SplitHostPort(local); host != "::1" {
		t.Fatalf("selected path is local %s, want [::1]", local)
	}
	var seqIn, seqOut uint16
	expectPeerToUs(t, track, sink, opusLine.pt, &seqIn)
	expectUsToPeer(t, tr, got, opusLine, &seqOut)
}
