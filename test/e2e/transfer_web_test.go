package e2e

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ghettovoice/gosip/sip"
	"github.com/pion/webrtc/v4"

	"github.com/sbc-project/sbc/b2bua/outcome"
	"github.com/sbc-project/sbc/b2bua/sipmsg"
	"github.com/sbc-project/sbc/internal/config"
)

// Call transfer between web users: a browser in a call with the PBX
// transfers the PBX to another registered browser. Both browsers are pion
// PeerConnections over WS; the target registers with the SBC's registrar
// and answers the SBC's WebRTC offer as JsSIP does.

// xferWebIP is the address the transfer target's browser connects from.
const xferWebIP = "127.0.7.2"

// newRegisteredWebPhone is a browser registered as user (password secret)
// that answers the calls it gets; its stream carries marker.
func newRegisteredWebPhone(t *testing.T, sbc *sbcUnderTest, user, marker string) *webPhone {
	t.Helper()
	web := newWebPhoneOn(t, webAPI(t), func() *sipClient {
		ua := dialUAFrom(t, "WS", sbc.ws.String(), xferWebIP)
		ua.host = sipmsg.NewToken(10) + ".invalid" // each JsSIP instance has its own
		if res := ua.register(user, "secret", 300); res.StatusCode() != 200 {
			t.Fatalf("%s: register: %d %s", user, res.StatusCode(), res.Reason())
		}
		return startSIPClient(t, ua)
	})
	web.src.jump(marker)
	web.sip.handle(web.answerCall)
	return web
}

// answerCall answers a new call's WebRTC offer with every candidate (no
// trickle ICE over SIP) and sends with the payload types of the answer;
// requests within a dialog go to onRequest. It runs on the SIP reader.
func (p *webPhone) answerCall(req sip.Request) (int, string, string) {
	if req.Method() != sip.INVITE || sipmsg.ToTag(req) != "" {
		return p.onRequest(req)
	}
	if err := p.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: req.Body()}); err != nil {
		p.t.Errorf("browser: cannot take the SBC's offer: %v\n%s", err, req.Body())
		return 488, "", ""
	}
	a, err := p.pc.CreateAnswer(nil)
	gathered := webrtc.GatheringCompletePromise(p.pc)
	if err == nil {
		err = p.pc.SetLocalDescription(a)
	}
	if err != nil {
		p.t.Errorf("browser: answer: %v", err)
		return 500, "", ""
	}
	select {
	case <-gathered:
	case <-time.After(10 * time.Second):
		p.t.Error("browser: ICE gathering did not complete")
		return 500, "", ""
	}
	sdp := p.pc.LocalDescription().SDP
	info, err := parseSDPInfo(sdp)
	if err != nil || info.audio < 0 {
		p.t.Errorf("browser: answer without audio: %v", err)
		return 500, "", ""
	}
	p.src.setPT(uint8(info.audio), uint8(max(info.dtmfPT, 0)))
	return 200, "application/sdp", sdp
}

