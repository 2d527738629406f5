package sdpconv

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

// An image-only re-offer, as Asterisk and most fax gateways send it: the
// audio m-line's place taken by T.38.
const t38Only = "v=0\r\no=- 1 2 IN IP4 198.51.100.7\r\ns=-\r\nc=IN IP4 198.51.100.7\r\nt=0 0\r\n" +
	"m=image 40000 udptl t38\r\na=T38FaxVersion:0\r\na=T38MaxBitRate:9600\r\n" +
	"a=T38FaxRateManagement:transferredTCF\r\na=T38FaxUdpEC:t38UDPRedundancy\r\n"

func TestParseImage(t *testing.T) {
	tests := []struct {
		name   string
		body   []byte
		usable []bool
		udptl  []bool
		remote []string // per m-line, "" for none
		fax    bool     // HasUDPTL
	}{
		{name: "image only", body: []byte(t38Only), usable: []bool{true}, udptl: []bool{true},
			remote: []string{"198.51.100.7:40000"}, fax: true},
		{name: "audio disabled, image", body: load(t, "asterisk_t38_reinvite.sdp"),
			usable: []bool{false, true}, udptl: []bool{false, true}, remote: []string{"", "192.0.2.10:4390"}, fax: true},
		{name: "image rejected beside audio", usable: []bool{true, false}, udptl: []bool{false, true}, remote: []string{"192.0.2.1:4000", ""},
			body: crlf("v=0\no=- 1 1 IN IP4 192.0.2.1\ns=-\nc=IN IP4 192.0.2.1\nt=0 0\nm=audio 4000 RTP/AVP 0\nm=image 0 udptl t38\n")},
		{name: "T.38 over TCP is not relayed", usable: []bool{true, false}, udptl: []bool{false, false}, remote: []string{"192.0.2.1:4000", "192.0.2.1:4002"},
			body: crlf("v=0\no=- 1 1 IN IP4 192.0.2.1\ns=-\nc=IN IP4 192.0.2.1\nt=0 0\nm=audio 4000 RTP/AVP 0\nm=image 4002 tcptl t38\n")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, err := Parse(tc.body)
			if err != nil {
				t.Fatal(err)
			}
			if len(d.Media) != len(tc.usable) || d.Kind != KindRTP {
				t.Fatalf("%d m-lines of kind %s", len(d.Media), d.Kind)
			}
			for i, m := range d.Media {
				if m.Usable != tc.usable[i] || m.UDPTL != tc.udptl[i] {
					t.Errorf("m-line %d: usable %v udptl %v, want %v %v", i, m.Usable, m.UDPTL, tc.usable[i], tc.udptl[i])
				}
				var want netip.AddrPort
				if tc.remote[i] != "" {
					want = netip.MustParseAddrPort(tc.remote[i])
				}
				if m.Remote() != want {
					t.Errorf("m-line %d: remote %v, want %v", i, m.Remote(), want)
				}
			}
			if d.HasUDPTL() != tc.fax {
				t.Errorf("HasUDPTL %v", d.HasUDPTL())
			}
		})
	}
}

// TestUnmarshalImageRoundTrip: an image m-line is read with its type,
// protocol, format and T38Fax* attributes as written, and written back
// the same; a body without one is pion's parse.
func TestUnmarshalImageRoundTrip(t *testing.T) {
	sd, err := Unmarshal([]byte(t38Only))
	if err != nil {
		t.Fatal(err)
	}
	mn := sd.MediaDescriptions[0].MediaName
	if mn.Media != "image" || strings.Join(mn.Protos, "/") != "udptl" || mn.Formats[0] != "t38" {
		t.Fatalf("m-line read as %+v", mn)
	}
	if v, ok := sd.MediaDescriptions[0].Attribute("T38FaxUdpEC"); !ok || v != "t38UDPRedundancy" {
		t.Fatalf("T38FaxUdpEC %q %v", v, ok)
	}
	out, err := sd.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != t38Only {
		t.Fatalf("written back as\n%s\nwant\n%s", out, t38Only)
	}
	if _, err := Unmarshal([]byte("v=0\r\nm=bogus 1 udptl t38\r\n")); err == nil {
		t.Fatal("an unknown media type other than image parsed")
	}
}

// TestRenderImageTowardBrowser: a T.38 offer has nothing a WebRTC or
// SRTP side can take; the renderer says so (ErrNoCodec), and the
// image line of a mixed offer is disabled as an image line.
func TestRenderImageTowardBrowser(t *testing.T) {
	d, err := Parse([]byte(t38Only))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := RenderOffer(d, KindWebRTC, localFor(1, KindWebRTC, "")); !errors.Is(err, ErrNoCodec) {
		t.Fatalf("T.38 offer toward WebRTC: %v, want ErrNoCodec", err)
	}
	mixed, err := Parse(crlf("v=0\no=- 1 1 IN IP4 192.0.2.1\ns=-\nc=IN IP4 192.0.2.1\nt=0 0\nm=audio 4000 RTP/AVP 0\nm=image 4002 udptl t38\na=T38FaxVersion:0\n"))
	if err != nil {
		t.Fatal(err)
	}
	out, err := RenderOffer(mixed, KindWebRTC, localFor(2, KindWebRTC, ""))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), "\r\nm=image 0 udptl t38\r\n") || strings.Contains(string(out), "T38Fax") {
		t.Fatalf("image line not disabled:\n%s", out)
	}
}
