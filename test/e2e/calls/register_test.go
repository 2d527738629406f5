package calls

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ghettovoice/gosip/sip"
	"github.com/pion/webrtc/v4"

	"github.com/sbc-project/sbc/b2bua/sipmsg"
	"github.com/sbc-project/sbc/internal/config"
	"github.com/sbc-project/sbc/test/e2e"
	"github.com/sbc-project/sbc/test/sipptest"
)

// answerWithPion answers an INVITE's WebRTC offer the way a browser does
// and keeps the PeerConnection until the test ends.
func answerWithPion(t *testing.T, offer string) string {
	t.Helper()
	pc, err := e2e.WebAPI(t).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pc.Close() })
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		t.Fatalf("browser cannot take the SBC's offer: %v\n%s", err, offer)
	}
	ans, err := pc.CreateAnswer(nil)
	if err != nil {
		t.Fatal(err)
	}
	done := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(ans); err != nil {
		t.Fatal(err)
	}
	<-done
	return pc.LocalDescription().SDP
}

// TestRegisterLocal: the SBC as registrar: challenge, wrong password,
// too-short expiry, a good registration, and a call from a SIP phone that
// reaches the browser over its WebSocket and is answered with WebRTC.
func TestRegisterLocal(t *testing.T) {
	sbc := e2e.RegistrarSBC(t)
	web := e2e.DialUA(t, "WS", sbc.WS.String())
	if res := web.Register("alice", "wrong", 300); res.StatusCode() != 403 {
		t.Fatalf("wrong password: %d %s, want 403", res.StatusCode(), res.Reason())
	}
	if res := web.Register("mallory", "secret", 300); res.StatusCode() != 403 {
		t.Fatalf("unknown user: %d, want 403", res.StatusCode())
	}
	if got := sbc.App.Server().Stats().AuthFailures.Load(); got < 2 {
		t.Fatalf("auth failures counted: %d, want 2", got)
	}
	res := web.Register("alice", "secret", 10)
	if res.StatusCode() != 423 || sipmsg.Header(res, "Min-Expires") == "" {
		t.Fatalf("10 s registration: %d with Min-Expires %q, want 423", res.StatusCode(), sipmsg.Header(res, "Min-Expires"))
	}
	res = web.Register("alice", "secret", 300)
	if res.StatusCode() != 200 || !strings.Contains(sipmsg.Header(res, "Contact"), "expires=") {
		t.Fatalf("registration: %d, Contact %q", res.StatusCode(), sipmsg.Header(res, "Contact"))
	}
	if n := len(sbc.App.Bindings().List()); n != 1 {
		t.Fatalf("%d bindings, want 1", n)
	}

	phone := e2e.DialUA(t, "UDP", sbc.UDP.String())
	call := phone.Invite("alice", "")
	inv := web.ExpectReq("INVITE")
	if !strings.Contains(inv.Body(), "UDP/TLS/RTP/SAVPF") || !strings.Contains(inv.Body(), "a=fingerprint") {
		t.Fatalf("the browser got no WebRTC offer:\n%s", inv.Body())
	}
	web.RespondTo(inv, 200, answerWithPion(t, inv.Body()))
	ok := phone.Expect(200)
	call.Answered(ok)
	call.Ack()
	web.ExpectReq("ACK")
	call.Bye()
	web.RespondTo(web.ExpectReq("BYE"), 200, "")
	phone.Expect(200)
}

// TestRegisterForkAndConnectionLoss: two browsers register alice; a call
// rings both, the first to answer gets it and the other is cancelled.
// Closing a browser's WebSocket removes its binding; with none left a
// call gets 480.
func TestRegisterForkAndConnectionLoss(t *testing.T) {
	sbc := e2e.RegistrarSBC(t)
	web1, web2 := e2e.DialUA(t, "WS", sbc.WS.String()), e2e.DialUA(t, "WS", sbc.WS.String())
	for _, w := range []*e2e.UA{web1, web2} {
		w.Host = sipmsg.NewToken(10) + ".invalid" // each JsSIP instance has its own
		if res := w.Register("alice", "secret", 300); res.StatusCode() != 200 {
			t.Fatalf("register: %d", res.StatusCode())
		}
	}
	if n := len(sbc.App.Bindings().List()); n != 2 {
		t.Fatalf("%d bindings, want 2", n)
	}
	phone := e2e.DialUA(t, "UDP", sbc.UDP.String())
	call := phone.Invite("alice", "")
	inv1, inv2 := web1.ExpectReq("INVITE"), web2.ExpectReq("INVITE")
	// Both ring (a CANCEL may only follow a provisional answer).
	web1.RespondTo(inv1, 180, "")
	web2.RespondTo(inv2, 180, "")
	phone.Expect(180)
	web2.RespondTo(inv2, 200, answerWithPion(t, inv2.Body()))
	call.Answered(phone.Expect(200))
	call.Ack()
	web2.ExpectReq("ACK")
	cancel := web1.ExpectReq("CANCEL")
	web1.RespondTo(cancel, 200, "")
	web1.RespondTo(inv1, 487, "")
	call.Bye()
	web2.RespondTo(web2.ExpectReq("BYE"), 200, "")
	phone.Expect(200)

	web1.Close()
	web2.Close()
	deadline := time.Now().Add(5 * time.Second)
	for len(sbc.App.Bindings().List()) > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := len(sbc.App.Bindings().List()); n != 0 {
		t.Fatalf("%d bindings left after both WebSockets closed", n)
	}
	phone.Invite("alice", "")
	if res := phone.ExpectFinal(); res.StatusCode() != 480 {
		t.Fatalf("call to a user with no binding: %d, want 480", res.StatusCode())
	}
}

