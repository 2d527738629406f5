package calls

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ghettovoice/gosip/sip"

	"github.com/sbc-project/sbc/b2bua/sipmsg"
	"github.com/sbc-project/sbc/internal/config"
	"github.com/sbc-project/sbc/test/e2e"
)

// TestForking: the callee forks: a 180 and a 183 come from two To tags,
// then both branches answer. The caller sees one dialog; the SBC takes the
// first 2xx and ACKs then BYEs the second.
func TestForking(t *testing.T) {
	pbx := e2e.NewUAS(t)
	sbc := e2e.StartSBC(t, e2e.SBCOptions{Trunks: e2e.PBXTrunk(pbx)})
	ua := e2e.DialUA(t, "UDP", sbc.UDP.String())
	call := ua.Invite("1000", "")
	inv := pbx.ExpectReq("INVITE")
	pbx.Respond(inv, 180, "Ringing", "fork1", "")
	pbx.Respond(inv, 183, "Session Progress", "fork2", e2e.UASSDP())
	pbx.Respond(inv, 200, "OK", "fork2", e2e.UASSDP())
	pbx.Respond(inv, 200, "OK", "fork1", e2e.UASSDP())

	tags := map[string]bool{}
	var final sip.Response
	for final == nil {
		res, ok := ua.Recv(5 * time.Second).(sip.Response)
		if !ok {
			t.Fatal("caller got a request")
		}
		if res.StatusCode() > 100 {
			tags[sipmsg.ToTag(res)] = true
		}
		if res.StatusCode() >= 200 {
			final = res
		}
	}
	if len(tags) != 1 || final.StatusCode() != 200 {
		t.Fatalf("caller saw To tags %v and final %d; want one dialog answered", tags, final.StatusCode())
	}
	call.Answered(final)
	call.Ack()

	var ack1, ack2, bye1 bool
	defer func() {
		t.Logf("pbx saw ack1=%v ack2=%v bye1=%v\n%s", ack1, ack2, bye1, strings.Join(pbx.Log, "\n----\n"))
	}()
	for !(ack1 && ack2 && bye1) {
		req, ok := pbx.Next(5 * time.Second).(sip.Request)
		if !ok {
			continue
		}
		switch tag := sipmsg.ToTag(req); {
		case req.Method() == sip.ACK && tag == "fork2":
			ack2 = true
		case req.Method() == sip.ACK && tag == "fork1":
			ack1 = true
		case req.Method() == sip.BYE && tag == "fork1":
			bye1 = true
			pbx.Respond(req, 200, "OK", "", "")
		case req.Method() == sip.BYE:
			t.Fatalf("SBC hung up the answered fork %q", tag)
		}
	}
	call.Bye()
	bye := pbx.ExpectReq("BYE")
	if sipmsg.ToTag(bye) != "fork2" {
		t.Fatalf("BYE went to fork %q", sipmsg.ToTag(bye))
	}
	pbx.Respond(bye, 200, "OK", "", "")
	ua.Expect(200)
	sbc.WaitIdle(t)
}

// TestAnswerAfterCancel: the callee answers 200 although the SBC already
// sent it CANCEL: the caller gets 487 and the callee gets ACK and BYE.
func TestAnswerAfterCancel(t *testing.T) {
	pbx := e2e.NewUAS(t)
	sbc := e2e.StartSBC(t, e2e.SBCOptions{Trunks: e2e.PBXTrunk(pbx)})
	ua := e2e.DialUA(t, "UDP", sbc.UDP.String())
	call := ua.Invite("1000", "")
	inv := pbx.ExpectReq("INVITE")
	pbx.Respond(inv, 180, "Ringing", "late", "")
	ua.Expect(180)
	call.Cancel()
	cancel := pbx.ExpectReq("CANCEL")
	pbx.Respond(inv, 200, "OK", "late", e2e.UASSDP()) // crosses the CANCEL
	pbx.Respond(cancel, 200, "OK", "", "")

	var got200, got487 bool
	for !(got200 && got487) {
		res, ok := ua.Recv(5 * time.Second).(sip.Response)
		if !ok {
			continue
		}
		_, method := sipmsg.CSeq(res)
		switch {
		case method == sip.CANCEL && res.StatusCode() == 200:
			got200 = true
		case method == sip.INVITE && res.StatusCode() == 487:
			got487 = true
			call.AckFailure(sipmsg.ToTag(res))
		case method == sip.INVITE && res.StatusCode() >= 200:
			t.Fatalf("caller got %d after its CANCEL", res.StatusCode())
		}
	}
	pbx.ExpectReq("ACK")
	bye := pbx.ExpectReq("BYE")
	if sipmsg.ToTag(bye) != "late" {
		t.Fatalf("BYE to tag %q", sipmsg.ToTag(bye))
	}
	pbx.Respond(bye, 200, "OK", "", "")
	sbc.WaitIdle(t)
}

