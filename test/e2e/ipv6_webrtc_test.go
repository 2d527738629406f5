package e2e

import (
	"net"
	"regexp"
	"testing"

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
					c.Media.WebRTCPort = freeUDPPort(t, "::1")
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
