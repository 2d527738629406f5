// Package fax tests T.38 fax through the SBC: a re-INVITE to T.38 between
// two SIPp sides, with UDPTL datagrams relayed both ways, and the same
// re-INVITE toward a browser refused while the call keeps its audio.
package fax

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sbc-project/sbc/b2bua/sipmsg"
	"github.com/sbc-project/sbc/test/e2e"
	"github.com/sbc-project/sbc/test/sipptest"
)

// faxSocket is a fax gateway's UDPTL socket on ip.
func faxSocket(t *testing.T, ip string) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(ip)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func port(c *net.UDPConn) string { return strconv.Itoa(c.LocalAddr().(*net.UDPAddr).Port) }

// imageAddr waits for the address a SIPp side got for the image stream
// (the scenarios write it to image_port in their directory).
func imageAddr(t *testing.T, p *sipptest.Proc, who string) netip.AddrPort {
	t.Helper()
	var addr netip.AddrPort
	e2e.WaitFor(t, 15*time.Second, who+" gets the T.38 image stream", func() bool {
		b, err := os.ReadFile(filepath.Join(p.Dir(), "image_port"))
		if err != nil {
			return false
		}
		addr, err = netip.ParseAddrPort(strings.TrimSpace(string(b)))
		return err == nil
	})
	return addr
}

// udptl is a UDPTL datagram: sequence number, then an IFP (a T.30
// indicator) and no redundancy. Its first octet is 0x80 for odd
// sequence numbers, so it also looks like RTP version 2: the relay must
// not treat it as RTP.
func udptl(seq uint16) []byte {
	b := []byte{byte(seq >> 8), byte(seq), 0x02, 0x00, 0x10, 0x00}
	if seq%2 == 1 {
		b[0] = 0x80
	}
	return b
}

// relayUDPTL sends n datagrams from one fax socket to the SBC's address
// facing it and checks each arrives unchanged at the other from the
// SBC's address facing that one.
func relayUDPTL(t *testing.T, what string, from, to *net.UDPConn, sbcFrom, sbcTo netip.AddrPort, n int) {
	t.Helper()
	buf := make([]byte, 2048)
	for i := range n {
		pkt := udptl(uint16(100 + i))
		if _, err := from.WriteToUDPAddrPort(pkt, sbcFrom); err != nil {
			t.Fatal(err)
		}
		to.SetReadDeadline(time.Now().Add(3 * time.Second))
		k, src, err := to.ReadFromUDPAddrPort(buf)
		if err != nil {
			t.Fatalf("%s: datagram %d not relayed: %v", what, i, err)
		}
		if !bytes.Equal(buf[:k], pkt) || src != sbcTo {
			t.Fatalf("%s: datagram %d arrived as %x from %s, want %x from %s", what, i, buf[:k], src, pkt, sbcTo)
		}
	}
}

// TestT38ReinviteSIPp: SIPp calls SIPp through the SBC, re-INVITEs to
// T.38 and back. Each side gets an image stream on the SBC's address
// (the T38Fax* attributes intact: the scenarios check them), the fax
// sockets beside the SIPp processes exchange UDPTL datagrams through
// it, both ways, and the call goes back to audio and ends cleanly.
func TestT38ReinviteSIPp(t *testing.T) {
	sipptest.Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	faxA, faxB := faxSocket(t, e2e.CallerIP()), faxSocket(t, e2e.PBXIP())
	uas := sipptest.Start(ctx, t, sipptest.Options{Scenario: sipptest.ScenarioPath("t38_reinvite_uas.xml"),
		LocalIP: e2e.PBXIP(), Args: []string{"-key", "faxport", port(faxB)}, Timeout: 30 * time.Second})
	sbc := e2e.StartSBC(t, e2e.SBCOptions{Trunks: []e2e.TrunkSpec{{Name: "pbx", Addr: e2e.PBXIP(), Port: int(uas.Addr().Port())}}})
	// The caller stays on fax for 5 s: the datagrams below cross within it.
	uac := sipptest.Start(ctx, t, sipptest.Options{Scenario: sipptest.ScenarioPath("t38_reinvite_uac.xml"),
		LocalIP: e2e.CallerIP(), Remote: sbc.UDP.String(),
		Args: []string{"-s", "1000", "-d", "5000", "-key", "faxport", port(faxA)}, Timeout: 30 * time.Second})

	sbcB := imageAddr(t, uas, "the callee")
	sbcA := imageAddr(t, uac, "the caller")
	for _, a := range []netip.AddrPort{sbcA, sbcB} {
		if s := a.Addr().String(); s == e2e.CallerIP() || s == e2e.PBXIP() {
			t.Fatalf("image stream on %s: the other side's address leaked", a)
		}
	}
	relayUDPTL(t, "caller → callee", faxA, faxB, sbcA, sbcB, 5)
	relayUDPTL(t, "callee → caller", faxB, faxA, sbcB, sbcA, 5)
	relayUDPTL(t, "caller → callee again", faxA, faxB, sbcA, sbcB, 2)

	if err := uac.Wait().Check(1); err != nil {
		t.Error(err)
	}
	if err := uas.Wait().Check(1); err != nil {
		t.Error(err)
	}
	sbc.WaitIdle(t)
}

