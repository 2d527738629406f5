package media

import (
	"net"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/webrtc/v4"

	"github.com/sbc-project/sbc/internal/config"
	"github.com/sbc-project/sbc/test/e2e"
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
			sbc := e2e.StartSBC(t, e2e.SBCOptions{Mutate: func(c *config.Config) {
				c.SIP.Listeners = append(c.SIP.Listeners, config.Listener{Name: "wss6", Transport: "wss", Addr: "[::1]:0"})
				c.Media.BindIP = "127.0.0.1, ::1"
				if tc.shared {
					c.Media.WebRTCPort = freeUDPPortOutside(t, "::1", 40000, 49999)
				}
			}})
			wss6, ok := sbc.App.Addr("wss6")
			if !ok {
				t.Fatal("no wss6 listener")
			}
			web := e2e.NewWebPhoneOn(t, ipv6BrowserAPI(t), func() *e2e.SIPClient {
				return e2e.NewSIPClientFrom(t, "WSS", wss6.String(), "::1")
			})
			web.Call("echo")
			e2e.WaitCount(t, "browser gets its packets echoed", web.Rx, "WEB1", 50)
			checkIPv6Answer(t, web.Answer)
			web.Hangup()
			web.Close()
			sbc.WaitIdle(t)
		})
	}
}

// ipv6BrowserAPI is WebAPI over udp6 on [::1]. pion gathers no host
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
	return e2e.BrowserAPI(t, se)
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
	}{{"v4 browser to v6 trunk", false, "::1"}, {"v6 browser to v4 trunk", true, e2e.PBXIP()}} {
		t.Run(tc.name, func(t *testing.T) {
			trunk := e2e.ListenPeer(t, "UDP", tc.trunkIP)
			s := ipv6SBC(t, "", trunk)
			var web *e2e.WebPhone
			if tc.browserV6 {
				wss6, _ := s.App.Addr("wss6")
				web = e2e.NewWebPhoneOn(t, ipv6BrowserAPI(t), func() *e2e.SIPClient {
					return e2e.NewSIPClientFrom(t, "WSS", wss6.String(), "::1")
				})
			} else {
				web = e2e.NewWebPhone(t, s)
			}
			web.Dial("bob")
			inv := trunk.ExpectReq("INVITE")
			checkSDPFamily(t, "offer to the trunk", inv.Body(), addrFor(s, t, "UDP", trunk.IP).Addr())
			trunk.Respond(inv, 200, "pbx1", trunk.SDP())
			if res := web.AwaitAnswer(); res.StatusCode() != 200 {
				t.Fatalf("browser: call answered %d", res.StatusCode())
			}
			trunk.ExpectReq("ACK")
			stop := echoRTP(trunk)
			e2e.WaitCount(t, "browser hears its audio back through the trunk", web.Rx, "WEB1", 50)
			if tc.browserV6 {
				checkIPv6Answer(t, web.Answer)
			} else if !regexp.MustCompile(`(?m)^c=IN IP4 127\.0\.0\.1\r?$`).MatchString(web.Answer) {
				t.Fatalf("answer to the IPv4 browser:\n%s", web.Answer)
			}
			d := web.Dlg
			d.Seq++
			d.Send("BYE", d.Seq, "", "")
			trunk.Respond(trunk.ExpectReq("BYE"), 200, "", "")
			if res := d.Await(d.Seq, 5*time.Second, nil); res.StatusCode() != 200 {
				t.Fatalf("BYE answered %d", res.StatusCode())
			}
			stop()
			web.Close()
			s.WaitIdle(t)
		})
	}
}

// echoRTP sends every packet the peer's RTP socket receives back to its
// sender, until the returned stop (which closes the socket) is called.
func echoRTP(p *e2e.SIPPeer) (stop func()) {
	var wg sync.WaitGroup
	wg.Go(func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := p.RTP.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			_, _ = p.RTP.WriteToUDPAddrPort(buf[:n], from)
		}
	})
	return func() {
		_ = p.RTP.Close()
		wg.Wait()
	}
}

// freeUDPPortOutside is FreeUDPPort avoiding lo-hi: the shared WebRTC port
// must lie outside the harness's rtp_ports, and the kernel's ephemeral
// range overlaps it.
func freeUDPPortOutside(t *testing.T, ip string, lo, hi int) int {
	t.Helper()
	for range 200 {
		if p := e2e.FreeUDPPort(t, ip); p < lo || p > hi {
			return p
		}
	}
	t.Fatalf("no free UDP port on %s outside %d-%d", ip, lo, hi)
	return 0
}