// TestInDialogBothWays: re-INVITE from the callee, UPDATE and INFO from the
// caller, INFO from the callee, BYE from the callee: each is re-originated
// on the other leg and its answer carried back.
func TestInDialogBothWays(t *testing.T) {
	pbx := e2e.NewUAS(t)
	sbc := e2e.StartSBC(t, e2e.SBCOptions{Trunks: e2e.PBXTrunk(pbx)})
	ua := e2e.DialUA(t, "UDP", sbc.UDP.String())
	call := ua.Invite("1000", "")
	inv := pbx.ExpectReq("INVITE")
	pbx.Respond(inv, 200, "OK", "pbx1", e2e.UASSDP(), "Allow: INVITE, ACK, BYE, CANCEL, UPDATE, INFO")
	call.Answered(ua.Expect(200))
	call.Ack()
	pbx.ExpectReq("ACK")
	d := pbx.Dialog(inv, "pbx1")

	// Callee re-INVITE with a new SDP (music on hold: sendonly).
	moh := strings.Replace(strings.Replace(e2e.UASSDP(), "1 1 IN", "1 2 IN", 1), "a=rtpmap:0 PCMU/8000\n", "a=rtpmap:0 PCMU/8000\na=sendonly\n", 1)
	d.Request("INVITE", "application/sdp", moh)
	reinv := ua.ExpectReq("INVITE")
	if !strings.Contains(reinv.Body(), "a=sendonly") || strings.Contains(reinv.Body(), e2e.PBXIP()) {
		t.Fatalf("caller got a re-INVITE without the hold or with the callee's address:\n%s", reinv.Body())
	}
	ua.RespondTo(reinv, 200, strings.Replace(e2e.CallerSDP(), "a=sendrecv", "a=recvonly", 1))
	res := pbx.ExpectRes(200)
	if !strings.Contains(res.Body(), "a=recvonly") {
		t.Fatalf("callee's re-INVITE answer lost the direction:\n%s", res.Body())
	}
	d.Ack()
	ua.ExpectReq("ACK")

	// Caller UPDATE with a new offer.
	call.Request("UPDATE", "application/sdp", strings.Replace(e2e.CallerSDP(), "2890844526 IN", "2890844527 IN", 1))
	upd := pbx.ExpectReq("UPDATE")
	pbx.Respond(upd, 200, "OK", "", e2e.UASSDP())
	if r := ua.Expect(200); r.Body() == "" {
		t.Fatal("UPDATE answer without SDP")
	}

	// INFO both ways: anything that is not DTMF is relayed as it is.
	call.Request("INFO", "application/x-test", "caller says hi\n")
	info := pbx.ExpectReq("INFO")
	if !strings.Contains(info.Body(), "caller says hi") {
		t.Fatalf("INFO body lost: %q", info.Body())
	}
	pbx.Respond(info, 200, "OK", "", "")
	ua.Expect(200)
	d.Request("INFO", "application/x-test", "callee says hi\n")
	info = ua.ExpectReq("INFO")
	if !strings.Contains(info.Body(), "callee says hi") {
		t.Fatalf("INFO body lost: %q", info.Body())
	}
	ua.RespondTo(info, 200, "")
	pbx.ExpectRes(200)
	// A DTMF INFO toward a side that negotiated no telephone-event cannot
	// be played as RFC 4733: it is relayed as INFO (TestWebRTCDTMF covers
	// the conversion).
	call.Request("INFO", "application/dtmf-relay", "Signal=5\nDuration=160\n")
	info = pbx.ExpectReq("INFO")
	if !strings.Contains(info.Body(), "Signal=5") {
		t.Fatalf("DTMF INFO body lost: %q", info.Body())
	}
	pbx.Respond(info, 200, "OK", "", "")
	ua.Expect(200)

	// A refused re-INVITE keeps the call up. (A re-offer that only bumps
	// the o= version changes nothing the caller must know and would be
	// answered by the SBC itself; this one changes the codec.)
	d.Request("INVITE", "application/sdp", strings.Replace(strings.Replace(e2e.UASSDP(), "1 1 IN", "1 3 IN", 1),
		"RTP/AVP 0\na=rtpmap:0 PCMU/8000", "RTP/AVP 8\na=rtpmap:8 PCMA/8000", 1))
	reinv = ua.ExpectReq("INVITE")
	ua.RespondTo(reinv, 488, "")
	pbx.ExpectRes(488)
	d.Ack()

	// Callee hangs up.
	d.Request("BYE", "", "")
	bye := ua.ExpectReq("BYE")
	ua.RespondTo(bye, 200, "")
	pbx.ExpectRes(200)
	sbc.WaitIdle(t)
}

