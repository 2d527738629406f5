package e2e

import (
	"testing"

	"github.com/sbc-project/sbc/media/wrtc"
)

// LogMediaOnFailure registers a cleanup that, if t has failed, logs what
// the SBC relayed for each call still up (per direction: RTP relayed,
// dropped, refused and why) and the process's WebRTC counters (SRTP in
// and out, authentication failures, packets before the keys): a call
// that connected but carried no audio shows which hop lost it. Call it
// after starting what the calls depend on (a browser run), so that it
// runs first, while the calls are still up.
func LogMediaOnFailure(t *testing.T, sbc *SBC) {
	t.Helper()
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		for _, c := range sbc.App.Server().Calls() {
			m := c.Media
			t.Logf("call %s (%s, %s): a→b rtp %d dropped %d refused %d (source %d, pt %d, auth %d, junk %d) rtcp %d; "+
				"b→a rtp %d dropped %d refused %d (source %d, pt %d, auth %d, junk %d) rtcp %d",
				c.Record.ACallID, c.State, c.Codecs,
				m.AtoB.Packets, m.AtoB.Dropped, m.AtoB.Foreign, m.AtoB.RefusedSource, m.AtoB.RefusedPT, m.AtoB.RefusedAuth, m.AtoB.RefusedJunk, m.AtoB.RTCPPackets,
				m.BtoA.Packets, m.BtoA.Dropped, m.BtoA.Foreign, m.BtoA.RefusedSource, m.BtoA.RefusedPT, m.BtoA.RefusedAuth, m.BtoA.RefusedJunk, m.BtoA.RTCPPackets)
		}
		w := wrtc.ReadTotals()
		t.Logf("webrtc totals: %+v", w.Transports)
		t.Logf("webrtc mux totals: %+v", w.Mux)
	})
}
