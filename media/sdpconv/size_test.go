package sdpconv

import (
	"strings"
	"testing"
	"unsafe"
)

// A Media fits the 256-byte size class (352 bytes with its ICE in
// place, 104 of them empty for a plain or SDES side): a media session
// keeps the m-lines of the SDP each side last sent, for every call.
func TestMediaSizeClass(t *testing.T) {
	if got := unsafe.Sizeof(Media{}); got > 256 {
		t.Fatalf("a Media is %d bytes, more than the 256-byte size class", got)
	}
}

// A Description fits the 64-byte size class (144 bytes with the o= line
// it kept and nothing read).
func TestDescriptionSizeClass(t *testing.T) {
	if got := unsafe.Sizeof(Description{}); got > 64 {
		t.Fatalf("a Description is %d bytes, more than the 64-byte size class", got)
	}
}

// An m-line without ICE or DTLS attributes has no ICE; one with them,
// at its level or the session's, has.
func TestICEOnlyWhenGiven(t *testing.T) {
	plain := "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n" +
		"m=audio 4000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
	d, err := Parse([]byte(plain))
	if err != nil {
		t.Fatal(err)
	}
	if d.Media[0].ICE != nil {
		t.Fatalf("plain m-line: ICE %+v, want nil", d.Media[0].ICE)
	}
	withSetup := strings.Replace(plain, "t=0 0\r\n", "t=0 0\r\na=setup:active\r\n", 1)
	d, err = Parse([]byte(withSetup))
	if err != nil {
		t.Fatal(err)
	}
	if ice := d.Media[0].ICE; ice == nil || ice.Setup != "active" {
		t.Fatalf("session-level a=setup: ICE %+v, want setup active", ice)
	}
}

// A Codec is 64 bytes: every m-line kept lists its codecs.
func TestCodecSize(t *testing.T) {
	if got := unsafe.Sizeof(Codec{}); got > 64 {
		t.Fatalf("a Codec is %d bytes, more than 64", got)
	}
}