// TestRegisterRelay: REGISTER from the browser is relayed to the PBX with
// the SBC's own Contact; the PBX's challenge goes back to the browser and
// its answer forward. The PBX's call to that Contact reaches the browser
// over its WebSocket; closing the WebSocket de-registers at the PBX.
func TestRegisterRelay(t *testing.T) {
	pbx := e2e.NewUAS(t)
	sbc := e2e.StartSBC(t, e2e.SBCOptions{Trunks: e2e.PBXTrunk(pbx), Mutate: func(c *config.Config) {
		c.Routes = []config.Route{
			{Name: "pbx-to-web", Match: config.Match{Trunk: "pbx"}, Target: config.TargetRegistered},
			{Name: "web-to-pbx", Match: config.Match{Listener: "ws"}, Target: config.TargetTrunks, Trunks: []string{"pbx"},
				TrustedSources: []string{"127.0.0.0/8"}},
		}
	}})
	web := e2e.DialUA(t, "WS", sbc.WS.String())
	done := make(chan sip.Response, 1)
	go func() { done <- web.Register("alice", "pbx-secret", 300) }()

	reg := pbx.ExpectReq("REGISTER")
	contact := sipmsg.Header(reg, "Contact")
	if strings.Contains(contact, ".invalid") || !strings.Contains(contact, "127.0.0.1") {
		t.Fatalf("PBX saw the browser's Contact %q, want the SBC's", contact)
	}
	pbx.Respond(reg, 401, "Unauthorized", "", "",
		`WWW-Authenticate: Digest realm="pbx", nonce="abc123", algorithm=MD5, qop="auth"`)
	firstCallID := sipmsg.CallID(reg)
	reg = pbx.ExpectReq("REGISTER")
	if sipmsg.CallID(reg) != firstCallID {
		t.Errorf("the answer to the challenge went upstream with another Call-ID")
	}
	if a := sipmsg.Header(reg, "Authorization"); !strings.Contains(a, `username="alice"`) || !strings.Contains(a, `realm="pbx"`) {
		t.Fatalf("browser's credentials not relayed: %q", a)
	}
	contact = sipmsg.Header(reg, "Contact")
	pbx.Respond(reg, 200, "OK", "", "", "Contact: "+contact+";expires=120")
	if res := <-done; res.StatusCode() != 200 {
		t.Fatalf("browser's registration: %d %s", res.StatusCode(), res.Reason())
	}
	token := regexp.MustCompile(`sip:([^@]+)@`).FindStringSubmatch(contact)[1]

	// The PBX calls the SBC's Contact.
	callID := sipmsg.NewToken(8) + "@pbx"
	body := strings.ReplaceAll(e2e.UASSDP(), "\n", "\r\n")
	pbx.Write(fmt.Sprintf("INVITE sip:%s@%s SIP/2.0\nVia: SIP/2.0/UDP %s:%d;branch=z9hG4bK%s;rport\nMax-Forwards: 70\n"+
		"From: <sip:1000@pbx.example>;tag=pbx1\nTo: <sip:alice@example.com>\nCall-ID: %s\nCSeq: 1 INVITE\n"+
		"Contact: <sip:1000@%s:%d>\nContent-Type: application/sdp\nContent-Length: %d\n\n%s",
		token, sbc.UDP, e2e.PBXIP(), pbx.Port(), sipmsg.NewToken(6), callID, e2e.PBXIP(), pbx.Port(), len(body), e2e.UASSDP()))
	inv := web.ExpectReq("INVITE")
	if !strings.Contains(inv.Body(), "UDP/TLS/RTP/SAVPF") {
		t.Fatalf("browser got no WebRTC offer:\n%s", inv.Body())
	}
	web.RespondTo(inv, 200, answerWithPion(t, inv.Body()))
	ok := pbx.ExpectRes(200)
	if strings.Contains(ok.Body(), "SAVPF") || strings.Contains(ok.Body(), "ice-ufrag") {
		t.Fatalf("PBX got WebRTC attributes:\n%s", ok.Body())
	}
	web.ExpectReq("ACK")

	// The browser goes away: its binding and the PBX's go with it.
	web.Close()
	unreg := pbx.ExpectReq("REGISTER")
	if sipmsg.Header(unreg, "Expires") != "0" {
		t.Fatalf("de-registration with Expires %q", sipmsg.Header(unreg, "Expires"))
	}
	pbx.Respond(unreg, 200, "OK", "", "")
	if n := len(sbc.App.Bindings().List()); n != 0 {
		t.Fatalf("%d bindings after the WebSocket closed", n)
	}
}

