package wrtc

import (
	"testing"
)

// touchSink is a countSink that is a Toucher, counting its touches.
type touchSink struct {
	countSink
	touches int
}

func (s *touchSink) Touch() uintptr { s.touches++; return uintptr(s.touches) }

// TestTouchReadsAheadOnly: the demux's read-ahead of an SRTP packet
// (poll.Toucher, through the Mux's socket) reaches the Sink of the
// packet's route and changes nothing: no packet is delivered or counted,
// and the replay window does not move, so the packet touched first is
// still delivered once, and a replay is still refused, for every profile.
func TestTouchReadsAheadOnly(t *testing.T) {
	for _, profile := range benchProfiles {
		t.Run(profileName(profile), func(t *testing.T) {
			k := newKeyedDemux(t, profile)
			sink := &touchSink{}
			k.d.routes.Store(newRouteTable([]Route{{SSRCs: []uint32{testSSRC}, Sink: sink}}))
			pkt, err := k.peer.EncryptRTP(nil, rtpPacket(t, testSSRC, testPT, 1, payloadN(1)), nil)
			if err != nil {
				t.Fatal(err)
			}
			for range 3 {
				k.d.touch(pkt)
			}
			if sink.touches != 3 || sink.rtp != 0 || k.c.snapshot() != (Counters{}) {
				t.Fatalf("after 3 touches: %d touches, %d delivered, counters %+v; want 3, 0, none", sink.touches, sink.rtp, k.c.snapshot())
			}
			k.d.handle(pkt)
			if sink.rtp != 1 {
				t.Fatalf("the touched packet was delivered %d times, want 1 (%+v)", sink.rtp, k.c.snapshot())
			}
			k.d.touch(pkt)
			k.d.handle(pkt)
			if c := k.c.snapshot(); sink.rtp != 1 || c.SRTPReplay != 1 {
				t.Fatalf("a replay, touched then handled: delivered %d, replays %d; want 1 and 1", sink.rtp, c.SRTPReplay)
			}
			stranger, err := k.peer.EncryptRTP(nil, rtpPacket(t, testSSRC+1, testPT, 1, payloadN(1)), nil)
			if err != nil {
				t.Fatal(err)
			}
			before := sink.touches
			k.d.touch(stranger)
			if sink.touches != before {
				t.Fatal("a packet no route claims touched the route's Sink")
			}
		})
	}
}
