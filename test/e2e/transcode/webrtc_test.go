package transcode

import (
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ghettovoice/gosip/sip"

	"github.com/sbc-project/sbc/internal/config"
	"github.com/sbc-project/sbc/test/e2e"
)

// TestOpusBrowserToG722Trunk: a browser that offers only Opus (pion, over
// WebSocket) calls through a trunk that takes only G.722. The trunk is
// offered G.722 and telephone-event/8000, the browser answered Opus; a
// 1 kHz tone crosses each way with its frequency and energy (Opus 48 kHz
// ⇄ G.722 16 kHz, resampled), and a digit the browser sends as RFC 4733
// at 48 kHz reaches the trunk with the trunk's payload type, its
// duration in 8 kHz units.
func TestOpusBrowserToG722Trunk(t *testing.T) {
	needOpus(t)
	uas := e2e.NewUAS(t)
	sbc := e2e.StartSBC(t, e2e.SBCOptions{Trunks: e2e.PBXTrunk(uas), Mutate: func(c *config.Config) {
		c.Trunks[0].Codecs = []string{"g722"}
		c.Routes[len(c.Routes)-1].WebRTCCodecs = []string{"opus"}
	}})
	b := newOpusPeer(t)
	sipc := e2e.NewSIPClient(t, "WS", sbc.WS.String())
	dlg := sipc.Invite("3001", b.offer(false))

	inv := uas.ExpectReq("INVITE")
	if got := rtpmaps(inv.Body()); !slices.Equal(got, []string{"9 G722/8000", "101 telephone-event/8000"}) {
		t.Fatalf("the trunk was offered %q, want G.722 and telephone-event/8000\n%s", got, inv.Body())
	}
	far := newFarEnd(t, udpOn(t, e2e.PBXIP()), "G722", 9, 101, false)
	uas.Respond(inv, 200, "OK", "g722", sdpFor(e2e.PBXIP(), portOf(far.c), "9 G722/8000", "101 telephone-event/8000"))
	res := dlg.Await(1, 20*time.Second, nil)
	if res.StatusCode() != 200 {
		t.Fatalf("call answered %d %s", res.StatusCode(), res.Reason())
	}
	dlg.Established(res)
	if got := rtpmaps(res.Body()); len(got) == 0 || !strings.HasPrefix(got[0], "111 opus/48000") ||
		slices.ContainsFunc(got, func(m string) bool { return strings.Contains(m, "G722") }) {
		t.Fatalf("the browser was answered %q, want Opus first and no G.722\n%s", got, res.Body())
	}
	b.answer(res.Body())
	dlg.Ack()
	uas.ExpectReq("ACK")

	stop := make(chan struct{})
	defer close(stop)
	go b.send(stop)
	toFar := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: mediaPort(t, inv.Body())}
	go streamTone(t, far.c, toFar, "G722", 9, stop)

	// A second of audio each way; the first 200 ms (codec start-up,
	// resampler delay) left out of the measure.
	e2e.WaitFor(t, 15*time.Second, "a second of the trunk's tone at the browser", func() bool { return len(b.received()) >= 48000 })
	checkTone(t, "trunk → browser, G.722 as Opus", b.received()[9600:48000], 48000)
	e2e.WaitFor(t, 15*time.Second, "a second of the browser's tone at the trunk", func() bool { return len(far.audio()) >= 16000 })
	checkTone(t, "browser → trunk, Opus as G.722", far.audio()[3200:16000], 16000)

	b.digit <- '5'
	var ev []byte
	e2e.WaitFor(t, 10*time.Second, "the digit at the trunk as RFC 4733", func() bool {
		var ok bool
		ev, ok = far.endedEvent()
		return ok
	})
	if dur := int(ev[2])<<8 | int(ev[3]); ev[0] != 5 || dur < 700 || dur > 900 {
		t.Errorf("event %d lasting %d units at the trunk, want 5 lasting ~800 (100 ms at 8 kHz)", ev[0], dur)
	}

	// An ICE restart (a browser changing networks) is answered by the SBC
	// itself, from what the browser was told of the trunk: Opus, and no
	// re-INVITE toward the trunk; the audio goes on.
	re := dlg.Request("INVITE", "application/sdp", b.offer(true))
	if re.StatusCode() != 200 || !strings.Contains(re.Body(), "opus/48000") {
		t.Fatalf("ICE restart answered %d %s\n%s", re.StatusCode(), re.Reason(), re.Body())
	}
	b.answer(re.Body())
	heard := len(b.received())
	e2e.WaitFor(t, 15*time.Second, "the trunk's tone after the ICE restart", func() bool { return len(b.received()) >= heard+24000 })
	checkTone(t, "trunk → browser after the ICE restart", b.received()[heard+4800:heard+24000], 48000)

	dlg.Bye()
	bye := uas.ExpectReq("BYE")
	uas.Respond(bye, 200, "OK", "", "")
}

