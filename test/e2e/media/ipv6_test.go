package media

import (
	"bytes"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ghettovoice/gosip/sip"

	"github.com/sbc-project/sbc/b2bua/sipmsg"
	"github.com/sbc-project/sbc/internal/config"
	"github.com/sbc-project/sbc/test/e2e"
)

// ipv6SBC is the harness's SBC with UDP and TCP listeners on [::1] as well
// (named udp6 and tcp6) and WSS on [::1] (wss6), media on 127.0.0.1 and ::1, trunks in order of
// failover, and sip.public_addr set to public.
func ipv6SBC(t *testing.T, public string, trunks ...*e2e.SIPPeer) *e2e.SBC {
	t.Helper()
	var specs []e2e.TrunkSpec
	for i, trunk := range trunks {
		specs = append(specs, trunkAt("pbx"+e2e.Itoa(i), trunk.Addr(), strings.ToLower(trunk.Kind)))
	}
	return ipv6SBCTo(t, public, specs...)
}

// trunkAt is a trunk at addr, an IPv6 one in brackets.
func trunkAt(name string, addr netip.AddrPort, transport string) e2e.TrunkSpec {
	tr := e2e.TrunkSpec{Name: name, Addr: addr.Addr().String(), Port: int(addr.Port()), Transport: transport}
	if addr.Addr().Is6() {
		tr.Addr = "[" + tr.Addr + "]"
	}
	return tr
}

// ipv6SBCTo is ipv6SBC with trunks given by their specs.
func ipv6SBCTo(t *testing.T, public string, specs ...e2e.TrunkSpec) *e2e.SBC {
	t.Helper()
	port := e2e.Itoa(e2e.FreeUDPPort(t, "::1"))
	return e2e.StartSBC(t, e2e.SBCOptions{Trunks: specs, Mutate: func(c *config.Config) {
		c.SIP.Listeners = append(c.SIP.Listeners,
			config.Listener{Name: "udp6", Transport: "udp", Addr: "[::1]:" + port},
			config.Listener{Name: "tcp6", Transport: "tcp", Addr: "[::1]:" + port},
			config.Listener{Name: "wss6", Transport: "wss", Addr: "[::1]:0"})
		c.Media.BindIP = "127.0.0.1, ::1"
		c.SIP.PublicAddr = public
	}})
}

// sbcAddr is the SBC's listener of kind in ip's family.
func addrFor(s *e2e.SBC, t *testing.T, kind string, ip netip.Addr) netip.AddrPort {
	t.Helper()
	name := strings.ToLower(kind)
	if ip.Is6() {
		name += "6"
	}
	ap, ok := s.App.Addr(name)
	if !ok {
		t.Fatalf("no listener %s", name)
	}
	return ap
}

// TestIPv6Calls: a phone calls a trunk through the SBC, over IPv6 on both
// sides and from one family to the other, over UDP and TCP. Each side sees
// the SBC in its own family in Via, Contact and SDP (c= and o=), and RTP
// flows both ways.
func TestIPv6Calls(t *testing.T) {
	tests := []struct {
		name                 string
		callerKind, callerIP string
		trunkKind, trunkIP   string
		public               string // sip.public_addr
	}{
		{"v6 udp to v6 udp trunk", "UDP", "::1", "UDP", "::1", ""},
		{"v6 tcp to v6 tcp trunk", "TCP", "::1", "TCP", "::1", ""},
		{"v4 udp to v6 udp trunk", "UDP", e2e.CallerIP(), "UDP", "::1", ""},
		{"v6 udp to v4 udp trunk", "UDP", "::1", "UDP", e2e.PBXIP(), ""},
		{"v4 tcp to v6 tcp trunk", "TCP", e2e.CallerIP(), "TCP", "::1", ""},
		// Behind a 1:1 NAT of each family, each peer sees the public
		// address of its own.
		{"v4 udp to v6 udp trunk, public addresses", "UDP", e2e.CallerIP(), "UDP", "::1", "192.0.2.10, 2001:db8::10"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			trunk := e2e.ListenPeer(t, tc.trunkKind, tc.trunkIP)
			s := ipv6SBC(t, tc.public, trunk)
			caller := e2e.DialPeer(t, tc.callerKind, tc.callerIP, addrFor(s, t, tc.callerKind, netip.MustParseAddr(tc.callerIP)))
			hostA, hostB := addrFor(s, t, caller.Kind, caller.IP).Addr(), addrFor(s, t, trunk.Kind, trunk.IP).Addr()
			if tc.public != "" {
				hostA, hostB = publicOf(tc.public, caller.IP), publicOf(tc.public, trunk.IP)
			}
			runIPv6Call(t, s, caller, nil, trunk, hostA, hostB)
			s.WaitIdle(t)
		})
	}
}

