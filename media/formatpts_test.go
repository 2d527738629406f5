package media

import (
	"testing"

	"github.com/sbc-project/sbc/media/sdpconv"
)

// TestFormatPTsAsSDPConv: the payload types announce reads off a
// pass-through's format lists are those sdpconv reads into codecs from
// the same m-line (what announce used to describe the whole SDP for).
func TestFormatPTsAsSDPConv(t *testing.T) {
	for _, tc := range []struct{ name, mline string }{
		{"static", "m=audio 4000 RTP/AVP 0 8 18"},
		{"dynamic", "m=audio 4000 RTP/AVP 96 101 127"},
		{"out of range", "m=audio 4000 RTP/AVP 0 128 255 300"},
		{"duplicates", "m=audio 4000 RTP/AVP 8 8 0 8"},
		{"not numbers", "m=audio 4000 RTP/AVP x 0x1 -1 +8 9"},
		{"udptl", "m=image 4000 udptl t38"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n" + tc.mline + "\r\n"
			d, sd, err := sdpconv.ParseSession([]byte(body))
			if err != nil {
				t.Fatalf("ParseSession: %v", err)
			}
			want := ptsOf(d.Media[0])
			if got := formatPTs(sd.MediaDescriptions[0].MediaName.Formats); got != want {
				t.Fatalf("formatPTs = %v, sdpconv's codecs give %v", got, want)
			}
		})
	}
}
