package media

import (
	"time"

	"github.com/sbc-project/sbc/media/wrtc"
)

// watchWebRTC reports side's transport's changes: its ICE and DTLS
// milestones (the call's timeline), EventState once it is connected (its
// keys are worth replicating), EventEnd when it fails.
func (s *Session) watchWebRTC(side Side, t *wrtc.Transport) {
	t.OnICE(func(at time.Time, nominated bool) {
		kind := EventICEConnected
		if nominated {
			kind = EventICENominated
		}
		s.emit(Event{Kind: kind, From: side, At: at})
	})
	t.OnState(func(st wrtc.State, reason string) {
		switch st {
		case wrtc.StateConnected:
			s.emitConnected(side, t.Timings())
			s.emit(Event{Kind: EventState})
		case wrtc.StateFailed:
			s.logger().Info("webrtc media failed", "side", side.String(), "reason", reason)
			s.emit(Event{Kind: EventDTLSFailed, From: side, Cause: reason})
			s.emit(Event{Kind: EventEnd, Cause: reason})
		}
	})
}

// emitConnected reports a WebRTC side's DTLS handshake, with the times
// the transport measured: from its path up to the SRTP keys.
func (s *Session) emitConnected(side Side, tm wrtc.Timings) {
	iceUp := tm.Started.Add(tm.ICE)
	s.emit(Event{Kind: EventDTLSConnected, From: side, At: iceUp.Add(tm.DTLS), Started: iceUp,
		Role: tm.Role, Profile: tm.Profile})
}
