package linphone

import (
	"net"
	"net/netip"
	"strconv"
	"testing"
)

func mustAddrPort(t *testing.T, s string) netip.AddrPort {
	t.Helper()
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		t.Fatal(err)
	}
	return ap
}

// freeUDPPort is a UDP port free on ip, released for the process that
// will bind it.
func freeUDPPort(t *testing.T, ip string) int {
	t.Helper()
	c, err := net.ListenPacket("udp4", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

// evenFreeUDPPort is an even UDP port free on every address, with its odd
// neighbour free too: linphone binds RTP and RTCP there on 0.0.0.0.
func evenFreeUDPPort(t *testing.T) int {
	t.Helper()
	for range 50 {
		c, err := net.ListenPacket("udp4", "0.0.0.0:0")
		if err != nil {
			t.Fatal(err)
		}
		p := c.LocalAddr().(*net.UDPAddr).Port &^ 1
		c.Close()
		a, errA := net.ListenPacket("udp4", net.JoinHostPort("0.0.0.0", strconv.Itoa(p)))
		b, errB := net.ListenPacket("udp4", net.JoinHostPort("0.0.0.0", strconv.Itoa(p+1)))
		for _, x := range []net.PacketConn{a, b} {
			if x != nil {
				x.Close()
			}
		}
		if errA == nil && errB == nil {
			return p
		}
	}
	t.Fatal("no free even UDP port pair")
	return 0
}
