package sdpconv

import (
	"reflect"
	"testing"
	"unsafe"
)

// A Description keeps no string of the buffer pion's lexer copies a
// body's strings into (the rest of the body from its o= line on), so
// that buffer goes with the parse: tokens come from a table, the rest
// are copies of their own.
func TestDescriptionOwnsItsStrings(t *testing.T) {
	body := []byte("v=0\r\no=alice 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n" +
		"a=group:BUNDLE a1\r\n" +
		"m=audio 4000 RTP/AVP 0 8 101 96\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n" +
		"a=rtpmap:96 X-odd/8000\r\na=fmtp:96 mode=30\r\na=rtcp-fb:96 nack\r\na=sendrecv\r\na=mid:a1\r\n" +
		"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz\r\n" +
		"a=ice-ufrag:abcd\r\na=ice-pwd:0123456789abcdefghijkl\r\na=setup:actpass\r\n" +
		"a=fingerprint:sha-256 AB:CD\r\na=candidate:1 1 udp 1 192.0.2.1 4000 typ host\r\n")
	d, sd, err := ParseSession(body)
	if err != nil {
		t.Fatal(err)
	}
	lo := uintptr(unsafe.Pointer(unsafe.StringData(sd.Origin.Username)))
	hi := lo + uintptr(len(body))
	n := 0
	var walk func(path string, v reflect.Value)
	walk = func(path string, v reflect.Value) {
		switch v.Kind() {
		case reflect.String:
			if s := v.String(); s != "" {
				n++
				if p := uintptr(unsafe.Pointer(unsafe.StringData(s))); p >= lo && p < hi {
					t.Errorf("%s (%q) is in the lexer's buffer", path, s)
				}
			}
		case reflect.Pointer:
			if !v.IsNil() {
				walk(path, v.Elem())
			}
		case reflect.Struct:
			for i := range v.NumField() {
				walk(path+"."+v.Type().Field(i).Name, v.Field(i))
			}
		case reflect.Slice:
			for i := range v.Len() {
				walk(path+"[]", v.Index(i))
			}
		}
	}
	walk("d", reflect.ValueOf(d))
	if n < 15 {
		t.Fatalf("walked %d strings, want the m-line's every kind", n)
	}
}
