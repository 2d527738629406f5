package sdpconv

import (
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		file    string
		kind    Kind
		usable  []bool
		codecs  [][]string // per m-line, "name/rate[/ch]@pt"
		check   func(t *testing.T, d *Description)
		hold    []bool
		bundled []string
	}{
		{
			name: "chrome audio and video", file: "chrome_offer.sdp", kind: KindWebRTC,
			usable: []bool{true, true}, hold: []bool{false, false}, bundled: []string{"0", "1"},
			codecs: [][]string{{"opus/48000/2@111", "red/48000/2@63", "G722/8000@9", "PCMU/8000@0",
				"PCMA/8000@8", "CN/8000@13", "telephone-event/48000@110", "telephone-event/8000@126"}, nil},
			check: func(t *testing.T, d *Description) {
				a, v := d.Media[0], d.Media[1]
				if a.Addr != netip.MustParseAddr("203.0.113.50") || a.Port != 54400 || !a.RTCPMux {
					t.Errorf("audio transport: %v %d mux=%v", a.Addr, a.Port, a.RTCPMux)
				}
				if a.RTCP.IsValid() {
					t.Errorf("a=rtcp:9 IN IP4 0.0.0.0 gave %v, want invalid", a.RTCP)
				}
				if a.ICE.Ufrag != "Kq3v" || a.ICE.Setup != "actpass" || len(a.ICE.Candidates) != 3 || len(a.ICE.Fingerprints) != 1 {
					t.Errorf("audio ice: %+v", a.ICE)
				}
				if a.MID != "0" || !slices.Equal(a.SSRCs, []uint32{3735928559}) {
					t.Errorf("audio mid %q ssrcs %v", a.MID, a.SSRCs)
				}
				if !slices.Equal(v.SSRCs, []uint32{2864434397, 4027431614}) || len(v.Codecs) != 13 {
					t.Errorf("video ssrcs %v, %d codecs", v.SSRCs, len(v.Codecs))
				}
				if c := v.Codecs[0]; c.Name != "VP8" || !slices.Equal(c.FB, []string{"goog-remb", "transport-cc", "ccm fir", "nack", "nack pli"}) {
					t.Errorf("vp8: %+v", c)
				}
				if c := d.Media[0].Codecs[0]; c.Fmtp != "minptime=10;useinbandfec=1" || c.Channels != 2 {
					t.Errorf("opus: %+v", c)
				}
			},
		},
		{
			name: "chrome mdns, 0.0.0.0 is no hold", file: "chrome_offer_mdns.sdp", kind: KindWebRTC,
			usable: []bool{true, false}, hold: []bool{false, false}, bundled: []string{"0", "1"},
			codecs: [][]string{{"opus/48000/2@111", "G722/8000@9", "PCMU/8000@0", "PCMA/8000@8", "telephone-event/8000@126"}, nil},
			check: func(t *testing.T, d *Description) {
				if d.Media[0].Remote().IsValid() {
					t.Errorf("remote of 0.0.0.0:9 = %v, want invalid", d.Media[0].Remote())
				}
				if d.Media[1].Type != "application" || d.Media[1].Proto != "UDP/DTLS/SCTP" ||
					!slices.Equal(d.Media[1].Formats, []string{"webrtc-datachannel"}) {
					t.Errorf("datachannel: %+v", d.Media[1])
				}
			},
		},
		{
			name: "firefox session-level fingerprint", file: "firefox_offer.sdp", kind: KindWebRTC,
			usable: []bool{true}, hold: []bool{false}, bundled: []string{"0"},
			codecs: [][]string{{"opus/48000/2@109", "G722/8000@9", "PCMU/8000@0", "PCMA/8000@8", "telephone-event/8000@101"}},
			check: func(t *testing.T, d *Description) {
				ice := d.Media[0].ICE
				if len(ice.Fingerprints) != 1 || !strings.HasPrefix(ice.Fingerprints[0], "sha-256 3F:8A") || ice.Ufrag != "5a1f0c2e" {
					t.Errorf("firefox ice: %+v", ice)
				}
			},
		},
		{
			name: "asterisk", file: "asterisk_offer.sdp", kind: KindRTP,
			usable: []bool{true}, hold: []bool{false},
			codecs: [][]string{{"PCMU/8000@0", "PCMA/8000@8", "G729/8000@18", "telephone-event/8000@101"}},
			check: func(t *testing.T, d *Description) {
				m := d.Media[0]
				if m.Ptime != 20 || m.MaxPtime != 150 || m.Dir != "sendrecv" || m.Codecs[3].Fmtp != "0-16" {
					t.Errorf("asterisk media: %+v", m)
				}
				if m.Remote() != netip.MustParseAddrPort("192.0.2.10:10000") || m.RemoteRTCP() != netip.MustParseAddrPort("192.0.2.10:10001") {
					t.Errorf("remote %v rtcp %v", m.Remote(), m.RemoteRTCP())
				}
				if !d.HasEvent(0) || d.HasEvent(1) || d.Held() {
					t.Errorf("HasEvent/Held wrong")
				}
			},
		},
		{
			name: "freeswitch a=rtcp", file: "freeswitch_offer.sdp", kind: KindRTP,
			usable: []bool{true}, hold: []bool{false},
			codecs: [][]string{{"G722/8000@9", "PCMU/8000@0", "PCMA/8000@8", "telephone-event/8000@101", "CN/8000@13"}},
			check: func(t *testing.T, d *Description) {
				if got := d.Media[0].RemoteRTCP(); got != netip.MustParseAddrPort("198.51.100.7:16385") {
					t.Errorf("rtcp = %v", got)
				}
			},
		},
		{
			name: "sdes trunk", file: "trunk_srtp_offer.sdp", kind: KindSRTP,
			usable: []bool{true}, hold: []bool{false},
			codecs: [][]string{{"PCMA/8000@8", "PCMU/8000@0", "telephone-event/8000@101"}},
			check: func(t *testing.T, d *Description) {
				if len(d.Media[0].Crypto) != 2 || !strings.HasPrefix(d.Media[0].Crypto[0], "1 AES_CM_128_HMAC_SHA1_80 inline:") {
					t.Errorf("crypto: %q", d.Media[0].Crypto)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := mustParse(t, load(t, tt.file))
			if d.Kind != tt.kind {
				t.Errorf("kind = %v, want %v", d.Kind, tt.kind)
			}
			if len(d.Media) != len(tt.usable) {
				t.Fatalf("%d m-lines, want %d", len(d.Media), len(tt.usable))
			}
			for i, m := range d.Media {
				if m.Usable != tt.usable[i] || m.Hold != tt.hold[i] {
					t.Errorf("m-line %d: usable %v hold %v, want %v %v", i, m.Usable, m.Hold, tt.usable[i], tt.hold[i])
				}
				if tt.codecs[i] != nil && !slices.Equal(names(m), tt.codecs[i]) {
					t.Errorf("m-line %d codecs:\n got %q\nwant %q", i, names(m), tt.codecs[i])
				}
			}
			if !slices.Equal(d.Bundle, tt.bundled) {
				t.Errorf("bundle = %q, want %q", d.Bundle, tt.bundled)
			}
			if tt.check != nil {
				tt.check(t, d)
			}
		})
	}
}

