package calls

import (
	"crypto/tls"
	"net/http"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/sbc-project/sbc/internal/config"
	"github.com/sbc-project/sbc/test/e2e"
)

// TestWebSocketOriginAllowlist checks policy.websocket.allowed_origins on a
// running SBC: a page from a listed origin (or no Origin: not a browser)
// gets its SIP WebSocket, any other origin gets 403, counted by the
// transport.
func TestWebSocketOriginAllowlist(t *testing.T) {
	sbc := e2e.StartSBC(t, e2e.SBCOptions{Mutate: func(c *config.Config) {
		c.Policy.WebSocket.AllowedOrigins = []string{"https://phone.example"}
	}})
	tests := []struct {
		name, origin string
		want         int // HTTP status of the upgrade
	}{
		{"listed", "https://phone.example", http.StatusSwitchingProtocols},
		{"listed, default port spelled out", "https://PHONE.example:443", http.StatusSwitchingProtocols},
		{"no origin", "", http.StatusSwitchingProtocols},
		{"foreign", "https://evil.example", http.StatusForbidden},
		{"same host, not listed", "https://" + sbc.WSS.String(), http.StatusForbidden},
	}
	d := websocket.Dialer{Subprotocols: []string{"sip"}, HandshakeTimeout: 5 * time.Second,
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}} // the SBC's self-signed default
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			if tc.origin != "" {
				h.Set("Origin", tc.origin)
			}
			ws, resp, err := d.Dial("wss://"+sbc.WSS.String()+"/", h)
			if ws != nil {
				ws.Close()
			}
			if resp == nil {
				t.Fatalf("no HTTP response: %v", err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Fatalf("upgrade answered %d (%v), want %d", resp.StatusCode, err, tc.want)
			}
		})
	}
	if got := sbc.App.Server().Transport().Stats().Dropped.Origin; got != 2 {
		t.Errorf("%d upgrades counted as refused by origin, want 2", got)
	}
}