// TestPCMACallerToOpusBrowser: the other way round. A SIP phone offering
// only PCMA calls a registered browser that speaks only Opus, on a route
// with webrtc_codecs [opus]: the browser is offered Opus, the phone
// answered PCMA, and a 1 kHz tone crosses each way.
func TestPCMACallerToOpusBrowser(t *testing.T) {
	needOpus(t)
	sbc := e2e.StartSBC(t, e2e.SBCOptions{Mutate: func(c *config.Config) {
		c.Users = []config.User{{Username: "alice", Password: "secret"}}
		c.Routes = []config.Route{{Name: "web", Target: config.TargetRegistered, WebRTCCodecs: []string{"opus"}}}
	}})
	b := newOpusPeer(t)
	ws := e2e.DialUAFrom(t, "WS", sbc.WS.String(), e2e.IP(72))
	if res := ws.Register("alice", "secret", 300); res.StatusCode() != 200 {
		t.Fatalf("register: %d %s", res.StatusCode(), res.Reason())
	}
	offered := make(chan string, 1)
	sipc := e2e.StartSIPClient(t, ws)
	sipc.Handle(func(req sip.Request) (int, string, string) {
		if req.Method() != sip.INVITE || req.Body() == "" {
			return 200, "", ""
		}
		select {
		case offered <- req.Body():
		default:
		}
		ans, err := b.answerOffer(req.Body())
		if err != nil {
			t.Errorf("browser: %v", err)
			return 488, "", ""
		}
		return 200, "application/sdp", ans
	})

	ua := e2e.DialUA(t, "UDP", sbc.UDP.String())
	phone := udpOn(t, e2e.CallerIP())
	call := invite(ua, "alice", sdpFor(e2e.CallerIP(), portOf(phone), "8 PCMA/8000", "101 telephone-event/8000"))
	res := ua.Expect(200)
	call.Answered(res)
	call.Ack()
	if got := rtpmaps(res.Body()); len(got) == 0 || got[0] != "8 PCMA/8000" {
		t.Fatalf("the phone was answered %q, want PCMA\n%s", got, res.Body())
	}
	if got := rtpmaps(<-offered); len(got) == 0 || !strings.Contains(got[0], " opus/48000") ||
		slices.ContainsFunc(got, func(m string) bool { return strings.Contains(m, "PCM") }) {
		t.Fatalf("the browser was offered %q, want Opus and no G.711", got)
	}

	stop := make(chan struct{})
	defer close(stop)
	go b.send(stop)
	toSBC := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: mediaPort(t, res.Body())}
	go streamTone(t, phone, toSBC, "PCMA", 8, stop)
	e2e.WaitFor(t, 15*time.Second, "a second of the phone's tone at the browser", func() bool { return len(b.received()) >= 48000 })
	checkTone(t, "phone → browser, PCMA as Opus", b.received()[9600:48000], 48000)
	checkTone(t, "browser → phone, Opus as PCMA", receiveTone(t, phone, "PCMA", 8, 50)[1600:], 8000)
	call.Bye()
	ua.Expect(200)
	// The browser's leg ends too before its connection closes.
	e2e.WaitFor(t, 10*time.Second, "the BYE at the browser", func() bool { return len(sipc.Requests(sip.BYE)) > 0 })
	sbc.WaitCallsIdle(t)
}
