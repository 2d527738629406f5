package sdpconv

import (
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/pion/ice/v4"
	"github.com/pion/webrtc/v4"
)

// pionPeer is a pion/webrtc peer standing in for a browser. It gathers on
// loopback only, without mDNS, so the test touches no other network.
func pionPeer(t *testing.T) *webrtc.PeerConnection {
	t.Helper()
	var se webrtc.SettingEngine
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	se.SetIncludeLoopbackCandidate(true)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	pc, err := webrtc.NewAPI(webrtc.WithSettingEngine(se)).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := pc.Close(); err != nil {
			t.Errorf("close peer: %v", err)
		}
	})
	return pc
}

// loopbackLocal is localFor with the SBC on 127.0.0.1, so that a pion peer
// checking our candidate stays on loopback.
func loopbackLocal(n int, to Kind) Local {
	l := localFor(n, to, "")
	l.Addr = netip.MustParseAddr("127.0.0.1")
	l.Origin.UnicastAddress = ""
	if l.ICE != nil {
		l.ICE.Candidates = []string{"1 1 udp 2130706431 127.0.0.1 9 typ host"}
	}
	return l
}

// TestPionAcceptsOffer: pion/webrtc takes the offer the SBC writes from a
// PBX's offer, and its answer maps back to the PBX.
func TestPionAcceptsOffer(t *testing.T) {
	tests := []struct {
		name  string
		edit  func(string) string
		codec string
		video bool
	}{
		{"asterisk audio", func(s string) string { return s }, "PCMU", false},
		{"asterisk on hold", func(s string) string { return strings.Replace(s, "c=IN IP4 192.0.2.10", "c=IN IP4 0.0.0.0", 1) }, "PCMU", false},
		{"video phone", func(s string) string {
			return s + "m=video 10002 RTP/AVP 96\r\na=rtpmap:96 VP8/90000\r\na=sendrecv\r\n"
		}, "PCMU", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := mustParse(t, []byte(tt.edit(string(load(t, "asterisk_offer.sdp")))))
			offer, err := RenderOffer(in, KindWebRTC, loopbackLocal(len(in.Media), KindWebRTC))
			if err != nil {
				t.Fatal(err)
			}
			pc := pionPeer(t)
			if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: string(offer)}); err != nil {
				t.Fatalf("pion rejects our offer: %v\n%s", err, offer)
			}
			answer, err := pc.CreateAnswer(nil)
			if err != nil {
				t.Fatalf("pion cannot answer our offer: %v\n%s", err, offer)
			}
			ans := mustParse(t, []byte(answer.SDP))
			body, plan, err := RenderAnswer(in, ans, KindRTP, loopbackLocal(len(in.Media), KindRTP))
			if err != nil {
				t.Fatalf("answer back to the pbx: %v\n%s", err, answer.SDP)
			}
			reparse(t, body)
			if sp := plan.Streams[0]; !sp.Enabled || sp.Codec.Name != tt.codec {
				t.Errorf("audio plan: %+v", sp.Codec)
			}
			if tt.video && (!plan.Streams[1].Enabled || plan.Streams[1].Codec.Name != "VP8") {
				t.Errorf("video plan: enabled %v codec %v", plan.Streams[1].Enabled, plan.Streams[1].Codec)
			}
		})
	}
}

// TestPionAcceptsAnswer: an offer from pion/webrtc crosses to a PBX, and
// pion takes the answer the SBC writes from the PBX's answer.
func TestPionAcceptsAnswer(t *testing.T) {
	pc := pionPeer(t)
	// A PCMU microphone, as the PBX will only take PCMU, and a camera-less
	// video transceiver.
	mic, err := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypePCMU, ClockRate: 8000}, "mic", "browser")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pc.AddTrack(mic); err != nil {
		t.Fatal(err)
	}
	if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo,
		webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
		t.Fatal(err)
	}
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	in := mustParse(t, []byte(offer.SDP))
	if in.Kind != KindWebRTC || len(in.Media) != 2 {
		t.Fatalf("pion offer read as %v with %d m-lines", in.Kind, len(in.Media))
	}
	plain, err := RenderOffer(in, KindRTP, loopbackLocal(2, KindRTP))
	if err != nil {
		t.Fatal(err)
	}
	_, secs := reparse(t, plain)
	checkLines(t, "offer to pbx", secs[1], nil, transportLines)
	pbx := mustParse(t, load(t, "asterisk_answer_video_rejected.sdp"))
	answer, plan, err := RenderAnswer(in, pbx, KindWebRTC, loopbackLocal(2, KindWebRTC))
	if err != nil {
		t.Fatal(err)
	}
	if err := pc.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: string(answer)}); err != nil {
		t.Fatalf("pion rejects our answer: %v\n%s", err, answer)
	}
	if !plan.Streams[0].Enabled || plan.Streams[0].Codec.Name != "PCMU" || plan.Streams[1].Enabled {
		t.Errorf("plan: %+v", plan.Streams)
	}
}
