package sdpconv

import (
	"errors"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// transportLines are the prefixes no SDP toward a SIP side may carry.
var transportLines = []string{
	"a=ice-", "a=candidate", "a=end-of-candidates", "a=fingerprint", "a=setup", "a=mid", "a=msid",
	"a=ssrc", "a=group", "a=extmap", "a=rtcp-fb", "a=rtcp-rsize", "a=rtcp-mux", "a=rtcp:", "a=sctp",
}

var sessionLines = []string{"v=0", "o=sbc 42 1 IN IP4 192.0.2.1", "s=sbc", "c=IN IP4 192.0.2.1", "t=0 0"}

func ssrcOf(i int) string { return strconv.Itoa(0x5bc00000 + i) }

func TestRenderOfferTowardSIP(t *testing.T) {
	tests := []struct {
		name  string
		file  string
		to    Kind
		local func(l *Local)
		edit  func(s string) string
		want  [][]string // session, then per m-line: lines that must be present
		not   [][]string // prefixes that must be absent
	}{
		{
			name: "chrome audio+video to plain", file: "chrome_offer.sdp", to: KindRTP,
			want: [][]string{sessionLines, {
				"m=audio 40000 RTP/AVP 111 9 0 8 110 126",
				"a=rtpmap:111 opus/48000/2", "a=fmtp:111 minptime=10;useinbandfec=1",
				"a=rtpmap:9 G722/8000", "a=rtpmap:0 PCMU/8000", "a=rtpmap:8 PCMA/8000",
				"a=rtpmap:110 telephone-event/48000", "a=rtpmap:126 telephone-event/8000", "a=sendrecv",
			}, {
				"m=video 40002 RTP/AVP 96 98 102 104 45", "a=rtpmap:96 VP8/90000", "a=rtpmap:98 VP9/90000",
				"a=fmtp:98 profile-id=0", "a=rtpmap:102 H264/90000",
				"a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f",
				"a=fmtp:104 level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=42001f",
				"a=rtpmap:45 AV1/90000", "a=sendrecv",
			}},
			not: [][]string{{"a=group", "a=msid-semantic", "a=extmap-allow-mixed", "a=ice-lite"},
				append([]string{"a=rtpmap:63", "a=fmtp:63", "a=rtpmap:13", "a=crypto"}, transportLines...),
				append([]string{"a=rtpmap:97", "a=fmtp:97", "a=rtpmap:116", "a=rtpmap:117", "a=rtpmap:118", "a=ssrc-group"}, transportLines...)},
		},
		{
			name: "chrome to sdes trunk", file: "chrome_offer.sdp", to: KindSRTP,
			want: [][]string{sessionLines, {
				"m=audio 40000 RTP/SAVP 111 9 0 8 110 126",
				"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:c2JjLXRlc3Qta2V5LXNiYy10ZXN0LWtleS1zYmMtdGU=",
			}, {"m=video 40002 RTP/SAVP 96 98 102 104 45", "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:c2JjLXRlc3Qta2V5LXNiYy10ZXN0LWtleS1zYmMtdGU="}},
			not: [][]string{nil, transportLines, transportLines},
		},
		{
			name: "chrome with data channel, mdns placeholder is not hold", file: "chrome_offer_mdns.sdp", to: KindRTP,
			want: [][]string{sessionLines, {"m=audio 40000 RTP/AVP 111 9 0 8 126", "a=sendrecv"},
				{"m=application 0 UDP/DTLS/SCTP webrtc-datachannel"}},
			not: [][]string{{"c=IN IP4 0.0.0.0"}, transportLines, append([]string{"a="}, transportLines...)},
		},
		{
			name: "sip to sip keeps every codec", file: "asterisk_offer.sdp", to: KindRTP,
			want: [][]string{sessionLines, {"m=audio 40000 RTP/AVP 0 8 18 101", "a=rtpmap:18 G729/8000",
				"a=fmtp:18 annexb=no", "a=fmtp:101 0-16", "a=ptime:20", "a=maxptime:150", "a=sendrecv"}},
			not: [][]string{nil, transportLines},
		},
		{
			name: "rtcp port and mux when asked", file: "freeswitch_offer.sdp", to: KindRTP,
			local: func(l *Local) { l.Media[0].RTCPPort = 40005; l.Media[0].RTCPMux = true },
			want:  [][]string{sessionLines, {"m=audio 40000 RTP/AVP 9 0 8 101 13", "a=rtcp:40005", "a=rtcp-mux"}},
		},
		{
			name: "sip avpf stays avpf with feedback", file: "asterisk_offer.sdp", to: KindRTP,
			edit: func(s string) string {
				s = strings.Replace(s, "RTP/AVP", "RTP/AVPF", 1)
				return strings.Replace(s, "a=ptime:20", "a=rtcp-fb:* nack\r\na=ptime:20", 1)
			},
			want: [][]string{sessionLines, {"m=audio 40000 RTP/AVPF 0 8 18 101", "a=rtcp-fb:0 nack", "a=rtcp-fb:101 nack"}},
		},
		{
			name: "sendonly hold passes as is", file: "chrome_offer.sdp", to: KindRTP,
			edit: func(s string) string { return strings.ReplaceAll(s, "a=sendrecv", "a=sendonly") },
			want: [][]string{sessionLines, {"a=sendonly"}, {"a=sendonly"}},
		},
		{
			name: "port 0 from the caller rejects one m-line", file: "chrome_offer.sdp", to: KindRTP,
			local: func(l *Local) { l.Media[1].Port = 0 },
			want:  [][]string{sessionLines, {"m=audio 40000 RTP/AVP 111 9 0 8 110 126"}, {"m=video 0 RTP/AVP 96 97 98 99 102 103 104 105 45 46 116 117 118"}},
			not:   [][]string{nil, nil, {"a="}},
		},
		{
			name: "empty origin is filled", file: "asterisk_offer.sdp", to: KindRTP,
			local: func(l *Local) { l.Origin.Username, l.Origin.UnicastAddress = "", "" },
			want:  [][]string{{"o=sbc 42 1 IN IP4 192.0.2.1"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := load(t, tt.file)
			if tt.edit != nil {
				src = []byte(tt.edit(string(src)))
			}
			in := mustParse(t, src)
			local := localFor(len(in.Media), tt.to, "")
			if tt.local != nil {
				tt.local(&local)
			}
			body, err := RenderOffer(in, tt.to, local)
			if err != nil {
				t.Fatal(err)
			}
			out, secs := reparse(t, body)
			if out.Kind != tt.to || len(out.Media) != len(in.Media) {
				t.Errorf("rendered kind %v with %d m-lines, want %v with %d", out.Kind, len(out.Media), tt.to, len(in.Media))
			}
			for i, want := range tt.want {
				checkLines(t, "section "+strconv.Itoa(i), secs[i], want, nil)
			}
			for i, not := range tt.not {
				checkLines(t, "section "+strconv.Itoa(i), secs[i], nil, not)
			}
		})
	}
}

func TestRenderOfferTowardWebRTC(t *testing.T) {
	ssrc0 := ssrcOf(0)
	webSession := []string{"v=0", "o=sbc 42 1 IN IP4 192.0.2.1", "s=sbc", "c=IN IP4 192.0.2.1", "t=0 0", "a=ice-lite", "a=msid-semantic: WMS sbc-cname"}
	ice := []string{"a=ice-ufrag:sbcU", "a=ice-pwd:sbcPasswordSbcPassword01",
		"a=fingerprint:sha-256 11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00",
		"a=setup:actpass", "a=candidate:1 1 udp 2130706431 192.0.2.1 30000 typ host", "a=end-of-candidates", "a=rtcp-mux"}
	videoPhone := func(s string) string {
		return s + "m=video 10002 RTP/AVP 109 34\r\na=rtpmap:109 H264/90000\r\na=fmtp:109 profile-level-id=42e01f;packetization-mode=1\r\na=rtpmap:34 H263/90000\r\na=sendrecv\r\n"
	}
	tests := []struct {
		name  string
		file  string
		edit  func(s string) string
		local func(l *Local)
		want  [][]string
		not   [][]string
	}{
		{
			name: "asterisk to browser", file: "asterisk_offer.sdp",
			want: [][]string{append(webSession, "a=group:BUNDLE 0"), append(slices.Clone(ice),
				"m=audio 40000 UDP/TLS/RTP/SAVPF 0 8 101", "a=mid:0", "a=sendrecv",
				"a=rtpmap:0 PCMU/8000", "a=rtpmap:8 PCMA/8000", "a=rtpmap:101 telephone-event/8000", "a=fmtp:101 0-16",
				"a=ptime:20", "a=maxptime:150", "a=msid:sbc-cname sbc-cname-audio-0",
				"a=ssrc:"+ssrc0+" cname:sbc-cname", "a=ssrc:"+ssrc0+" msid:sbc-cname sbc-cname-audio-0")},
			not: [][]string{nil, {"a=rtpmap:18", "a=fmtp:18", "a=rtcp:", "a=rtcp-fb", "c="}},
		},
		{
			name: "freeswitch g722 first, cn dropped", file: "freeswitch_offer.sdp",
			want: [][]string{append(webSession, "a=group:BUNDLE 0"), append(slices.Clone(ice), "m=audio 40000 UDP/TLS/RTP/SAVPF 9 0 8 101")},
			not:  [][]string{nil, {"a=rtpmap:13", "a=rtcp:"}},
		},
		{
			name: "video phone: one bundle port, keyframe feedback only", file: "asterisk_offer.sdp", edit: videoPhone,
			want: [][]string{append(webSession, "a=group:BUNDLE 0 1"),
				{"m=audio 40000 UDP/TLS/RTP/SAVPF 0 8 101", "a=mid:0"},
				append(slices.Clone(ice), "m=video 40000 UDP/TLS/RTP/SAVPF 109", "a=mid:1", "a=rtpmap:109 H264/90000",
					"a=fmtp:109 profile-level-id=42e01f;packetization-mode=1", "a=rtcp-fb:109 ccm fir", "a=rtcp-fb:109 nack pli",
					"a=ssrc:"+ssrcOf(1)+" cname:sbc-cname")},
			not: [][]string{nil, {"a=rtcp-fb"}, {"a=rtpmap:34"}},
		},
		{
			name: "video without a browser codec is rejected, out of the bundle", file: "asterisk_offer.sdp",
			edit: func(s string) string { return s + "m=video 10002 RTP/AVP 34\r\na=rtpmap:34 H263/90000\r\n" },
			want: [][]string{append(webSession, "a=group:BUNDLE 0"), {"m=audio 40000 UDP/TLS/RTP/SAVPF 0 8 101"},
				{"m=video 0 UDP/TLS/RTP/SAVPF 0", "a=mid:1"}},
			not: [][]string{nil, nil, {"a=ice", "a=rtpmap", "a=ssrc"}},
		},
		{
			name: "rfc 2543 hold becomes sendonly with the real address", file: "asterisk_offer.sdp",
			edit: func(s string) string { return strings.Replace(s, "c=IN IP4 192.0.2.10", "c=IN IP4 0.0.0.0", 1) },
			want: [][]string{webSession, {"a=sendonly", "a=ssrc:" + ssrc0 + " cname:sbc-cname"}},
			not:  [][]string{{"c=IN IP4 0.0.0.0"}, {"a=sendrecv"}},
		},
		{
			name: "rfc 2543 hold of a recvonly stream becomes inactive", file: "asterisk_offer.sdp",
			edit: func(s string) string {
				return strings.Replace(strings.Replace(s, "c=IN IP4 192.0.2.10", "c=IN IP4 0.0.0.0", 1), "a=sendrecv", "a=recvonly", 1)
			},
			want: [][]string{webSession, {"a=inactive"}},
			not:  [][]string{{"c=IN IP4 0.0.0.0"}, {"a=recvonly", "a=ssrc", "a=msid"}},
		},
		{
			name: "inactive stays inactive without ssrc", file: "asterisk_offer.sdp",
			edit: func(s string) string { return strings.Replace(s, "a=sendrecv", "a=inactive", 1) },
			want: [][]string{webSession, {"a=inactive"}},
			not:  [][]string{nil, {"a=ssrc", "a=msid"}},
		},
		{
			name: "sendonly hold re-offer carries full ice and dtls", file: "asterisk_offer.sdp",
			edit: func(s string) string { return strings.Replace(s, "a=sendrecv", "a=sendonly", 1) },
			want: [][]string{append(webSession, "a=group:BUNDLE 0"), append(slices.Clone(ice), "a=sendonly", "a=ssrc:"+ssrc0+" cname:sbc-cname")},
		},
		{
			name: "dtmf: telephone-event added for the sbc", file: "asterisk_offer.sdp",
			edit:  func(s string) string { return strings.Replace(s, "0 8 18 101", "0 8 18", 1) },
			local: func(l *Local) { l.Media[0].DTMF = true },
			want:  [][]string{webSession, {"m=audio 40000 UDP/TLS/RTP/SAVPF 0 8 101", "a=rtpmap:101 telephone-event/8000", "a=fmtp:101 0-16"}},
		},
		{
			name: "dtmf: a free payload type when 101 is taken", file: "asterisk_offer.sdp",
			edit: func(s string) string {
				return strings.Replace(strings.Replace(s, "0 8 18 101", "0 8 101", 1), "telephone-event/8000", "opus/48000/2", 1)
			},
			local: func(l *Local) { l.Media[0].DTMF = true },
			want:  [][]string{webSession, {"m=audio 40000 UDP/TLS/RTP/SAVPF 0 8 101 96", "a=rtpmap:96 telephone-event/8000"}},
		},
		{
			name: "caller mid and setup", file: "asterisk_offer.sdp",
			local: func(l *Local) { l.Media[0].MID = "audio"; l.ICE.Setup = "passive"; l.ICE.Lite = false },
			want:  [][]string{{"a=group:BUNDLE audio"}, {"a=mid:audio", "a=setup:passive"}},
			not:   [][]string{{"a=ice-lite"}, {"a=setup:actpass"}},
		},
		{
			name: "browser to browser keeps mids", file: "chrome_offer.sdp",
			want: [][]string{append(webSession, "a=group:BUNDLE 0 1"),
				{"m=audio 40000 UDP/TLS/RTP/SAVPF 111 9 0 8 110 126", "a=mid:0"},
				{"m=video 40000 UDP/TLS/RTP/SAVPF 96 98 102 104 45", "a=mid:1", "a=rtcp-fb:96 nack pli"}},
			not: [][]string{nil, {"a=rtcp-fb", "a=extmap", "a=candidate:2999745851"}, {"a=rtcp-fb:96 transport-cc", "a=rtcp-fb:96 goog-remb", "a=rtpmap:97"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := load(t, tt.file)
			if tt.edit != nil {
				src = []byte(tt.edit(string(src)))
			}
			in := mustParse(t, src)
			local := localFor(len(in.Media), KindWebRTC, "")
			if tt.local != nil {
				tt.local(&local)
			}
			body, err := RenderOffer(in, KindWebRTC, local)
			if err != nil {
				t.Fatal(err)
			}
			out, secs := reparse(t, body)
			if out.Kind != KindWebRTC {
				t.Errorf("rendered kind %v", out.Kind)
			}
			for i, want := range tt.want {
				checkLines(t, "section "+strconv.Itoa(i), secs[i], want, nil)
			}
			for i, not := range tt.not {
				checkLines(t, "section "+strconv.Itoa(i), secs[i], nil, not)
			}
		})
	}
}

func TestRenderOfferNoCodec(t *testing.T) {
	g729 := strings.Replace(string(load(t, "asterisk_offer.sdp")), "0 8 18 101", "18 101", 1)
	tests := []struct {
		name string
		body string
		to   Kind
	}{
		{"g729 only toward a browser", g729, KindWebRTC},
		{"browser with only comfort noise and red", strings.Replace(string(load(t, "chrome_offer_mdns.sdp")), "111 9 0 8 126", "13 63", 1), KindRTP},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := mustParse(t, []byte(tt.body))
			_, err := RenderOffer(in, tt.to, localFor(len(in.Media), tt.to, ""))
			if !errors.Is(err, ErrNoCodec) {
				t.Fatalf("err = %v, want ErrNoCodec", err)
			}
		})
	}
	// Between two SIP sides G.729 crosses.
	in := mustParse(t, []byte(g729))
	if _, err := RenderOffer(in, KindRTP, localFor(1, KindRTP, "")); err != nil {
		t.Errorf("sip to sip g729: %v", err)
	}
	if NoCodecWarning != `305 sbc "Incompatible media format"` {
		t.Errorf("NoCodecWarning = %q", NoCodecWarning)
	}
}

func TestRenderOfferBadLocal(t *testing.T) {
	in := mustParse(t, load(t, "asterisk_offer.sdp"))
	tests := []struct {
		name  string
		to    Kind
		local func(l *Local)
	}{
		{"no address", KindRTP, func(l *Local) { l.Addr = netip.Addr{} }},
		{"m-line count", KindRTP, func(l *Local) { l.Media = append(l.Media, LocalMedia{}) }},
		{"webrtc without ice", KindWebRTC, func(l *Local) { l.ICE = nil }},
		{"srtp without crypto", KindSRTP, func(l *Local) { l.Media[0].Crypto = "" }},
		{"port out of range", KindRTP, func(l *Local) { l.Media[0].Port = 70000 }},
		{"unknown kind", Kind(7), func(*Local) {}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			local := localFor(1, tt.to, "")
			tt.local(&local)
			_, err := RenderOffer(in, tt.to, local)
			if err == nil || errors.Is(err, ErrNoCodec) || errors.Is(err, ErrBadSDP) {
				t.Fatalf("err = %v, want a local error", err)
			}
		})
	}
}
