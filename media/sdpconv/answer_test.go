package sdpconv

import (
	"errors"
	"strconv"
	"strings"
	"testing"
)

// wantStream is the expected plan of one m-line; the maps list the entries
// that are not -1.
type wantStream struct {
	enabled bool
	codec   string // Codec.String()@PT
	o2a     map[int]int16
	a2o     map[int]int16
	events  [2]int16
}

func checkPlan(t *testing.T, plan *Plan, want []wantStream) {
	t.Helper()
	if len(plan.Streams) != len(want) {
		t.Fatalf("%d streams, want %d", len(plan.Streams), len(want))
	}
	for i, w := range want {
		sp := plan.Streams[i]
		if sp.Enabled != w.enabled || sp.EventPT != w.events {
			t.Errorf("stream %d: enabled %v events %v, want %v %v", i, sp.Enabled, sp.EventPT, w.enabled, w.events)
		}
		if w.enabled {
			if got := sp.Codec.String() + "@" + strconv.Itoa(int(sp.Codec.PT)); got != w.codec || sp.ClockRate != sp.Codec.Rate {
				t.Errorf("stream %d: codec %s rate %d, want %s", i, got, sp.ClockRate, w.codec)
			}
		}
		checkMap(t, "stream "+strconv.Itoa(i)+" offerer->answerer", &sp.OffererToAnswerer, w.o2a)
		checkMap(t, "stream "+strconv.Itoa(i)+" answerer->offerer", &sp.AnswererToOfferer, w.a2o)
	}
}

func checkMap(t *testing.T, what string, got *[128]int16, want map[int]int16) {
	t.Helper()
	for pt, v := range got {
		w, ok := want[pt]
		if !ok {
			w = -1
		}
		if v != w {
			t.Errorf("%s[%d] = %d, want %d", what, pt, v, w)
		}
	}
}

// answerCase is one offer/answer exchange through the SBC.
type answerCase struct {
	name         string
	offer        string // testdata file
	editOffer    func(string) string
	answer       string // testdata file
	editAnswer   func(string) string
	to           Kind
	local        func(*Local)
	want, not    [][]string
	plan         []wantStream
	renderedKind Kind
}

func runAnswer(t *testing.T, tt answerCase) {
	t.Helper()
	offerBody, answerBody := string(load(t, tt.offer)), string(load(t, tt.answer))
	if tt.editOffer != nil {
		offerBody = tt.editOffer(offerBody)
	}
	if tt.editAnswer != nil {
		answerBody = tt.editAnswer(answerBody)
	}
	offer, answer := mustParse(t, []byte(offerBody)), mustParse(t, []byte(answerBody))
	local := localFor(len(offer.Media), tt.to, "")
	if tt.local != nil {
		tt.local(&local)
	}
	body, plan, err := RenderAnswer(offer, answer, tt.to, local)
	if err != nil {
		t.Fatal(err)
	}
	out, secs := reparse(t, body)
	if out.Kind != tt.to {
		t.Errorf("rendered kind %v, want %v", out.Kind, tt.to)
	}
	for i, want := range tt.want {
		checkLines(t, "section "+strconv.Itoa(i), secs[i], want, nil)
	}
	for i, not := range tt.not {
		checkLines(t, "section "+strconv.Itoa(i), secs[i], nil, not)
	}
	checkPlan(t, plan, tt.plan)
}

// pbxAnswer turns the Asterisk answer's audio into the given m-line tail
// and rtpmaps.
func pbxAnswer(formats string, rtpmaps ...string) func(string) string {
	return func(s string) string {
		s = strings.Replace(s, "m=audio 10020 RTP/AVP 0 101", "m=audio 10020 RTP/AVP "+formats, 1)
		s = strings.Replace(s, "a=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n", strings.Join(rtpmaps, ""), 1)
		return s
	}
}

