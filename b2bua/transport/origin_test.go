package transport

import (
	"crypto/tls"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

func TestOriginChecker(t *testing.T) {
	tests := []struct {
		name    string
		allowed []string
		host    string // request Host
		tls     bool
		origin  string // "" sends none
		want    bool
	}{
		{"no origin, empty list", nil, "sbc.example:8443", true, "", true},
		{"no origin, allowlist", []string{"https://a.example"}, "sbc.example", false, "", true},
		{"any", []string{"*"}, "sbc.example", false, "https://evil.example", true},
		{"any among others", []string{"https://a.example", " * "}, "sbc.example", false, "null", true},
		{"same origin", nil, "sbc.example:8443", true, "https://sbc.example:8443", true},
		{"same origin, case", nil, "SBC.example:8443", true, "HTTPS://sbc.EXAMPLE:8443", true},
		{"same origin, default port in Host", nil, "sbc.example:443", true, "https://sbc.example", true},
		{"same origin, default port in Origin", nil, "sbc.example", true, "https://sbc.example:443", true},
		{"same origin, plain ws", nil, "sbc.example", false, "http://sbc.example:80", true},
		{"same origin, ipv6", nil, "[::1]:8443", true, "https://[::1]:8443", true},
		{"other port", nil, "sbc.example:8443", true, "https://sbc.example:9443", false},
		{"other host", nil, "sbc.example:8443", true, "https://evil.example:8443", false},
		{"same origin behind a tls proxy", nil, "sbc.example", false, "https://sbc.example", true},
		{"same origin, other default port", nil, "sbc.example:80", true, "https://sbc.example", true},
		{"null origin", nil, "sbc.example", false, "null", false},
		{"garbage origin", nil, "sbc.example", false, "%zz", false},
		{"listed", []string{"https://phone.example"}, "sbc.example", true, "https://phone.example", true},
		{"listed, normalized", []string{"HTTPS://Phone.Example:443/"}, "sbc.example", true, "https://phone.example", true},
		{"listed with port", []string{"http://phone.example:8080"}, "sbc.example", false, "http://PHONE.example:8080", true},
		{"listed, other scheme", []string{"https://phone.example"}, "sbc.example", true, "http://phone.example", false},
		{"listed, other port", []string{"https://phone.example"}, "sbc.example", true, "https://phone.example:8443", false},
		{"list excludes same origin", []string{"https://phone.example"}, "sbc.example", true, "https://sbc.example", false},
		{"bad entry matches nothing", []string{"phone.example"}, "sbc.example", true, "https://phone.example", false},
		{"origin with path", []string{"https://phone.example"}, "sbc.example", true, "https://phone.example/x", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.Host = tc.host
			if tc.tls {
				r.TLS = &tls.ConnectionState{}
			}
			if tc.origin != "" {
				r.Header.Set("Origin", tc.origin)
			}
			if got := OriginChecker(tc.allowed)(r); got != tc.want {
				t.Fatalf("allowed=%q host=%s tls=%v origin=%q: got %v, want %v", tc.allowed, tc.host, tc.tls, tc.origin, got, tc.want)
			}
		})
	}
}

func TestParseOrigin(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"https://Phone.Example", "https://phone.example", true},
		{"https://phone.example:443", "https://phone.example", true},
		{"http://phone.example:80/", "http://phone.example", true},
		{"http://phone.example:443", "http://phone.example:443", true},
		{"wss://[::1]:443", "wss://[::1]", true},
		{"https://[2001:DB8::1]:8443", "https://[2001:db8::1]:8443", true},
		{"phone.example", "", false},
		{"https://", "", false},
		{"https://u@phone.example", "", false},
		{"https://phone.example/path", "", false},
		{"https://phone.example?q", "", false},
		{"https://phone.example:port", "", false},
		{"null", "", false},
	}
	for _, tc := range tests {
		got, err := ParseOrigin(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseOrigin(%q) = %q, %v; want %q ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

// A refused Origin gets HTTP 403 and is counted; an allowed one upgrades.
func TestWSOriginRefused(t *testing.T) {
	checkRoutines(t)
	l, rec := newTestLayer(t, Limits{})
	l.CheckOrigin = OriginChecker([]string{"https://phone.example"})
	addr := listen(t, l, "ws", WS, nil)
	d := websocket.Dialer{Subprotocols: []string{"sip"}, HandshakeTimeout: 3 * time.Second}

	ws, resp, err := d.Dial("ws://"+addr.String()+"/", http.Header{"Origin": {"https://evil.example"}})
	if err == nil {
		_ = ws.Close()
		t.Fatal("upgrade from a foreign origin accepted")
	}
	if !errors.Is(err, websocket.ErrBadHandshake) || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("dial error %v (response %v), want 403", err, resp)
	}
	_ = resp.Body.Close()
	rec.none(t)
	if s := l.Stats(); s.Dropped.Origin != 1 || s.Open[WS] != 0 {
		t.Fatalf("origin drops=%d open=%d, want 1 0", s.Dropped.Origin, s.Open[WS])
	}

	ws, resp, err = d.Dial("ws://"+addr.String()+"/", http.Header{"Origin": {"HTTPS://phone.example:443"}})
	if err != nil {
		t.Fatalf("allowed origin refused: %v (%v)", err, resp)
	}
	_ = ws.Close()
	if s := l.Stats(); s.Dropped.Origin != 1 {
		t.Fatalf("origin drops=%d after an allowed upgrade, want 1", s.Dropped.Origin)
	}
}
