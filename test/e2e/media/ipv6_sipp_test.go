package media

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/sbc-project/sbc/b2bua/sipmsg"
	"github.com/sbc-project/sbc/test/e2e"
	"github.com/sbc-project/sbc/test/sipptest"
)

// TestIPv6SIPpTrunk: a Go phone on IPv4 and one on IPv6 call SIPp on
// [::1], which answers and echoes RTP (-rtp_echo on ::1). SIPp reads the
// SBC's IPv6 INVITE, ACK and BYE as a third-party stack, and the phone's
// audio comes back through the SBC across the families.
func TestIPv6SIPpTrunk(t *testing.T) {
	sipptest.Require(t)
	for _, callerIP := range []string{e2e.CallerIP(), "::1"} {
		t.Run("caller on "+callerIP, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			t.Cleanup(cancel)
			mp := e2e.EvenFreePort(t, "::1")
			uas := sipptest.Start(ctx, t, sipptest.Options{Scenario: sipptest.ScenarioPath("call_caller_bye_uas.xml"),
				LocalIP: "::1", Args: []string{"-rtp_echo", "-mi", "::1", "-mp", e2e.Itoa(mp)}, Timeout: 30 * time.Second})
			s := ipv6SBCTo(t, "", trunkAt("sipp", uas.Addr(), "udp"))
			ip := netip.MustParseAddr(callerIP)
			caller := e2e.DialPeer(t, "UDP", callerIP, addrFor(s, t, "UDP", ip))
			sbcA := addrFor(s, t, "UDP", ip)
			callID, fromTag := sipmsg.NewToken(8)+"@caller.example", sipmsg.NewToken(4)
			caller.Request("INVITE", "sip:bob@"+sbcA.String(), callID, fromTag, "", 1, caller.SDP())
			ok := caller.ExpectFinal()
			if ok.StatusCode() != 200 {
				t.Fatalf("caller got %d %s", ok.StatusCode(), ok.Reason())
			}
			mediaA := checkSDPFamily(t, "answer to the caller", ok.Body(), sbcA.Addr())
			toTag, target := sipmsg.ToTag(ok), sipmsg.ContactURI(ok).String()
			caller.Request("ACK", target, callID, fromTag, toTag, 1, "")
			for i := range 5 {
				pkt := append([]byte{0x80, 0, 0, byte(i), 0, 0, 0, 160, 0xca, 0xfe, 0xba, 0xbe}, make([]byte, 160)...)
				expectRTP(t, "caller → SIPp → caller", caller, mediaA, caller, mediaA, pkt)
			}
			caller.Request("BYE", target, callID, fromTag, toTag, 2, "")
			if res := caller.ExpectFinal(); res.StatusCode() != 200 {
				t.Fatalf("BYE answered %d", res.StatusCode())
			}
			if err := uas.Wait().Check(1); err != nil {
				t.Error(err)
			}
			s.WaitIdle(t)
		})
	}
}