// publicOf is the address of list ("v4, v6") of ip's family.
func publicOf(list string, ip netip.Addr) netip.Addr {
	for _, f := range strings.Split(list, ",") {
		if a := netip.MustParseAddr(strings.TrimSpace(f)); a.Is4() == ip.Is4() {
			return a
		}
	}
	return netip.Addr{}
}

// runIPv6Call places a call from caller to trunk (after refuser, if not
// nil, refused it with 503), checks each side's view of the SBC (named
// hostA in SIP toward the caller, hostB toward the trunk), relays RTP both
// ways and hangs up.
func runIPv6Call(t *testing.T, s *e2e.SBC, caller, refuser, trunk *e2e.SIPPeer, hostA, hostB netip.Addr) {
	t.Helper()
	sbcA := addrFor(s, t, caller.Kind, caller.IP)
	callID, fromTag := sipmsg.NewToken(8)+"@caller.example", sipmsg.NewToken(4)
	ruri := "sip:bob@" + sbcA.String()
	caller.Request("INVITE", ruri, callID, fromTag, "", 1, caller.SDP())
	if refuser != nil {
		inv := refuser.ExpectReq("INVITE")
		checkSDPFamily(t, "offer to the refusing trunk", inv.Body(), addrFor(s, t, refuser.Kind, refuser.IP).Addr())
		refuser.Respond(inv, 503, "gone", "")
	}

	inv := trunk.ExpectReq("INVITE")
	sbcB := addrFor(s, t, trunk.Kind, trunk.IP)
	checkSBCHost(t, "INVITE to the trunk", inv, hostB)
	mediaB := checkSDPFamily(t, "offer to the trunk", inv.Body(), sbcB.Addr())
	trunk.Respond(inv, 200, "pbx1", trunk.SDP())

	ok := caller.ExpectFinal()
	if ok.StatusCode() != 200 {
		t.Fatalf("caller got %d %s", ok.StatusCode(), ok.Reason())
	}
	checkSBCHost(t, "200 to the caller", ok, hostA)
	mediaA := checkSDPFamily(t, "answer to the caller", ok.Body(), sbcA.Addr())
	toTag := sipmsg.ToTag(ok)
	target := sipmsg.ContactURI(ok).String()
	caller.Request("ACK", target, callID, fromTag, toTag, 1, "")
	trunk.ExpectReq("ACK")

	relayRTP(t, caller, mediaA, trunk, mediaB)

	caller.Request("BYE", target, callID, fromTag, toTag, 2, "")
	bye := trunk.ExpectReq("BYE")
	trunk.Respond(bye, 200, "", "")
	if res := caller.ExpectFinal(); res.StatusCode() != 200 {
		t.Fatalf("BYE answered %d", res.StatusCode())
	}
}

// TestIPv6Failover: the first trunk, on IPv4, refuses the call; the SBC
// fails over to an IPv6 trunk and its offer there is in IPv6, and the
// reverse; RTP flows with the trunk that answered.
func TestIPv6Failover(t *testing.T) {
	for _, tc := range []struct{ name, firstIP, secondIP string }{
		{"v4 trunk then v6 trunk", e2e.PBXIP(), "::1"},
		{"v6 trunk then v4 trunk", "::1", e2e.PBXIP()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			first, second := e2e.ListenPeer(t, "UDP", tc.firstIP), e2e.ListenPeer(t, "UDP", tc.secondIP)
			s := ipv6SBC(t, "", first, second)
			caller := e2e.DialPeer(t, "UDP", e2e.CallerIP(), addrFor(s, t, "UDP", netip.MustParseAddr(e2e.CallerIP())))
			runIPv6Call(t, s, caller, first, second, addrFor(s, t, "UDP", caller.IP).Addr(), addrFor(s, t, "UDP", second.IP).Addr())
			s.WaitIdle(t)
		})
	}
}

