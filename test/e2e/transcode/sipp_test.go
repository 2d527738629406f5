package transcode

import (
	"context"
	"testing"
	"time"

	"github.com/sbc-project/sbc/internal/config"
	"github.com/sbc-project/sbc/test/browser"
	"github.com/sbc-project/sbc/test/e2e"
	"github.com/sbc-project/sbc/test/sipptest"
)

// TestChromiumOpusToSIPpPCMAEcho: the issue's own set-up with an
// independent far end. Headless Chromium on a route with webrtc_codecs
// [opus] calls through a trunk with codecs [pcma] to a SIPp UAS that
// checks the offer names PCMA first, answers PCMA only and echoes the RTP
// it gets (-rtp_echo). The browser decodes Opus and hears its own tone
// back with energy: through the SBC's Opus decoder, PCMA encoder, SIPp's
// echo, PCMA decoder and Opus encoder. The record says transcoded, with
// the two codecs.
func TestChromiumOpusToSIPpPCMAEcho(t *testing.T) {
	needOpus(t)
	sipptest.Require(t)
	// SIPp waits for a browser that may take half a minute to start on
	// a loaded machine (see e2e.StartSIPpEcho).
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	mp := e2e.EvenFreePort(t, e2e.PBXIP())
	uas := sipptest.Start(ctx, t, sipptest.Options{Scenario: sipptest.ScenarioPath("call_caller_bye_pcma_uas.xml"),
		LocalIP: e2e.PBXIP(), Args: []string{"-rtp_echo", "-mi", e2e.PBXIP(), "-mp", e2e.Itoa(mp)}, Timeout: 120 * time.Second})
	sinks := e2e.NewCDRSinks(t, "")
	sbc := e2e.StartSBC(t, e2e.SBCOptions{Trunks: []e2e.TrunkSpec{{Name: "pbx", Addr: e2e.PBXIP(), Port: int(uas.Addr().Port())}},
		Mutate: func(c *config.Config) {
			sinks.Apply(c)
			c.Trunks[0].Codecs = []string{"pcma"}
			c.Routes[len(c.Routes)-1].WebRTCCodecs = []string{"opus"}
		}})
	steps := []browser.Step{
		browser.Do("wait", "status", "connected"),
		browser.Do("call", "target", "1000"),
		browser.Do("wait", "call", "in-call"),
		browser.Do("audio", "packets", 100, "label", "sipp"),
		browser.Do("inboundCodec", "label", "codec"),
	}
	sc := e2e.NewScenario(t, browser.Phone{Name: "web", URL: e2e.PhoneURL(sbc.WSS, true, e2e.Autoconnect),
		Steps: append(steps, e2e.HangupSteps()...)})
	res := browser.Start(t, sc).MustPass()["web"]
	e2e.CheckAudio(t, "web phone hearing its tone through SIPp's PCMA echo", res.Stats(t, "sipp"))
	if got := res.Text("codec"); got != "audio/opus" {
		t.Errorf("the browser decodes %q, want audio/opus", got)
	}
	if err := uas.Wait().Check(1); err != nil {
		t.Error(err)
	}
	sbc.WaitCallsIdle(t)
	r := e2e.OnlyRecord(t, sbc, sinks)
	if !r.Transcoded || r.BCodec != "PCMA/8000" || r.AToBPackets == 0 || r.BToAPackets == 0 {
		t.Errorf("cdr: transcoded %v, a_codec %q, b_codec %q, packets %d/%d; want transcoded to PCMA/8000 with media both ways",
			r.Transcoded, r.ACodec, r.BCodec, r.AToBPackets, r.BToAPackets)
	}
	t.Logf("browser decodes %s, stats %+v; cdr a_codec %s b_codec %s", res.Text("codec"), res.Stats(t, "sipp"), r.ACodec, r.BCodec)
}
