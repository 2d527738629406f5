package media

import (
	"strings"
	"testing"

	"github.com/sbc-project/sbc/media/sdpconv"
)

// chromeOffer is a WebRTC offer as Chrome writes it (trimmed): BUNDLE,
// ICE, DTLS, rtcp-mux, UDP/TLS/RTP/SAVPF only.
var chromeOffer = []byte(strings.Join([]string{
	"v=0",
	"o=- 4611731400430051336 2 IN IP4 127.0.0.1",
	"s=-",
	"t=0 0",
	"a=group:BUNDLE 0",
	"a=extmap-allow-mixed",
	"a=msid-semantic: WMS stream",
	"m=audio 9 UDP/TLS/RTP/SAVPF 111 0 8 126",
	"c=IN IP4 0.0.0.0",
	"a=rtcp:9 IN IP4 0.0.0.0",
	"a=candidate:842163049 1 udp 1677729535 198.51.100.7 52764 typ srflx raddr 10.0.0.5 rport 52764 generation 0",
	"a=ice-ufrag:8hhY",
	"a=ice-pwd:asd88fgpdd777uzjYhagZg",
	"a=ice-options:trickle",
	"a=fingerprint:sha-256 D1:2C:BE:AD:C4:F6:64:5C:25:16:11:9C:AF:E7:0F:73:79:36:4E:9C:1E:15:54:39:0C:06:8B:ED:96:86:00:39",
	"a=setup:actpass",
	"a=mid:0",
	"a=sendrecv",
	"a=msid:stream track",
	"a=rtcp-mux",
	"a=rtpmap:111 opus/48000/2",
	"a=rtcp-fb:111 transport-cc",
	"a=fmtp:111 minptime=10;useinbandfec=1",
	"a=rtpmap:0 PCMU/8000",
	"a=rtpmap:8 PCMA/8000",
	"a=rtpmap:126 telephone-event/8000",
	"a=ssrc:3735928559 cname:4TOk42mSjXCkVIa6",
	"",
}, "\r\n"))

// FuzzOfferAnswer feeds arbitrary bodies to Offer (from A) then Answer
// (from B). Nothing may panic, and whatever the session produces must
// parse and keep the m-line count of what it was given.
func FuzzOfferAnswer(f *testing.F) {
	// Seeds: testdata/fuzz/FuzzOfferAnswer (SIPp-like calls, holds, a
	// Chrome offer, garbage).
	m := newTestManager(f, 64, public, nil)
	f.Fuzz(func(t *testing.T, offer, answer []byte) {
		s := m.NewSession("fuzz")
		defer s.Close()
		out, err := s.Offer(SideA, offer)
		if err != nil {
			return
		}
		checkFuzzOutput(t, offer, out)
		checkAnnounced(t, s, SideB, out)
		if out, err = s.Answer(SideB, answer); err == nil {
			checkFuzzOutput(t, answer, out)
			checkAnnounced(t, s, SideA, out)
		}
	})
}

// checkAnnounced holds announce to what it did before it read a pass-
// through's rendered description instead of parsing the body sent: each
// endpoint facing to takes the payload types of the body sent to it, as
// that body parses (none when it does not).
func checkAnnounced(t *testing.T, s *Session, to Side, out []byte) {
	t.Helper()
	d, err := sdpconv.Parse(out)
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, st := range s.streams {
		e, ok := endOf(st, to)
		if !ok {
			continue
		}
		var want ptSet
		if err == nil && i < len(d.Media) {
			want = ptsOf(d.Media[i])
		}
		if e.sent != want {
			t.Fatalf("m-line %d toward %s: payload types %x announced, the body sent lists %x", i, to, e.sent, want)
		}
	}
}

func checkFuzzOutput(t *testing.T, in, out []byte) {
	t.Helper()
	sdIn, sdOut := parse(t, in), parse(t, out)
	if len(sdIn.MediaDescriptions) != len(sdOut.MediaDescriptions) {
		t.Fatalf("m-lines: %d in, %d out", len(sdIn.MediaDescriptions), len(sdOut.MediaDescriptions))
	}
	// The sender's ICE credentials and candidates never cross: toward a
	// browser the SBC writes its own.
	var secret []string
	for _, md := range sdIn.MediaDescriptions {
		for _, a := range md.Attributes {
			if (a.Key == "candidate" || a.Key == "ice-ufrag" || a.Key == "ice-pwd") && len(a.Value) >= 4 {
				secret = append(secret, a.Value)
			}
		}
	}
	for _, md := range sdOut.MediaDescriptions {
		for _, a := range md.Attributes {
			for _, v := range secret {
				if a.Value == v {
					t.Fatalf("a=%s:%s passed through", a.Key, v)
				}
			}
		}
	}
}
