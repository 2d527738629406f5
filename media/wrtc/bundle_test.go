package wrtc

import (
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// TestBundle: audio and video m-lines from pion share one transport; RTP is
// routed by SSRC (audio) and by payload type (video), RTCP by the SSRCs it
// names, and our RTCP reaches pion's video sender.
func TestBundle(t *testing.T) {
	m := newTestMux(t, false)
	tr := newTestTransport(t, m)
	states := watchState(tr)
	pc := newPeer(t, peerOpts{})
	audio := addTrack(t, pc, "opus")
	video := addTrack(t, pc, "vp8")
	pli := peerRTCP(t, pc, webrtc.RTPCodecTypeVideo)
	rm := answerPion(t, tr, pc, offerFrom(t, pc, false), []mediaLine{opusLine, vp8Line})
	if len(rm[0].ssrcs) == 0 {
		t.Fatal("pion's audio m-line has no a=ssrc")
	}
	audioSink, videoSink := newChanSink(), newChanSink()
	tr.SetRoutes([]Route{
		{PTs: []uint8{opusLine.pt}, SSRCs: rm[0].ssrcs, Sink: audioSink},
		{PTs: []uint8{vp8Line.pt}, SSRCs: []uint32{vp8Line.ssrc}, Sink: videoSink}, // PT routing for pion's video; our SSRC for RTCP
	})
	states.connected(t)

	var seqA, seqV uint16
	expectPeerToUs(t, audio, audioSink, opusLine.pt, &seqA)
	expectPeerToUs(t, video, videoSink, vp8Line.pt, &seqV)
	for _, c := range []struct {
		name string
		sink *chanSink
		pt   uint8
	}{{"audio", audioSink, opusLine.pt}, {"video", videoSink, vp8Line.pt}} {
		for len(c.sink.rtp) > 0 {
			var p rtp.Packet
			if err := p.Unmarshal(<-c.sink.rtp); err != nil || p.PayloadType != c.pt {
				t.Fatalf("%s sink got PT %d (err %v)", c.name, p.PayloadType, err)
			}
		}
	}

	// RTCP from pion: a receiver report about our video SSRC belongs to the
	// video route; one naming no known SSRC falls back to the first route.
	rr := &rtcp.ReceiverReport{SSRC: 0xdead0001, Reports: []rtcp.ReceptionReport{{SSRC: vp8Line.ssrc}}}
	stray := &rtcp.ReceiverReport{SSRC: 0xdead0002}
	expectRTCP(t, pc, rr, videoSink, 0xdead0001)
	expectRTCP(t, pc, stray, audioSink, 0xdead0002)

	// RTCP from us: a PLI for pion's video sender.
	deadline := time.Now().Add(waitLong)
	for {
		raw, err := (&rtcp.PictureLossIndication{SenderSSRC: vp8Line.ssrc, MediaSSRC: videoSSRC(t, pc)}).Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if err := tr.WriteRTCP(raw); err != nil {
			t.Fatalf("WriteRTCP: %v", err)
		}
		select {
		case <-pli:
			if c := tr.Counters(); c.RTCPOut == 0 || c.RTCPIn < 2 {
				t.Fatalf("counters %+v", c)
			}
			return
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("pion's video sender got no PLI")
		}
	}
}

// expectRTCP has pion send pkt until sink gets an RTCP packet whose sender
// SSRC is sender.
func expectRTCP(t *testing.T, pc *webrtc.PeerConnection, pkt rtcp.Packet, sink *chanSink, sender uint32) {
	t.Helper()
	deadline := time.Now().Add(waitLong)
	for time.Now().Before(deadline) {
		if err := pc.WriteRTCP([]rtcp.Packet{pkt}); err != nil {
			t.Fatalf("pion WriteRTCP: %v", err)
		}
		select {
		case raw := <-sink.rtcp:
			pkts, err := rtcp.Unmarshal(raw)
			if err != nil {
				t.Fatalf("sink got bad RTCP: %v", err)
			}
			if rr, ok := pkts[0].(*rtcp.ReceiverReport); ok && rr.SSRC == sender {
				return
			}
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatalf("RTCP from sender %#x did not reach its sink", sender)
}

// peerRTCP signals every PLI pion's sender of kind receives.
func peerRTCP(t *testing.T, pc *webrtc.PeerConnection, kind webrtc.RTPCodecType) chan struct{} {
	t.Helper()
	ch := make(chan struct{}, 16)
	for _, s := range pc.GetSenders() {
		if s.Track() == nil || s.Track().Kind() != kind {
			continue
		}
		go func() {
			for {
				pkts, _, err := s.ReadRTCP()
				if err != nil {
					return
				}
				for _, p := range pkts {
					if _, ok := p.(*rtcp.PictureLossIndication); ok {
						select {
						case ch <- struct{}{}:
						default:
						}
					}
				}
			}
		}()
	}
	return ch
}

// videoSSRC returns the SSRC of pion's video sender.
func videoSSRC(t *testing.T, pc *webrtc.PeerConnection) uint32 {
	t.Helper()
	for _, s := range pc.GetSenders() {
		if s.Track() != nil && s.Track().Kind() == webrtc.RTPCodecTypeVideo {
			return uint32(s.GetParameters().Encodings[0].SSRC)
		}
	}
	t.Fatal("pion has no video sender")
	return 0
}