// TestT38TowardBrowserRefused: a pion WebRTC caller talks to a PBX,
// which re-INVITEs to T.38. The SBC answers 488 with a Warning saying
// why, the browser gets no re-INVITE, and audio goes on both ways.
func TestT38TowardBrowserRefused(t *testing.T) {
	pbx := e2e.NewMediaPBX(t, e2e.PBXOptions{Stream: true})
	sbc := e2e.StartSBC(t, e2e.SBCOptions{Trunks: pbx.Trunk()})
	web := e2e.NewWebPhone(t, sbc)
	web.Call("1000")
	e2e.WaitCount(t, "browser gets the pbx stream", web.Rx, "PBX1", 25)
	peer, _ := pbx.Current()
	e2e.WaitCount(t, "pbx gets the browser", peer.Rx, "WEB1", 25)
	invites := len(web.SIP.Requests("INVITE"))

	res := pbx.SendOffer(t38Offer(t, e2e.PBXIP()))
	if res.StatusCode() != 488 {
		t.Fatalf("T.38 re-INVITE toward a browser answered %d, want 488", res.StatusCode())
	}
	if w := sipmsg.Header(res, "Warning"); !strings.HasPrefix(w, "304 ") || !strings.Contains(w, "T.38") {
		t.Errorf("488 Warning %q, want 304 naming T.38", w)
	}
	n := web.Rx.Marker("PBX1")
	e2e.WaitCount(t, "browser still gets the pbx after the 488", web.Rx, "PBX1", n+25)
	n = peer.Rx.Marker("WEB1")
	e2e.WaitCount(t, "pbx still gets the browser after the 488", peer.Rx, "WEB1", n+25)
	if got := len(web.SIP.Requests("INVITE")); got != invites {
		t.Errorf("browser got %d re-INVITEs for the refused T.38 offer, want none", got-invites)
	}
	web.Hangup()
	sbc.WaitCallsIdle(t)
}

// t38Offer is a PBX's re-INVITE body switching to T.38 on a port of ip.
func t38Offer(t *testing.T, ip string) string {
	return fmt.Sprintf("v=0\r\no=pbx 7 9 IN IP4 %s\r\ns=-\r\nc=IN IP4 %s\r\nt=0 0\r\n"+
		"m=image %d udptl t38\r\na=T38FaxVersion:0\r\na=T38MaxBitRate:14400\r\n"+
		"a=T38FaxRateManagement:transferredTCF\r\na=T38FaxUdpEC:t38UDPRedundancy\r\n", ip, ip, e2e.FreeUDPPort(t, ip))
}

// TestT38RefusedByFarEnd: between two SIP sides the PBX's T.38
// re-INVITE reaches the phone, which has no fax and answers 488. The PBX
// gets the 488 and its audio port keeps receiving: the SBC undid what
// the refused offer said (the fax port), as a gateway falling back to
// G.711 fax expects.
func TestT38RefusedByFarEnd(t *testing.T) {
	pbx := e2e.NewMediaPBX(t, e2e.PBXOptions{Stream: true})
	sbc := e2e.StartSBC(t, e2e.SBCOptions{Trunks: pbx.Trunk()})
	phone := e2e.NewPlainPhone(t, sbc)
	phone.Call("1000")
	e2e.WaitCount(t, "phone gets the pbx", phone.RTP.Rx, "PBX1", 25)
	peer, _ := pbx.Current()
	e2e.WaitCount(t, "pbx gets the phone", peer.Rx, "PLN1", 25)

	if res := pbx.SendOffer(t38Offer(t, e2e.PBXIP())); res.StatusCode() != 488 {
		t.Fatalf("T.38 re-INVITE to a phone without fax answered %d, want its 488", res.StatusCode())
	}
	n := peer.Rx.Marker("PLN1")
	e2e.WaitCount(t, "pbx's audio port still gets the phone after the 488", peer.Rx, "PLN1", n+25)
	n = phone.RTP.Rx.Marker("PBX1")
	e2e.WaitCount(t, "phone still gets the pbx after the 488", phone.RTP.Rx, "PBX1", n+25)
	phone.Dlg.Bye()
	sbc.WaitCallsIdle(t)
}
