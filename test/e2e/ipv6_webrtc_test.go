package e2e

import (
	"net"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/webrtc/v4"

	"github.com/sbc-project/sbc/internal/config"
)

// reCandidateAddr is the address of an a=candidate line.
var reCandidateAddr = regexp.MustCompile(`(?m)^a=candidate:\S+ \d+ \S+ \d+ (\S+) \d+ typ`)

// TestIPv6WebRTCEcho: a browser on [::1] (SIP over WSS on [::1], ICE over
// udp6) calls the echo destination, which the SBC reaches over IPv4. The
// browser's answer is all IPv6 (c=IN IP6, host candidates on ::1), and its
// audio comes back through DTLS-SRTP ⇄ plain RTP across the families; with
// a port per call and with the shared WebRTC port.
func TestIPv6WebRTCEcho(t *testing.T) {
	for _, tc := range []struct {
		name   string
		shared bool
	}{{"port per call", false}, {"shared webrtc port", true}} {
		t.Run(tc.name, func(t *testing.T) {
			sbc := startSBC(t, sbcOptions{mutate: func(c *config.Config) {
				c.SIP.Listeners = append(c.SIP.Listeners, config.Listener{Name: "wss6", Transport: "wss", Addr: "[::1]:0"})
				c.Media.BindIP = "127.0.0.1, ::1"
				if tc.shared {
					c.Media.WebRTCPort = freeUDPPortOutside(t, "::1", 40000, 49999)
				}
			}})
			wss6, ok := sbc.app.Addr("wss6")
			if !ok {
				t.Fatal("no wss6 listener")
			}
			web := newWebPhoneOn(t, ipv6BrowserAPI(t), func() *sipClient {
				return newSIPClientFrom(t, "WSS", wss6.String(), "::1")
			})
			web.call("echo")
			waitCount(t, "browser gets its packets echoed", web.rx, "WEB1", 50)
			checkIPv6Answer(t, web.answer)
			web.hangup()
			web.close()
			sbc.waitIdle(t)
		})
	}
}

// ipv6BrowserAPI is webAPI over udp6 on [::1]. pion gathers no host
// candidate on ::1 from the interface list (it takes it for an
// IPv4-compatible address) but advertises a mux's bound address as it is.
func ipv6BrowserAPI(t *testing.T) *webrtc.API {
	t.Helper()
	c, err := net.ListenUDP("udp6", &net.UDPAddr{IP: net.IPv6loopback})
	if err != nil {
		t.Fatalf("browser: listen [::1]: %v", err)
	}
	mux := ice.NewUDPMuxDefault(ice.UDPMuxParams{UDPConn: c})
	t.Cleanup(func() { _ = mux.Close() })
	se := webrtc.SettingEngine{}
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP6})
	se.SetICEUDPMux(mux)
	return browserAPI(t, se)
}

// checkIPv6Answer fails unless the SDP the browser got names the SBC only
// on ::1: c=, o= and every candidate.
func checkIPv6Answer(t *testing.T, answer string) {
	t.Helper()
	for _, re := range []*regexp.Regexp{regexp.MustCompile(`(?m)^c=IN IP6 ::1\r?$`), regexp.MustCompile(`(?m)^o=.* IN IP6 ::1\r?$`)} {
		if !re.MatchString(answer) {
			t.Fatalf("answer to the browser: no %s in\n%s", re, answer)
		}
	}
	cands := reCandidateAddr.FindAllStringSubmatch(answer, -1)
	if len(cands) == 0 {
		t.Fatalf("answer to the browser has no candidate:\n%s", answer)
	}
	for _, c := range cands {
		if c[1] != "::1" {
			t.Fatalf("answer to the browser has a candidate on %s:\n%s", c[1], answer)
		}
	}
}

// TestIPv6BrowserToTrunk: a browser on IPv4 calls a trunk on IPv6, and a
// browser on IPv6 a trunk on IPv4. The trunk gets a plain RTP offer in its
// own family, the browser an answer in its own, and the browser's audio
// comes back through the trunk (which echoes it).
func TestIPv6BrowserToTrunk(t *testing.T) {
	for _, tc := range []struct {
		name      string
		browserV6 bool
		trunkIP   string
	}{{"v4 browser to v6 trunk", false, "::1"}, {"v6 browser to v4 trunk", true, "127.0.0.3"}} {
		t.Run(tc.name, func(t *testing.T) {
			trunk := listenPeer(t, "UDP", tc.trunkIP)
			s := ipv6SBC(t, "", trunk)
			var web *webPhone
			if tc.browserV6 {
				wss6, _ := s.app.Addr("wss6")
				web = newWebPhoneOn(t, ipv6BrowserAPI(t), func() *sipClient {
					return newSIPClientFrom(t, "WSS", wss6.String(), "::1")
				})
			} else {
				web = newWebPhone(t, s)
			}
			web.dial("bob")
			inv := trunk.expectReq("INVITE")
			checkSDPFamily(t, "offer to the trunk", inv.Body(), s.addrFor(t, "UDP", trunk.ip).Addr())
			trunk.respond(inv, 200, "pbx1", trunk.sdp())
			if res := web.awaitAnswer(); res.StatusCode() != 200 {
				t.Fatalf("browser: call answered %d", res.StatusCode())
			}
			trunk.expectReq("ACK")
			stop := echoRTP(trunk)
			waitCount(t, "browser hears its audio back through the trunk", web.rx, "WEB1", 50)
			if tc.browserV6 {
				checkIPv6Answer(t, web.answer)
			} else if !regexp.MustCompile(`(?m)^c=IN IP4 127\.0\.0\.1\r?$`).MatchString(web.answer) {
				t.Fatalf("answer to the IPv4 browser:\n%s", web.answer)
			}
			d := web.dlg
			d.seq++
			d.send("BYE", d.seq, "", "")
			trunk.respond(trunk.expectReq("BYE"), 200, "", "")
			if res := d.await(d.seq, 5*time.Second, nil); res.StatusCode() != 200 {
				t.Fatalf("BYE answered %d", res.StatusCode())
			}
			stop()
			web.close()
			s.waitIdle(t)
		})
	}
}

// echoRTP sends every packet the peer's RTP socket receives back to its
// sender, until the returned stop (which closes the socket) is called.
func echoRTP(p *sipPeer) (stop func()) {
	var wg sync.WaitGroup
	wg.Go(func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := p.rtp.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			_, _ = p.rtp.WriteToUDPAddrPort(buf[:n], from)
		}
	})
	return func() {
		_ = p.rtp.Close()
		wg.Wait()
	}
}

// freeUDPPortOutside is freeUDPPort avoiding lo-hi: the shared WebRTC port
// must lie outside the harness's rtp_ports, and the kernel's ephemeral
// range overlaps it.
func freeUDPPortOutside(t *testing.T, ip string, lo, hi int) int {
	t.Helper()
	for range 200 {
		if p := freeUDPPort(t, ip); p < lo || p > hi {
			return p
		}
	}
	t.Fatalf("no free UDP port on %s outside %d-%d", ip, lo, hi)
	return 0
}