// TestRegisterSIPpLocal: a SIPp phone registers with digest through the
// local registrar (SIPp answers only the first challenge and knows only
// MD5, so auth.algorithms puts MD5 first), then a call to alice reaches it at the address it
// registered from.
func TestRegisterSIPpLocal(t *testing.T) {
	sipptest.Require(t)
	sbc := e2e.RegistrarSBC(t, "MD5", "SHA-256")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	phone := sipptest.Start(ctx, t, sipptest.Options{Scenario: sipptest.ScenarioPath("register_answer_uac.xml"),
		Remote: sbc.UDP.String(), LocalIP: e2e.PBXIP(), Args: []string{"-s", "alice", "-au", "alice", "-ap", "secret", "-d", "6000",
			"-oocsf", sipptest.ScenarioPath("register_answer_ooc.xml")},
		Timeout: 30 * time.Second})
	deadline := time.Now().Add(10 * time.Second)
	for len(sbc.App.Bindings().List()) == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := len(sbc.App.Bindings().List()); n != 1 {
		t.Fatalf("%d bindings after SIPp registered, want 1", n)
	}
	caller := e2e.DialUA(t, "UDP", sbc.UDP.String())
	call := caller.Invite("alice", "")
	call.Answered(caller.Expect(200))
	call.Ack()
	call.Bye()
	caller.Expect(200)
	if err := phone.Wait().Check(1); err != nil {
		t.Error(err)
	}
}

// TestRegisterSIPpRelay: SIPp plays the PBX: its registrar challenges the
// browser's relayed REGISTER, and its caller then calls the SBC's Contact
// for that registration, which rings the browser on its WebSocket.
func TestRegisterSIPpRelay(t *testing.T) {
	sipptest.Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	registrarUAS := sipptest.Start(ctx, t, sipptest.Options{Scenario: sipptest.ScenarioPath("registrar_uas.xml"),
		LocalIP: e2e.PBXIP(), Timeout: 30 * time.Second})
	sbc := e2e.StartSBC(t, e2e.SBCOptions{
		Trunks: []e2e.TrunkSpec{{Name: "pbx", Addr: e2e.PBXIP(), Port: int(registrarUAS.Addr().Port())}},
		Mutate: func(c *config.Config) {
			c.Routes = []config.Route{
				{Name: "pbx-to-web", Match: config.Match{Trunk: "pbx"}, Target: config.TargetRegistered},
				{Name: "web-to-pbx", Match: config.Match{Listener: "ws"}, Target: config.TargetTrunks, Trunks: []string{"pbx"},
					TrustedSources: []string{"127.0.0.0/8"}},
			}
		}})
	web := e2e.DialUA(t, "WS", sbc.WS.String())
	if res := web.Register("alice", "pbx-secret", 300); res.StatusCode() != 200 {
		t.Fatalf("relayed registration: %d %s", res.StatusCode(), res.Reason())
	}
	if err := registrarUAS.Wait().Check(1); err != nil {
		t.Fatal(err)
	}
	bs := sbc.App.Bindings().List()
	if len(bs) != 1 {
		t.Fatalf("%d bindings, want 1", len(bs))
	}
	caller := sipptest.Start(ctx, t, sipptest.Options{Scenario: sipptest.ScenarioPath("call_caller_bye_uac.xml"),
		LocalIP: e2e.PBXIP(), Remote: sbc.UDP.String(), Args: []string{"-s", bs[0].Token, "-d", "300"},
		Timeout: 30 * time.Second})
	inv := web.ExpectReq("INVITE")
	web.RespondTo(inv, 200, answerWithPion(t, inv.Body()))
	web.ExpectReq("ACK")
	web.RespondTo(web.ExpectReq("BYE"), 200, "")
	if err := caller.Wait().Check(1); err != nil {
		t.Error(err)
	}
}
