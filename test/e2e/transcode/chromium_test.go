package transcode

import (
	"strings"
	"testing"
	"time"

	"github.com/sbc-project/sbc/internal/config"
	"github.com/sbc-project/sbc/test/browser"
	"github.com/sbc-project/sbc/test/e2e"
)

// TestChromiumOpusToPCMAEcho: the web phone in headless Chromium, on a
// route with webrtc_codecs [opus], calls a far end that offers and
// answers only PCMA and echoes RTP. The browser negotiates Opus only (its
// inbound audio is decoded as audio/opus) and hears its own tone back
// with energy through two transcoders; a digit it sends (RFC 4733 at
// 48 kHz) reaches the far end as RFC 4733 at 8 kHz with the far end's
// payload type.
func TestChromiumOpusToPCMAEcho(t *testing.T) {
	needOpus(t)
	uas := e2e.NewUAS(t)
	sbc := e2e.StartSBC(t, e2e.SBCOptions{Trunks: e2e.PBXTrunk(uas), RFCTimers: true, Mutate: func(c *config.Config) {
		c.Trunks[0].Codecs = []string{"pcma"}
		c.Routes[len(c.Routes)-1].WebRTCCodecs = []string{"opus"}
	}})
	far := newFarEnd(t, udpOn(t, e2e.PBXIP()), "PCMA", 8, 101, true)
	steps := []browser.Step{
		browser.Do("wait", "status", "connected"),
		browser.Do("mark", "name", "calling"),
		browser.Do("call", "target", "4001"),
		browser.Do("wait", "call", "in-call"),
		browser.Do("audio", "packets", 100, "label", "echo"),
		browser.Do("inboundCodec", "label", "codec"),
		browser.Do("dtmf", "digits", "7"),
		browser.Do("mark", "name", "hangup"),
	}
	sc := e2e.NewScenario(t, browser.Phone{Name: "web", URL: e2e.PhoneURL(sbc.WSS, true, e2e.Autoconnect),
		Steps: append(steps, e2e.HangupSteps()...)})
	run := browser.Start(t, sc)
	run.WaitEvent("web", "mark", "calling", 60*time.Second)

	inv := uas.ExpectReq("INVITE")
	// telephone-event/8000 keeps the payload type Chromium gave it; the
	// far end answers with its own (101), which the SBC converts to.
	if got := rtpmaps(inv.Body()); len(got) != 2 || got[0] != "8 PCMA/8000" || !strings.HasSuffix(got[1], " telephone-event/8000") {
		t.Errorf("the far end was offered %q, want PCMA and telephone-event/8000\n%s", got, inv.Body())
	}
	uas.Respond(inv, 200, "OK", "pcma", sdpFor(e2e.PBXIP(), portOf(far.c), "8 PCMA/8000", "101 telephone-event/8000"))
	uas.ExpectReq("ACK")
	run.WaitEvent("web", "mark", "hangup", 60*time.Second)
	bye := uas.ExpectReq("BYE")
	uas.Respond(bye, 200, "OK", "", "")

	res := run.MustPass()["web"]
	e2e.CheckAudio(t, "web phone hearing its tone through PCMA", res.Stats(t, "echo"))
	if got := res.Text("codec"); got != "audio/opus" {
		t.Errorf("the browser decodes %q, want audio/opus", got)
	}
	ev, ok := far.endedEvent()
	if !ok {
		t.Fatal("no RFC 4733 event with payload type 101 reached the far end")
	}
	dur := int(ev[2])<<8 | int(ev[3])
	t.Logf("browser decodes %s; stats %+v; event %d of %d units at the far end", res.Text("codec"), res.Stats(t, "echo"), ev[0], dur)
	if ev[0] != 7 || dur < 400 || dur > 2400 {
		t.Errorf("event %d lasting %d units at the far end, want 7 lasting 50-300 ms at 8 kHz", ev[0], dur)
	}
	if a := far.audio(); len(a) < 8000 {
		t.Errorf("the far end received %d samples of PCMA, want a second or more", len(a))
	}
	sbc.WaitCallsIdle(t)
}