func TestRenderAnswerTowardBrowser(t *testing.T) {
	audioLines := []string{"a=ice-ufrag:sbcU", "a=setup:active", "a=mid:0", "a=rtcp-mux", "a=end-of-candidates"}
	disabledVideo := wantStream{events: [2]int16{-1, -1}}
	tests := []answerCase{
		{
			name: "pbx answers 101 for the browser's 126, rejects video", offer: "chrome_offer.sdp", answer: "asterisk_answer_video_rejected.sdp",
			want: [][]string{{"c=IN IP4 192.0.2.1", "a=group:BUNDLE 0", "a=ice-lite"},
				append(audioLines, "m=audio 40000 UDP/TLS/RTP/SAVPF 0 126", "a=rtpmap:0 PCMU/8000", "a=rtpmap:126 telephone-event/8000",
					"a=fmtp:126 0-16", "a=ptime:20", "a=maxptime:150", "a=sendrecv", "a=ssrc:"+ssrcOf(0)+" cname:sbc-cname"),
				{"m=video 0 UDP/TLS/RTP/SAVPF 0", "a=mid:1"}},
			not: [][]string{{"a=group:BUNDLE 0 1"}, {"a=rtpmap:101", "a=rtcp-fb", "a=rtpmap:111"}, {"a=ice", "a=rtpmap", "a=ssrc"}},
			plan: []wantStream{{enabled: true, codec: "PCMU/8000@0",
				o2a:    map[int]int16{0: 0, 126: 101},
				a2o:    map[int]int16{0: 0, 101: 126, 126: 126},
				events: [2]int16{126, 101}}, disabledVideo},
		},
		{
			name: "dtmf kept for the sbc when the pbx has none", offer: "chrome_offer.sdp", answer: "asterisk_answer_video_rejected.sdp",
			editAnswer: pbxAnswer("8", "a=rtpmap:8 PCMA/8000\r\n"),
			local:      func(l *Local) { l.Media[0].DTMF = true },
			want:       [][]string{nil, {"m=audio 40000 UDP/TLS/RTP/SAVPF 8 126", "a=rtpmap:126 telephone-event/8000"}},
			plan: []wantStream{{enabled: true, codec: "PCMA/8000@8",
				o2a: map[int]int16{8: 8}, a2o: map[int]int16{8: 8}, events: [2]int16{126, -1}}, disabledVideo},
		},
		{
			name: "no dtmf without the option", offer: "chrome_offer.sdp", answer: "asterisk_answer_video_rejected.sdp",
			editAnswer: pbxAnswer("8", "a=rtpmap:8 PCMA/8000\r\n"),
			want:       [][]string{nil, {"m=audio 40000 UDP/TLS/RTP/SAVPF 8"}},
			not:        [][]string{nil, {"a=rtpmap:126"}},
			plan: []wantStream{{enabled: true, codec: "PCMA/8000@8",
				o2a: map[int]int16{8: 8}, a2o: map[int]int16{8: 8}, events: [2]int16{-1, -1}}, disabledVideo},
		},
		{
			name: "opus with its 48 kHz event; the 8 kHz event is not the codec's", offer: "chrome_offer.sdp", answer: "asterisk_answer_video_rejected.sdp",
			editAnswer: pbxAnswer("107 101 100", "a=rtpmap:107 opus/48000/2\r\na=fmtp:107 useinbandfec=1\r\na=rtpmap:101 telephone-event/8000\r\na=rtpmap:100 telephone-event/48000\r\n"),
			want:       [][]string{nil, {"m=audio 40000 UDP/TLS/RTP/SAVPF 111 110", "a=rtpmap:111 opus/48000/2", "a=fmtp:111 useinbandfec=1", "a=rtpmap:110 telephone-event/48000"}},
			not:        [][]string{nil, {"a=rtpmap:126", "a=rtcp-fb"}},
			plan: []wantStream{{enabled: true, codec: "opus/48000/2@111",
				o2a: map[int]int16{111: 107, 110: 100}, a2o: map[int]int16{107: 111, 111: 111, 100: 110, 110: 110},
				events: [2]int16{110, 100}}, disabledVideo},
		},
		{
			name: "video phone answers h264 mode 0 with its own pt", offer: "chrome_offer.sdp", answer: "asterisk_answer_video_rejected.sdp",
			editAnswer: func(s string) string {
				return strings.Replace(s, "m=video 0 RTP/AVP 96\r\n", "m=video 10022 RTP/AVP 99\r\na=rtpmap:99 H264/90000\r\na=fmtp:99 profile-level-id=42801f;packetization-mode=0\r\na=sendrecv\r\n", 1)
			},
			want: [][]string{{"a=group:BUNDLE 0 1"}, {"m=audio 40000 UDP/TLS/RTP/SAVPF 0 126"},
				{"m=video 40000 UDP/TLS/RTP/SAVPF 104", "a=mid:1", "a=rtpmap:104 H264/90000",
					"a=fmtp:104 profile-level-id=42801f;packetization-mode=0", "a=rtcp-fb:104 ccm fir", "a=rtcp-fb:104 nack pli",
					"a=ssrc:" + ssrcOf(1) + " cname:sbc-cname"}},
			not: [][]string{nil, nil, {"a=rtcp-fb:104 transport-cc", "a=rtcp-fb:104 goog-remb", "a=rtcp-fb:104 nack\r"}},
			plan: []wantStream{{enabled: true, codec: "PCMU/8000@0",
				o2a: map[int]int16{0: 0, 126: 101}, a2o: map[int]int16{0: 0, 101: 126, 126: 126}, events: [2]int16{126, 101}},
				{enabled: true, codec: "H264/90000@104", o2a: map[int]int16{104: 99}, a2o: map[int]int16{99: 104, 104: 104}, events: [2]int16{-1, -1}}},
		},
		{
			name: "hold: pbx answers a sendonly re-offer with recvonly", offer: "chrome_offer.sdp", answer: "asterisk_answer_video_rejected.sdp",
			editOffer:  func(s string) string { return strings.ReplaceAll(s, "a=sendrecv", "a=sendonly") },
			editAnswer: func(s string) string { return strings.Replace(s, "a=sendrecv", "a=recvonly", 1) },
			want:       [][]string{nil, {"a=recvonly"}},
			not:        [][]string{nil, {"a=ssrc", "a=msid", "a=sendrecv"}},
			plan: []wantStream{{enabled: true, codec: "PCMU/8000@0",
				o2a: map[int]int16{0: 0, 126: 101}, a2o: map[int]int16{0: 0, 101: 126, 126: 126}, events: [2]int16{126, 101}}, disabledVideo},
		},
		{
			name: "hold: pbx answers with c=0.0.0.0", offer: "chrome_offer.sdp", answer: "asterisk_answer_video_rejected.sdp",
			editAnswer: func(s string) string { return strings.Replace(s, "c=IN IP4 192.0.2.10", "c=IN IP4 0.0.0.0", 1) },
			want:       [][]string{{"c=IN IP4 192.0.2.1"}, {"a=sendonly"}},
			not:        [][]string{{"c=IN IP4 0.0.0.0"}, {"a=sendrecv"}},
			plan: []wantStream{{enabled: true, codec: "PCMU/8000@0",
				o2a: map[int]int16{0: 0, 126: 101}, a2o: map[int]int16{0: 0, 101: 126, 126: 126}, events: [2]int16{126, 101}}, disabledVideo},
		},
		{
			name: "answer to an active offer is passive", offer: "chrome_offer.sdp", answer: "asterisk_answer_video_rejected.sdp",
			editOffer: func(s string) string { return strings.ReplaceAll(s, "a=setup:actpass", "a=setup:active") },
			want:      [][]string{nil, {"a=setup:passive"}},
			plan: []wantStream{{enabled: true, codec: "PCMU/8000@0",
				o2a: map[int]int16{0: 0, 126: 101}, a2o: map[int]int16{0: 0, 101: 126, 126: 126}, events: [2]int16{126, 101}}, disabledVideo},
		},
	}
	for _, tt := range tests {
		tt.to = KindWebRTC
		t.Run(tt.name, func(t *testing.T) { runAnswer(t, tt) })
	}
}

