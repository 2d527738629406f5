package trunkreg

import (
	"strings"
	"testing"
	"time"

	"github.com/ghettovoice/gosip/sip"

	"github.com/sbc-project/sbc/b2bua/sipmsg"
)

func response(t testing.TB, headers string) sip.Response {
	text := "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.5.60:5060;branch=z9hG4bK1\r\nFrom: <sip:a@x>;tag=1\r\nTo: <sip:a@x>;tag=2\r\n" +
		"Call-ID: c\r\nCSeq: 2 REGISTER\r\n" + headers + "Content-Length: 0\r\n\r\n"
	m, err := sipmsg.NewParser(sipmsg.Limits{}).Parse([]byte(text))
	if err != nil {
		return nil
	}
	res, _ := m.(sip.Response)
	return res
}

func TestGranted(t *testing.T) {
	tests := []struct {
		name, headers string
		want          time.Duration
	}{
		{"our contact's expires", "Contact: <sip:other@h>;expires=10, <sip:me@h:5060>;expires=120\r\nExpires: 30\r\n", 120 * time.Second},
		{"Expires header", "Contact: <sip:me@h>\r\nExpires: 30\r\n", 30 * time.Second},
		{"nothing: what was asked", "", time.Hour},
		{"other contacts only", "Contact: <sip:other@h>;expires=10\r\n", time.Hour},
		{"quoted", "Contact: <sip:me@h>;expires=\"45\"\r\n", 45 * time.Second},
		{"more than asked", "Contact: <sip:me@h>;expires=7200\r\n", time.Hour},
		{"overflowing", "Contact: <sip:me@h>;expires=9999999999999\r\n", time.Hour},
	}
	for _, tc := range tests {
		res := response(t, tc.headers)
		if res == nil {
			t.Fatalf("%s: response does not parse", tc.name)
		}
		if got := granted(res, "me", time.Hour); got != tc.want {
			t.Errorf("%s: granted = %s, want %s", tc.name, got, tc.want)
		}
	}
}

// FuzzGranted: any Contact and Expires a registrar sends give a grant of
// zero or more, without panicking.
func FuzzGranted(f *testing.F) {
	f.Add("<sip:me@h>;expires=120", "30")
	f.Add("<sip:me@h>;expires=99999999999999999999", "-1")
	f.Add("sip:me@h;expires=", "x")
	f.Fuzz(func(t *testing.T, contact, expires string) {
		if strings.ContainsAny(contact+expires, "\r\n") {
			return
		}
		res := response(t, "Contact: "+contact+"\r\nExpires: "+expires+"\r\n")
		if res == nil {
			return
		}
		if g := granted(res, "me", time.Minute); g < 0 || g > time.Minute {
			t.Fatalf("granted = %s", g)
		}
	})
}
