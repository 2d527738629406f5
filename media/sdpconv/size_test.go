package sdpconv

import (
	"testing"
	"unsafe"
)

// A Media fits the 352-byte size class (368 bytes, in the 384 class, with
// its flags among wider fields): a media session keeps the m-lines of
// the SDP each side last sent, for every call.
func TestMediaSizeClass(t *testing.T) {
	if got := unsafe.Sizeof(Media{}); got > 352 {
		t.Fatalf("a Media is %d bytes, more than the 352-byte size class", got)
	}
}

// A Codec is 64 bytes: every m-line kept lists its codecs.
func TestCodecSize(t *testing.T) {
	if got := unsafe.Sizeof(Codec{}); got > 64 {
		t.Fatalf("a Codec is %d bytes, more than 64", got)
	}
}