// TestTransferBrowserToBrowser: alice's browser, in a call with the PBX,
// REFERs it to bob, another registered web user (the transfer is judged
// as a call from alice, whose registration authenticates it): bob's browser gets a WebRTC offer with
// the PBX's media, the PBX is re-INVITEd onto it, and each hears the
// other; the transferor gets NOTIFY 100 and 200, then BYE, and the call's
// two records name each other.
func TestTransferBrowserToBrowser(t *testing.T) {
	s := startTransferSetup(t, 0, func(c *config.Config) {
		c.Users = []config.User{{Username: "alice", Password: "secret"}, {Username: "bob", Password: "secret"}}
		c.Routes = append([]config.Route{{Name: "web-users", Match: config.Match{RURIUser: "^(alice|bob)$"},
			Target: config.TargetRegistered}}, c.Routes...)
	})
	bob := newRegisteredWebPhone(t, s.sbc, "bob", "WEB2")
	web := newRegisteredWebPhone(t, s.sbc, "alice", "WEB1")
	web.call("1000")
	waitCount(t, "browser hears the pbx", web.rx, "PBX1", 25)
	if res := referIn(web.dlg, "<sip:bob@example.com>"); res.StatusCode() != 202 {
		t.Fatalf("browser REFER answered %d", res.StatusCode())
	}
	waitFor(t, 10*time.Second, "browser gets BYE", func() bool { return len(web.sip.requests(sip.BYE)) == 1 })
	if got := notifyLines(web.sip); !slices.Equal(got, []string{"SIP/2.0 100 Trying", "SIP/2.0 200 OK"}) {
		t.Errorf("browser's NOTIFYs %q", got)
	}
	peer, _ := s.pbx.current()
	waitCount(t, "pbx hears bob", peer.rx, "WEB2", 50)
	waitCount(t, "bob hears the pbx", bob.rx, "PBX1", 50)
	checkOneHandshake(t, bob)
	if n := len(s.pbx.state().offers); n != 2 {
		t.Errorf("pbx got %d offers, want the INVITE and one re-INVITE", n)
	}
	s.pbx.hangup()
	waitFor(t, 10*time.Second, "bob gets BYE", func() bool { return len(bob.sip.requests(sip.BYE)) == 1 })
	if invs := bob.sip.requests(sip.INVITE); len(invs) != 1 {
		t.Errorf("bob got %d INVITEs, want 1", len(invs))
	} else if !strings.Contains(sipmsg.Header(invs[0], "Referred-By"), "sip:") ||
		!strings.Contains(invs[0].Body(), "UDP/TLS/RTP/SAVPF") {
		t.Errorf("bob's INVITE is no WebRTC offer with Referred-By:\n%s", invs[0])
	}
	web.close()
	bob.close()
	// The call goes on between bob (now its A party) and the PBX.
	_, next := checkLinked(t, s.records(t, 2), outcome.SideA)
	if next.ATransport != "ws" || next.Trunk != "pbx" || next.Cause != outcome.CauseCalleeBye ||
		next.Media.AtoB.Packets < 25 || next.Media.BtoA.Packets < 25 {
		t.Errorf("record after the transfer: %+v", next)
	}
	s.sbc.waitCallsIdle(t)
}

// TestTransferBrowserTransfereeToBrowserRefused: the PBX REFERs a
// browser's call to bob, another browser. The transferee's ICE/DTLS session cannot move
// and bob cannot take the PBX's plain RTP side, so the transfer fails
// before bob is called: the PBX gets NOTIFY 488 and the call goes on as
// it was.
func TestTransferBrowserTransfereeToBrowserRefused(t *testing.T) {
	s := startTransferSetup(t, 0, func(c *config.Config) {
		c.Users = []config.User{{Username: "bob", Password: "secret"}}
		c.Routes = append([]config.Route{{Name: "web-users", Match: config.Match{RURIUser: "^bob$"},
			Target: config.TargetRegistered}}, c.Routes...)
	})
	bob := newRegisteredWebPhone(t, s.sbc, "bob", "WEB2")
	web := newWebPhone(t, s.sbc)
	web.call("1000")
	waitCount(t, "browser hears the pbx", web.rx, "PBX1", 25)
	if res := pbxRefer(s.pbx, "<sip:bob@example.com>"); res.StatusCode() != 202 {
		t.Fatalf("pbx REFER answered %d", res.StatusCode())
	}
	waitFor(t, 10*time.Second, "pbx gets two NOTIFYs", func() bool { return len(s.pbx.state().notifies) == 2 })
	want := []string{"SIP/2.0 100 Trying", "SIP/2.0 488 Not Acceptable Here"}
	if st := s.pbx.state(); !slices.Equal(st.notifies, want) || st.byes != 0 {
		t.Errorf("pbx: NOTIFYs %q and %d BYEs; want %q and none", st.notifies, st.byes, want)
	}
	waitCount(t, "browser still hears the pbx", web.rx, "PBX1", web.rx.marker("PBX1")+25)
	peer, _ := s.pbx.current()
	waitCount(t, "pbx still hears the browser", peer.rx, "WEB1", peer.rx.marker("WEB1")+25)
	if n, m := len(bob.sip.requests(sip.INVITE)), len(web.sip.requests(sip.INVITE)); n+m != 0 {
		t.Errorf("bob got %d INVITEs and the browser %d re-INVITEs; want none", n, m)
	}
	web.hangup()
	web.close()
	bob.close()
	if recs := s.records(t, 1); recs[0].TransferredTo != "" || recs[0].Cause != outcome.CauseCallerBye {
		t.Errorf("record: %+v", recs[0])
	}
	s.sbc.waitCallsIdle(t)
}
