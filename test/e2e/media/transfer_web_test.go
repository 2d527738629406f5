package media

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
	"github.com/sbc-project/sbc/test/e2e"
)

// Call transfer between web users: a browser in a call with the PBX
// transfers the PBX to another registered browser. Both browsers are pion
// PeerConnections over WS; the target registers with the SBC's registrar
// and answers the SBC's WebRTC offer as JsSIP does.

// xferWebIP is the address the transfer target's browser connects from.
var xferWebIP = e2e.IP(72)

// newRegisteredWebPhone is a browser registered as user (password secret)
// that answers the calls it gets; its stream carries marker.
func newRegisteredWebPhone(t *testing.T, sbc *e2e.SBC, user, marker string) *e2e.WebPhone {
	t.Helper()
	web := e2e.NewWebPhoneOn(t, e2e.WebAPI(t), func() *e2e.SIPClient {
		ua := e2e.DialUAFrom(t, "WS", sbc.WS.String(), xferWebIP)
		ua.Host = sipmsg.NewToken(10) + ".invalid" // each JsSIP instance has its own
		if res := ua.Register(user, "secret", 300); res.StatusCode() != 200 {
			t.Fatalf("%s: register: %d %s", user, res.StatusCode(), res.Reason())
		}
		return e2e.StartSIPClient(t, ua)
	})
	web.Src.Jump(marker)
	web.SIP.Handle(func(req sip.Request) (int, string, string) { return answerCall(web, req) })
	return web
}

// answerCall answers a new call's WebRTC offer with every candidate (no
// trickle ICE over SIP) and sends with the payload types of the answer;
// requests within a dialog go to onRequest. It runs on the SIP reader.
func answerCall(p *e2e.WebPhone, req sip.Request) (int, string, string) {
	if req.Method() != sip.INVITE || sipmsg.ToTag(req) != "" {
		return p.OnRequest(req)
	}
	if err := p.PC.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: req.Body()}); err != nil {
		p.T.Errorf("browser: cannot take the SBC's offer: %v\n%s", err, req.Body())
		return 488, "", ""
	}
	a, err := p.PC.CreateAnswer(nil)
	gathered := webrtc.GatheringCompletePromise(p.PC)
	if err == nil {
		err = p.PC.SetLocalDescription(a)
	}
	if err != nil {
		p.T.Errorf("browser: answer: %v", err)
		return 500, "", ""
	}
	select {
	case <-gathered:
	case <-time.After(10 * time.Second):
		p.T.Error("browser: ICE gathering did not complete")
		return 500, "", ""
	}
	sdp := p.PC.LocalDescription().SDP
	info, err := e2e.ParseSDPInfo(sdp)
	if err != nil || info.Audio < 0 {
		p.T.Errorf("browser: answer without audio: %v", err)
		return 500, "", ""
	}
	p.Src.SetPT(uint8(info.Audio), uint8(max(info.DTMFPT, 0)))
	return 200, "application/sdp", sdp
}