// TestSessionTimers: RFC 4028 on the side that asked. With
// refresher=uas the SBC refreshes the caller's leg itself (UPDATE, as the
// caller allows it) without involving the callee; with refresher=uac and no
// refresh from the caller the SBC ends the call on both legs.
func TestSessionTimers(t *testing.T) {
	short := func(c *config.Config) {
		c.SIP.MinSE = time.Second
		c.SIP.SessionExpires = 2 * time.Second
	}
	t.Run("sbc refreshes", func(t *testing.T) {
		pbx := e2e.NewUAS(t)
		sbc := e2e.StartSBC(t, e2e.SBCOptions{Trunks: e2e.PBXTrunk(pbx), Mutate: short, NoValidate: true})
		ua := e2e.DialUA(t, "UDP", sbc.UDP.String())
		call := ua.Invite("1000", "Session-Expires: 2;refresher=uas\nSupported: timer\nAllow: INVITE, ACK, BYE, CANCEL, UPDATE\n")
		inv := pbx.ExpectReq("INVITE")
		if se := sipmsg.Header(inv, "Session-Expires"); se == "" {
			t.Error("callee's INVITE does not ask for a session timer")
		}
		pbx.Respond(inv, 200, "OK", "pbx1", e2e.UASSDP())
		res := ua.Expect(200)
		if se := sipmsg.Header(res, "Session-Expires"); !strings.Contains(se, "refresher=uas") {
			t.Fatalf("answer Session-Expires %q", se)
		}
		call.Answered(res)
		call.Ack()
		for i := 0; i < 2; i++ {
			upd := ua.ExpectReq("UPDATE")
			ua.RespondTo(upd, 200, "", "Session-Expires: 2;refresher=uac")
		}
		call.Bye()
		bye := pbx.ExpectReq("BYE") // the refreshes never reached the callee
		for _, m := range pbx.Log {
			if strings.HasPrefix(m, "UPDATE") || strings.Count(m, "INVITE sip:") > 1 {
				t.Fatalf("callee saw a refresh:\n%s", m)
			}
		}
		pbx.Respond(bye, 200, "OK", "", "")
		ua.Expect(200)
		sbc.WaitIdle(t)
	})
	t.Run("caller never refreshes", func(t *testing.T) {
		pbx := e2e.NewUAS(t)
		sbc := e2e.StartSBC(t, e2e.SBCOptions{Trunks: e2e.PBXTrunk(pbx), Mutate: short, NoValidate: true})
		ua := e2e.DialUA(t, "UDP", sbc.UDP.String())
		call := ua.Invite("1000", "Session-Expires: 2;refresher=uac\nSupported: timer\n")
		inv := pbx.ExpectReq("INVITE")
		pbx.Respond(inv, 200, "OK", "pbx1", e2e.UASSDP())
		call.Answered(ua.Expect(200))
		call.Ack()
		start := time.Now()
		bye := ua.ExpectReq("BYE")
		ua.RespondTo(bye, 200, "")
		pbxBye := pbx.ExpectReq("BYE")
		pbx.Respond(pbxBye, 200, "OK", "", "")
		if d := time.Since(start); d > 4*time.Second {
			t.Errorf("session ended after %v, want about 1.3s", d)
		}
		sbc.WaitIdle(t)
	})
	t.Run("too small", func(t *testing.T) {
		sbc := e2e.StartSBC(t, e2e.SBCOptions{})
		ua := e2e.DialUA(t, "UDP", sbc.UDP.String())
		ua.Invite("echo", "Session-Expires: 30\n")
		res := ua.Expect(422)
		if sipmsg.Header(res, "Min-SE") != "90" {
			t.Fatalf("422 Min-SE %q", sipmsg.Header(res, "Min-SE"))
		}
		sbc.WaitIdle(t)
	})
}

