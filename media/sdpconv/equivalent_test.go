package sdpconv

import (
	"strings"
	"testing"
)

func TestEquivalent(t *testing.T) {
	asterisk := string(load(t, "asterisk_offer.sdp"))
	chrome := string(load(t, "chrome_offer.sdp"))
	tests := []struct {
		name string
		base string
		edit func(string) string
		want bool
	}{
		{"identical", asterisk, func(s string) string { return s }, true},
		{"new port, address, version and rtcp", asterisk, func(s string) string {
			s = strings.Replace(s, "1711533029 1711533029", "1711533029 1711533030", 1)
			s = strings.Replace(s, "c=IN IP4 192.0.2.10", "c=IN IP4 192.0.2.11", 1)
			s = strings.Replace(s, "m=audio 10000", "m=audio 12000", 1)
			return s + "a=rtcp:12001\r\n"
		}, true},
		{"ssrc, ptime and rtcp-mux", asterisk, func(s string) string {
			s = strings.Replace(s, "a=ptime:20", "a=ptime:30", 1)
			return s + "a=ssrc:12345 cname:pbx\r\na=rtcp-mux\r\n"
		}, true},
		{"browser ice restart with new candidates and ssrc", chrome, func(s string) string {
			s = strings.ReplaceAll(s, "a=ice-ufrag:Kq3v", "a=ice-ufrag:Zz9w")
			s = strings.ReplaceAll(s, "3735928559", "3735928560")
			return strings.ReplaceAll(s, "54400 typ host", "54402 typ host")
		}, true},
		{"codec removed", asterisk, func(s string) string { return strings.Replace(s, "0 8 18 101", "0 18 101", 1) }, false},
		{"codecs reordered", asterisk, func(s string) string { return strings.Replace(s, "0 8 18 101", "8 0 18 101", 1) }, false},
		{"payload type renumbered", asterisk, func(s string) string {
			return strings.ReplaceAll(strings.Replace(s, "18 101", "18 96", 1), ":101 ", ":96 ")
		}, false},
		{"fmtp changed", asterisk, func(s string) string { return strings.Replace(s, "a=fmtp:101 0-16", "a=fmtp:101 0-15", 1) }, false},
		{"hold by sendonly", asterisk, func(s string) string { return strings.Replace(s, "a=sendrecv", "a=sendonly", 1) }, false},
		{"hold by c=0.0.0.0", asterisk, func(s string) string {
			return strings.Replace(s, "c=IN IP4 192.0.2.10", "c=IN IP4 0.0.0.0", 1)
		}, false},
		{"stream added", asterisk, func(s string) string {
			return s + "m=video 10002 RTP/AVP 96\r\na=rtpmap:96 VP8/90000\r\n"
		}, false},
		{"stream disabled", chrome, func(s string) string { return strings.Replace(s, "m=video 54400", "m=video 0", 1) }, false},
		{"kind changed to sdes", asterisk, func(s string) string {
			return strings.Replace(s, "RTP/AVP", "RTP/SAVP", 1) + "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz\r\n"
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prev := mustParse(t, []byte(tt.base))
			next := mustParse(t, []byte(tt.edit(tt.base)))
			if got := Equivalent(prev, next); got != tt.want {
				t.Errorf("Equivalent = %v, want %v", got, tt.want)
			}
			if got := Equivalent(next, prev); got != tt.want {
				t.Errorf("Equivalent is not symmetric: %v", got)
			}
		})
	}
	if Equivalent(nil, mustParse(t, []byte(asterisk))) {
		t.Error("nil is equivalent to a description")
	}
}
