package b2bua

import (
	"testing"

	"github.com/sbc-project/sbc/b2bua/outcome"
	"github.com/sbc-project/sbc/media"
	"github.com/sbc-project/sbc/media/wrtc"
)

// TestMediaReasonsAreCauses: the reasons a browser's media transport
// fails with reach the record as they are (onMediaEvent), so each must be
// the outcome cause of the same name.
func TestMediaReasonsAreCauses(t *testing.T) {
	for reason, cause := range map[string]outcome.Cause{
		wrtc.ReasonICETimeout:          outcome.CauseICETimeout,
		wrtc.ReasonDTLSTimeout:         outcome.CauseDTLSTimeout,
		wrtc.ReasonDTLSFailed:          outcome.CauseDTLSFailed,
		wrtc.ReasonFingerprintMismatch: outcome.CauseFingerprintMismatch,
		wrtc.ReasonICEDisconnected:     outcome.CauseICEDisconnected,
	} {
		if outcome.Cause(reason) != cause {
			t.Errorf("wrtc reason %q, outcome cause %q", reason, cause)
		}
	}
}

// TestRecordMedia: the record keeps every counter CDRs and metrics read,
// per direction.
func TestRecordMedia(t *testing.T) {
	f := media.Flow{Packets: 1, Bytes: 2, Lost: 3, JitterMs: 4, MOS: 5, SRTPFailed: 6,
		RefusedJunk: 7, RefusedPT: 8, RefusedAuth: 9, RefusedSource: 10, RTCPPackets: 11, Dropped: 12}
	want := outcome.Flow{Packets: 1, Bytes: 2, Lost: 3, JitterMs: 4, MOS: 5, SRTPFailed: 6,
		RefusedJunk: 7, RefusedPT: 8, RefusedAuth: 9, RefusedSource: 10}
	got := recordMedia(media.Stats{AtoB: f, BtoA: media.Flow{Packets: 99}})
	if got.AtoB != want || got.BtoA != (outcome.Flow{Packets: 99}) {
		t.Errorf("got %+v", got)
	}
}