// checkSBCHost fails unless the SBC names itself at want in msg's Contact
// and, for a request, in its top Via: a bracketed IPv6 address or an IPv4
// one, whichever the peer's family is.
func checkSBCHost(t *testing.T, what string, msg sip.Message, want netip.Addr) {
	t.Helper()
	if u := sipmsg.ContactURI(msg); u == nil || strings.Trim(u.Host(), "[]") != want.String() ||
		(want.Is6() && !strings.HasPrefix(u.Host(), "[")) {
		t.Fatalf("%s: Contact %v, want host %s\n%s", what, u, want, msg)
	}
	if _, ok := msg.(sip.Request); !ok {
		return
	}
	via, ok := msg.ViaHop()
	if !ok || strings.Trim(via.Host, "[]") != want.String() {
		t.Fatalf("%s: top Via %v, want host %s\n%s", what, via, want, msg)
	}
}

// checkSDPFamily fails unless body's c= and o= name want in its family
// (IN IP6 or IN IP4), and returns the SBC's RTP address it announces.
func checkSDPFamily(t *testing.T, what, body string, want netip.Addr) netip.AddrPort {
	t.Helper()
	m := e2e.ReMLine.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("%s: no m=audio line in\n%s", what, body)
	}
	port, _ := strconv.Atoi(m[1])
	fam := "IP4"
	if want.Is6() {
		fam = "IP6"
	}
	for _, line := range []string{"c=IN " + fam + " " + want.String(), " IN " + fam + " " + want.String()} {
		if !strings.Contains(body, line) {
			t.Fatalf("%s: no %q in\n%s", what, line, body)
		}
	}
	return netip.AddrPortFrom(want, uint16(port))
}

// relayRTP sends RTP from each side to the SBC's address facing it and
// waits for it on the other side.
func relayRTP(t *testing.T, a *e2e.SIPPeer, sbcA netip.AddrPort, b *e2e.SIPPeer, sbcB netip.AddrPort) {
	t.Helper()
	for i := range 5 {
		pkt := []byte{0x80, 0, 0, byte(i), 0, 0, 0, 160, 0xca, 0xfe, 0xba, 0xbe}
		pkt = append(pkt, bytes.Repeat([]byte{0xff}, 160)...)
		expectRTP(t, "caller → trunk", a, sbcA, b, sbcB, pkt)
		expectRTP(t, "trunk → caller", b, sbcB, a, sbcA, pkt)
	}
}

// expectRTP sends pkt from src to the SBC at to and waits for its payload
// at dst, coming from the SBC at from.
func expectRTP(t *testing.T, what string, src *e2e.SIPPeer, to netip.AddrPort, dst *e2e.SIPPeer, from netip.AddrPort, pkt []byte) {
	t.Helper()
	if _, err := src.RTP.WriteToUDPAddrPort(pkt, to); err != nil {
		t.Fatalf("%s: send to %s: %v", what, to, err)
	}
	buf := make([]byte, 2048)
	_ = dst.RTP.SetReadDeadline(time.Now().Add(3 * time.Second))
	n, got, err := dst.RTP.ReadFromUDPAddrPort(buf)
	if err != nil {
		t.Fatalf("%s: nothing relayed (%s to %s): %v", what, src.RTPAddr(), to, err)
	}
	if netip.AddrPortFrom(got.Addr().Unmap(), got.Port()) != from || !bytes.Equal(buf[12:n], pkt[12:]) {
		t.Fatalf("%s: %d bytes from %s, want the payload from %s", what, n, got, from)
	}
}
