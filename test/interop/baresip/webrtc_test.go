package baresip

import (
	"fmt"
	"testing"
	"time"

	"github.com/ghettovoice/gosip/sip"
	"github.com/pion/webrtc/v4"

	"github.com/sbc-project/sbc/b2bua/sipmsg"
)

// TestBrowserCallsBaresip: a browser (pion, SIP over WSS, DTLS-SRTP)
// calls a baresip behind the SBC (plain RTP): each hears the other's
// tone, the CDR counts packets both ways.
func TestBrowserCallsBaresip(t *testing.T) {
	t.Parallel()
	needTools(t)
	ca := newCA(t)
	bob := startPhone(t, phoneOptions{user: "bob", ip: "127.0.1.41", tone: toneB, rtpBase: 22400})
	sbc := startSBC(t, ca.leaf(t, sbcIP), "24500-24999", trunk{name: "bob", user: "bob", uri: fmt.Sprintf("sip:%s:%d", bob.o.ip, bob.sipPort)})
	br := newBrowser(t, sbc, ca)
	offer, err := br.pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	sdp := br.localSDP(offer)
	callID, tag, to := sipmsg.NewToken(10), sipmsg.NewToken(4), "<sip:bob@example.com>"
	mark := bob.mark()
	br.write(br.request("INVITE", "sip:bob@example.com", callID, tag, to, 1, "", sdp))
	res := br.final(callID, 1)
	if res.StatusCode() != 200 {
		t.Fatalf("browser's INVITE answered %d", res.StatusCode())
	}
	if err := br.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: res.Body()}); err != nil {
		t.Fatalf("browser cannot take the answer: %v\n%s", err, res.Body())
	}
	target := sipmsg.ContactURI(res).String()
	to += ";tag=" + sipmsg.ToTag(res)
	br.write(br.request("ACK", target, callID, tag, to, 1, "", ""))
	bob.waitEvent(mark, "CALL_ESTABLISHED", 10*time.Second)
	waitAudio(t, sbc, callID, func() int { return br.heardBlocks(toneB) })
	br.write(br.request("BYE", target, callID, tag, to, 2, "", ""))
	if res := br.final(callID, 2); res.StatusCode() != 200 {
		t.Fatalf("browser's BYE answered %d", res.StatusCode())
	}
	bob.waitEvent(mark, "CALL_CLOSED", 5*time.Second)
	checkBrowserCall(t, sbc, callID, bob)
}

// TestBaresipCallsBrowser: a baresip calls a browser registered over
// WSS: each hears the other's tone, the CDR counts packets both ways.
func TestBaresipCallsBrowser(t *testing.T) {
	t.Parallel()
	needTools(t)
	ca := newCA(t)
	sbc := startSBC(t, ca.leaf(t, sbcIP), "25000-25499")
	alice := startPhone(t, phoneOptions{user: "alice", ip: "127.0.1.42", tone: toneA, rtpBase: 22500})
	br := newBrowser(t, sbc, ca)
	br.register(webPassword)
	mark := alice.mark()
	alice.do("dial", target("web", sbc.udp, ""))
	inv := br.next(sip.INVITE)
	if err := br.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: inv.Body()}); err != nil {
		t.Fatalf("browser cannot take the offer: %v\n%s", err, inv.Body())
	}
	answer, err := br.pc.CreateAnswer(nil)
	if err != nil {
		t.Fatal(err)
	}
	br.write(br.response(inv, 200, br.localSDP(answer)))
	br.next(sip.ACK)
	callID := alice.waitEvent(mark, "CALL_ESTABLISHED", 10*time.Second).ID
	waitAudio(t, sbc, callID, func() int { return br.heardBlocks(toneA) })
	alice.do("hangup", "")
	bye := br.next(sip.BYE)
	br.write(br.response(bye, 200, ""))
	alice.waitEvent(mark, "CALL_CLOSED", 5*time.Second)
	checkBrowserCall(t, sbc, callID, alice)
}

// waitAudio waits until the browser heard minAudio blocks of the
// phone's tone and the SBC relayed relayAudio packets each way.
func waitAudio(t *testing.T, sbc *sbcUnderTest, callID string, heard func() int) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		got, _ := sbc.relayed(callID)
		h := heard()
		if h >= minAudio && got[0] >= relayAudio && got[1] >= relayAudio {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("browser heard %d blocks of the phone's tone, SBC relayed %v: want %d and %d each way",
				h, got, minAudio, relayAudio)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// checkBrowserCall checks the phone's recording (the browser's tone) and
// the call's record.
func checkBrowserCall(t *testing.T, sbc *sbcUnderTest, callID string, ph *phone) {
	t.Helper()
	recs := ph.recordings()
	if len(recs) == 0 {
		t.Fatalf("%s recorded nothing", ph.o.user)
	}
	checkHeard(t, ph.o.user, recs[len(recs)-1], toneWeb, ph.o.tone, minAudio)
	r := sbc.waitRecord(t, callID)
	if r.Disposition != "ANSWERED" || r.AToBPackets < minAudio || r.BToAPackets < minAudio {
		t.Fatalf("CDR %s, want ANSWERED with at least %d packets each way", r, minAudio)
	}
	sbc.waitIdle(t)
}