func TestRenderAnswerTowardSIP(t *testing.T) {
	browser := func(formats string, rtpmaps ...string) func(string) string {
		return func(s string) string {
			s = strings.Replace(s, "UDP/TLS/RTP/SAVPF 0 101", "UDP/TLS/RTP/SAVPF "+formats, 1)
			return strings.Replace(s, "a=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n", strings.Join(rtpmaps, ""), 1)
		}
	}
	tests := []answerCase{
		{
			name: "browser answers the asterisk offer", offer: "asterisk_offer.sdp", answer: "chrome_answer.sdp", to: KindRTP,
			want: [][]string{sessionLines, {"m=audio 40000 RTP/AVP 0 101", "a=rtpmap:0 PCMU/8000", "a=rtpmap:101 telephone-event/8000", "a=fmtp:101 0-16", "a=sendrecv"}},
			not:  [][]string{{"a=group", "a=ice-lite"}, transportLines},
			plan: []wantStream{{enabled: true, codec: "PCMU/8000@0",
				o2a: map[int]int16{0: 0, 101: 101}, a2o: map[int]int16{0: 0, 101: 101}, events: [2]int16{101, 101}}},
		},
		{
			name: "browser numbers the event 126", offer: "asterisk_offer.sdp", answer: "chrome_answer.sdp", to: KindRTP,
			editAnswer: browser("8 126", "a=rtpmap:8 PCMA/8000\r\na=rtpmap:126 telephone-event/8000\r\n"),
			// The answerer's fmtp goes back; the stray a=fmtp:101 of the
			// browser's answer names no payload type of its m-line.
			want: [][]string{nil, {"m=audio 40000 RTP/AVP 8 101", "a=rtpmap:101 telephone-event/8000"}},
			not:  [][]string{nil, {"a=rtpmap:126", "a=fmtp"}},
			plan: []wantStream{{enabled: true, codec: "PCMA/8000@8",
				o2a: map[int]int16{8: 8, 101: 126}, a2o: map[int]int16{8: 8, 126: 101, 101: 101}, events: [2]int16{101, 126}}},
		},
		{
			name: "rtcp-mux only when offered", offer: "asterisk_offer.sdp", answer: "chrome_answer.sdp", to: KindRTP,
			local: func(l *Local) { l.Media[0].RTCPMux = true },
			not:   [][]string{nil, {"a=rtcp-mux"}},
			plan: []wantStream{{enabled: true, codec: "PCMU/8000@0",
				o2a: map[int]int16{0: 0, 101: 101}, a2o: map[int]int16{0: 0, 101: 101}, events: [2]int16{101, 101}}},
		},
		{
			name: "sdes trunk gets its answer in RTP/SAVP", offer: "trunk_srtp_offer.sdp", answer: "chrome_answer.sdp", to: KindSRTP,
			want: [][]string{nil, {"m=audio 40000 RTP/SAVP 0 101", "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:c2JjLXRlc3Qta2V5LXNiYy10ZXN0LWtleS1zYmMtdGU=", "a=fmtp:101 0-16"}},
			not:  [][]string{nil, transportLines},
			plan: []wantStream{{enabled: true, codec: "PCMU/8000@0",
				o2a: map[int]int16{0: 0, 101: 101}, a2o: map[int]int16{0: 0, 101: 101}, events: [2]int16{101, 101}}},
		},
		{
			name: "sip to sip video keeps rtx with apt remapped", offer: "asterisk_offer.sdp", answer: "asterisk_answer_video_rejected.sdp", to: KindRTP,
			editOffer: func(s string) string {
				return s + "m=video 10002 RTP/AVPF 96 97\r\na=rtpmap:96 VP8/90000\r\na=rtcp-fb:96 nack pli\r\na=rtcp-fb:96 goog-remb\r\na=rtpmap:97 rtx/90000\r\na=fmtp:97 apt=96\r\n"
			},
			editAnswer: func(s string) string {
				return strings.Replace(s, "m=video 0 RTP/AVP 96\r\n", "m=video 10022 RTP/AVPF 100 101\r\na=rtpmap:100 VP8/90000\r\na=rtcp-fb:100 nack pli\r\na=rtpmap:101 rtx/90000\r\na=fmtp:101 apt=100\r\n", 1)
			},
			want: [][]string{nil, {"m=audio 40000 RTP/AVP 0 101"}, {"m=video 40002 RTP/AVPF 96 97", "a=fmtp:97 apt=96", "a=rtcp-fb:96 nack pli"}},
			not:  [][]string{nil, nil, {"a=fmtp:97 apt=100", "a=rtcp-fb:96 goog-remb", "a=rtpmap:100"}},
			plan: []wantStream{{enabled: true, codec: "PCMU/8000@0",
				o2a: map[int]int16{0: 0, 101: 101}, a2o: map[int]int16{0: 0, 101: 101}, events: [2]int16{101, 101}},
				{enabled: true, codec: "VP8/90000@96", o2a: map[int]int16{96: 100, 97: 101}, a2o: map[int]int16{100: 96, 101: 97, 96: 96, 97: 97}, events: [2]int16{-1, -1}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { runAnswer(t, tt) })
	}
}

// TestRenderAnswerEarlyThenFinal: a 183 and a 200 answering one offer with
// different SDP give different answers and plans.
func TestRenderAnswerEarlyThenFinal(t *testing.T) {
	offer := mustParse(t, load(t, "chrome_offer.sdp"))
	early := mustParse(t, load(t, "asterisk_answer_video_rejected.sdp"))
	final := mustParse(t, []byte(pbxAnswer("8 101", "a=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\n")(string(load(t, "asterisk_answer_video_rejected.sdp")))))
	local := localFor(2, KindWebRTC, "")
	b183, p183, err := RenderAnswer(offer, early, KindWebRTC, local)
	if err != nil {
		t.Fatal(err)
	}
	b200, p200, err := RenderAnswer(offer, final, KindWebRTC, local)
	if err != nil {
		t.Fatal(err)
	}
	_, s183 := reparse(t, b183)
	_, s200 := reparse(t, b200)
	checkLines(t, "183", s183[1], []string{"m=audio 40000 UDP/TLS/RTP/SAVPF 0 126"}, nil)
	checkLines(t, "200", s200[1], []string{"m=audio 40000 UDP/TLS/RTP/SAVPF 8 126"}, nil)
	if p183.Streams[0].Codec.Name != "PCMU" || p200.Streams[0].Codec.Name != "PCMA" {
		t.Errorf("codecs %v then %v", p183.Streams[0].Codec, p200.Streams[0].Codec)
	}
	if p200.Streams[0].OffererToAnswerer[0] != -1 || p200.Streams[0].OffererToAnswerer[8] != 8 {
		t.Errorf("200 plan still maps the 183's codec: %v", p200.Streams[0].OffererToAnswerer[:10])
	}
}

func TestRenderAnswerErrors(t *testing.T) {
	offer := mustParse(t, load(t, "chrome_offer.sdp"))
	answer := mustParse(t, load(t, "asterisk_answer_video_rejected.sdp"))
	oneLine := mustParse(t, load(t, "asterisk_offer.sdp"))
	g729 := mustParse(t, []byte(pbxAnswer("18", "a=rtpmap:18 G729/8000\r\n")(string(load(t, "asterisk_answer_video_rejected.sdp")))))
	tests := []struct {
		name          string
		offer, answer *Description
		local         Local
		want          error
	}{
		{"m-line count differs", offer, oneLine, localFor(2, KindWebRTC, ""), ErrBadSDP},
		{"nil answer", offer, nil, localFor(2, KindWebRTC, ""), ErrBadSDP},
		{"answer with a codec never offered", offer, g729, localFor(2, KindWebRTC, ""), ErrNoCodec},
		{"every m-line refused by the caller", offer, answer, func() Local {
			l := localFor(2, KindWebRTC, "")
			l.Media[0].Port = 0
			return l
		}(), ErrNoCodec},
		{"local for another m-line count", offer, answer, localFor(1, KindWebRTC, ""), errLocal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body, plan, err := RenderAnswer(tt.offer, tt.answer, KindWebRTC, tt.local)
			if !errors.Is(err, tt.want) || body != nil || plan != nil {
				t.Fatalf("RenderAnswer = %d bytes, %v, %v; want %v", len(body), plan, err, tt.want)
			}
		})
	}
}