// TestRefusals: what a caller gets back for a request the SBC will not
// take: no route, a malformed request (with the reason), an unknown dialog.
func TestRefusals(t *testing.T) {
	sbc := e2e.StartSBC(t, e2e.SBCOptions{}) // only the echo route
	ua := e2e.DialUA(t, "UDP", sbc.UDP.String())

	call := ua.Invite("5551234", "")
	res := ua.Expect(404)
	if res.Reason() != "Not Found" {
		t.Errorf("no route: %d %s", res.StatusCode(), res.Reason())
	}
	call.AckFailure(sipmsg.ToTag(res))

	ua.Send("INVITE sip:echo@127.0.0.1 SIP/2.0\nVia: SIP/2.0/UDP " + e2e.CallerIP() + ":5999;branch=z9hG4bKbad1;rport\n" +
		"From: <sip:a@caller.example>;tag=1\nTo: <sip:echo@127.0.0.1>\nCall-ID: bad-length@caller\n" +
		"CSeq: 1 INVITE\nContent-Length: 500\n\nv=0\n")
	if res := ua.Expect(400); res.Reason() != "Content-Length larger than body" {
		t.Errorf("malformed: %d %s", res.StatusCode(), res.Reason())
	}

	ua.Send("BYE sip:sbc@127.0.0.1 SIP/2.0\nVia: SIP/2.0/UDP " + e2e.CallerIP() + ":5999;branch=z9hG4bKbye1;rport\n" +
		"From: <sip:a@caller.example>;tag=1\nTo: <sip:echo@127.0.0.1>;tag=nosuch\nCall-ID: nosuch@caller\n" +
		"CSeq: 2 BYE\nContent-Length: 0\n\n")
	ua.Expect(481)
	if n := sbc.App.Server().Stats().BadMessages.Load(); n != 1 {
		t.Errorf("bad messages counted: %d", n)
	}
	sbc.WaitIdle(t)
}

// TestMaxForwards: the hop limit is checked in one place whatever policy
// stages run: an INVITE with Max-Forwards 0 gets 483 and no call; an
// OPTIONS with 0 is answered; an INVITE with 1 reaches the callee with 0.
func TestMaxForwards(t *testing.T) {
	pbx := e2e.NewUAS(t)
	sbc := e2e.StartSBC(t, e2e.SBCOptions{Trunks: e2e.PBXTrunk(pbx), Mutate: func(c *config.Config) {
		c.Policy.Chain = nil // the check does not rest on the sanity stage
	}})
	ua := e2e.DialUA(t, "UDP", sbc.UDP.String())
	send := func(method string, mf int) {
		body := ""
		if method == "INVITE" {
			body = strings.ReplaceAll(e2e.CallerSDP(), "\n", "\r\n")
		}
		ua.Send(fmt.Sprintf("%s sip:1000@%s SIP/2.0\nVia: SIP/2.0/UDP %s;branch=z9hG4bK%s;rport\nMax-Forwards: %d\n"+
			"From: <sip:alice@caller.example>;tag=%s\nTo: <sip:1000@%s>\nCall-ID: %s\nCSeq: 1 %s\n"+
			"Contact: <sip:alice@%s>\nContent-Type: application/sdp\nContent-Length: %d\n\n",
			method, sbc.UDP, ua.Host, sipmsg.NewToken(6), mf, sipmsg.NewToken(4), sbc.UDP, sipmsg.NewToken(8), method,
			ua.Host, len(body)) + strings.ReplaceAll(body, "\r\n", "\n"))
	}
	send("INVITE", 0)
	if res := ua.ExpectFinal(); res.StatusCode() != 483 {
		t.Fatalf("INVITE with Max-Forwards 0: %d %s, want 483", res.StatusCode(), res.Reason())
	}
	send("OPTIONS", 0)
	if res := ua.ExpectFinal(); res.StatusCode() != 200 {
		t.Fatalf("OPTIONS with Max-Forwards 0: %d %s, want 200", res.StatusCode(), res.Reason())
	}
	send("INVITE", 1)
	inv := pbx.ExpectReq("INVITE")
	if mf := sipmsg.Header(inv, "Max-Forwards"); mf != "0" {
		t.Errorf("callee got Max-Forwards %q, want 0", mf)
	}
	pbx.Respond(inv, 486, "Busy Here", "pbx1", "")
	pbx.ExpectReq("ACK")
	ua.ExpectFinal()
}