// TestTransferBrowserToBrowser: alice's browser, in a call with the PBX,
// REFERs it to bob, another registered web user (the transfer is judged
// as a call from alice, whose registration authenticates it): bob's browser gets a WebRTC offer with
// the PBX's media, the PBX is re-INVITEd onto it, and each hears the
// other; the transferor gets NOTIFY 100 and 200, then BYE, and the call's
// two records name each other.
func TestTransferBrowserToBrowser(t *testing.T) {
	s := e2e.StartTransferSetup(t, 0, func(c *config.Config) {
		c.Users = []config.User{{Username: "alice", Password: "secret"}, {Username: "bob", Password: "secret"}}
		c.Routes = append([]config.Route{{Name: "web-users", Match: config.Match{RURIUser: "^(alice|bob)$"},
			Target: config.TargetRegistered}}, c.Routes...)
	})
	bob := newRegisteredWebPhone(t, s.SBC, "bob", "WEB2")
	web := newRegisteredWebPhone(t, s.SBC, "alice", "WEB1")
	web.Call("1000")
	e2e.WaitCount(t, "browser hears the pbx", web.Rx, "PBX1", 25)
	if res := e2e.ReferIn(web.Dlg, "<sip:bob@example.com>"); res.StatusCode() != 202 {
		t.Fatalf("browser REFER answered %d", res.StatusCode())
	}
	e2e.WaitFor(t, 10*time.Second, "browser gets BYE", func() bool { return len(web.SIP.Requests(sip.BYE)) == 1 })
	if got := e2e.NotifyLines(web.SIP); !slices.Equal(got, []string{"SIP/2.0 100 Trying", "SIP/2.0 200 OK"}) {
		t.Errorf("browser's NOTIFYs %q", got)
	}
	peer, _ := s.Pbx.Current()
	e2e.WaitCount(t, "pbx hears bob", peer.Rx, "WEB2", 50)
	e2e.WaitCount(t, "bob hears the pbx", bob.Rx, "PBX1", 50)
	checkOneHandshake(t, bob)
	if n := len(s.Pbx.State().Offers); n != 2 {
		t.Errorf("pbx got %d offers, want the INVITE and one re-INVITE", n)
	}
	s.Pbx.Hangup()
	e2e.WaitFor(t, 10*time.Second, "bob gets BYE", func() bool { return len(bob.SIP.Requests(sip.BYE)) == 1 })
	if invs := bob.SIP.Requests(sip.INVITE); len(invs) != 1 {
		t.Errorf("bob got %d INVITEs, want 1", len(invs))
	} else if !strings.Contains(sipmsg.Header(invs[0], "Referred-By"), "sip:") ||
		!strings.Contains(invs[0].Body(), "UDP/TLS/RTP/SAVPF") {
		t.Errorf("bob's INVITE is no WebRTC offer with Referred-By:\n%s", invs[0])
	}
	// The call goes on between bob (now its A party) and the PBX. The
	// phones close only once the call has ended: bob's client answers the
	// BYE from its reader, and a bob closed as soon as the BYE arrived
	// could not send that 200 (seen in CI: "use of closed network
	// connection", the call ending by timeout).
	_, next := checkLinked(t, s.Records(t, 2), outcome.SideA)
	if next.ATransport != "ws" || next.Trunk != "pbx" || next.Cause != outcome.CauseCalleeBye ||
		next.Media.AtoB.Packets < 25 || next.Media.BtoA.Packets < 25 {
		t.Errorf("record after the transfer: %+v", next)
	}
	s.SBC.WaitCallsIdle(t)
	web.Close()
	bob.Close()
}

// TestTransferBrowserTransfereeToBrowserRefused: the PBX REFERs a
// browser's call to bob, another browser. The transferee's ICE/DTLS session cannot move
// and bob cannot take the PBX's plain RTP side, so the transfer fails
// before bob is called: the PBX gets NOTIFY 488 and the call goes on as
// it was.
func TestTransferBrowserTransfereeToBrowserRefused(t *testing.T) {
	s := e2e.StartTransferSetup(t, 0, func(c *config.Config) {
		c.Users = []config.User{{Username: "bob", Password: "secret"}}
		c.Routes = append([]config.Route{{Name: "web-users", Match: config.Match{RURIUser: "^bob$"},
			Target: config.TargetRegistered}}, c.Routes...)
	})
	bob := newRegisteredWebPhone(t, s.SBC, "bob", "WEB2")
	web := e2e.NewWebPhone(t, s.SBC)
	web.Call("1000")
	e2e.WaitCount(t, "browser hears the pbx", web.Rx, "PBX1", 25)
	if res := e2e.PBXRefer(s.Pbx, "<sip:bob@example.com>"); res.StatusCode() != 202 {
		t.Fatalf("pbx REFER answered %d", res.StatusCode())
	}
	e2e.WaitFor(t, 10*time.Second, "pbx gets two NOTIFYs", func() bool { return len(s.Pbx.State().Notifies) == 2 })
	want := []string{"SIP/2.0 100 Trying", "SIP/2.0 488 Not Acceptable Here"}
	if st := s.Pbx.State(); !slices.Equal(st.Notifies, want) || st.Byes != 0 {
		t.Errorf("pbx: NOTIFYs %q and %d BYEs; want %q and none", st.Notifies, st.Byes, want)
	}
	e2e.WaitCount(t, "browser still hears the pbx", web.Rx, "PBX1", web.Rx.Marker("PBX1")+25)
	peer, _ := s.Pbx.Current()
	e2e.WaitCount(t, "pbx still hears the browser", peer.Rx, "WEB1", peer.Rx.Marker("WEB1")+25)
	if n, m := len(bob.SIP.Requests(sip.INVITE)), len(web.SIP.Requests(sip.INVITE)); n+m != 0 {
		t.Errorf("bob got %d INVITEs and the browser %d re-INVITEs; want none", n, m)
	}
	web.Hangup()
	web.Close()
	bob.Close()
	if recs := s.Records(t, 1); recs[0].TransferredTo != "" || recs[0].Cause != outcome.CauseCallerBye {
		t.Errorf("record: %+v", recs[0])
	}
	s.SBC.WaitCallsIdle(t)
}