func TestParseHold(t *testing.T) {
	base := string(load(t, "asterisk_offer.sdp"))
	tests := []struct {
		name     string
		from, to string
		dir      string
		hold     bool
		held     bool
	}{
		{"sendrecv", "", "", "sendrecv", false, false},
		{"sendonly", "a=sendrecv", "a=sendonly", "sendonly", true, true},
		{"inactive", "a=sendrecv", "a=inactive", "inactive", true, true},
		{"recvonly is no hold", "a=sendrecv", "a=recvonly", "recvonly", false, false},
		{"c=0.0.0.0", "c=IN IP4 192.0.2.10", "c=IN IP4 0.0.0.0", "sendrecv", true, true},
		{"session-level direction", "t=0 0\r\n", "t=0 0\r\na=sendonly\r\n", "sendrecv", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := mustParse(t, []byte(strings.Replace(base, tt.from, tt.to, 1)))
			m := d.Media[0]
			if m.Dir != tt.dir || m.Hold != tt.hold || d.Held() != tt.held {
				t.Errorf("dir %q hold %v held %v, want %q %v %v", m.Dir, m.Hold, d.Held(), tt.dir, tt.hold, tt.held)
			}
		})
	}
	// A session-level direction applies when the m-line has none.
	noDir := strings.Replace(base, "a=sendrecv\r\n", "", 1)
	d := mustParse(t, []byte(strings.Replace(noDir, "t=0 0\r\n", "t=0 0\r\na=inactive\r\n", 1)))
	if d.Media[0].Dir != "inactive" || !d.Media[0].Hold {
		t.Errorf("session-level inactive: dir %q hold %v", d.Media[0].Dir, d.Media[0].Hold)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		body string
	}{
		{"empty", ""},
		{"garbage", "hello world"},
		{"no m-line", "v=0\r\no=- 1 1 IN IP4 192.0.2.9\r\ns=-\r\nt=0 0\r\n"},
		{"only a data channel", "v=0\r\no=- 1 1 IN IP4 192.0.2.9\r\ns=-\r\nt=0 0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n"},
		{"all rejected", "v=0\r\no=- 1 1 IN IP4 192.0.2.9\r\ns=-\r\nc=IN IP4 192.0.2.9\r\nt=0 0\r\nm=audio 0 RTP/AVP 0\r\n"},
		{"unterminable profile", "v=0\r\no=- 1 1 IN IP4 192.0.2.9\r\ns=-\r\nc=IN IP4 192.0.2.9\r\nt=0 0\r\nm=audio 4000 TCP/MRCPv2 0\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := Parse([]byte(tt.body))
			if !errors.Is(err, ErrBadSDP) || d != nil {
				t.Fatalf("Parse = %v, %v; want ErrBadSDP", d, err)
			}
		})
	}
}

func TestKindString(t *testing.T) {
	for k, want := range map[Kind]string{KindRTP: "rtp", KindSRTP: "srtp", KindWebRTC: "webrtc", Kind(9): "kind(9)"} {
		if k.String() != want {
			t.Errorf("%d.String() = %q, want %q", int(k), k.String(), want)
		}
	}
}

func TestCodecString(t *testing.T) {
	tests := []struct {
		c    Codec
		want string
	}{
		{Codec{PT: 0, Name: "PCMU", Rate: 8000}, "PCMU/8000"},
		{Codec{PT: 111, Name: "opus", Rate: 48000, Channels: 2}, "opus/48000/2"},
		{Codec{PT: 96}, "96"},
	}
	for _, tt := range tests {
		if got := tt.c.String(); got != tt.want {
			t.Errorf("%+v.String() = %q, want %q", tt.c, got, tt.want)
		}
	}
}
