package app

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sbc-project/sbc/internal/config"
)

// lockedBuffer is a log sink safe for the app's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *lockedBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *lockedBuffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// TestWarnMinSEAboveJsSIP: an operator who raises sip.min_se above the
// 90 s JsSIP asks for, with a WebSocket listener, is told at start that
// JsSIP browsers' calls will fail (422, never retried); at 90 s, or with
// no WebSocket listener, nothing is said.
func TestWarnMinSEAboveJsSIP(t *testing.T) {
	for _, tc := range []struct {
		name  string
		minSE time.Duration
		ws    bool
		warn  bool
	}{
		{"above with ws", 120 * time.Second, true, true},
		{"default with ws", config.DefaultMinSE, true, false},
		{"above without ws", 120 * time.Second, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := testConfig()
			c.SIP.MinSE, c.SIP.SessionExpires = tc.minSE, 30*time.Minute
			if tc.ws {
				c.SIP.Listeners = append(c.SIP.Listeners, config.Listener{Name: "ws", Transport: "ws", Addr: "127.0.0.1:0"})
			}
			var out lockedBuffer
			a, err := New(c, slog.New(slog.NewTextHandler(&out, nil)), Options{})
			if err != nil {
				t.Fatal(err)
			}
			a.Close()
			if got := strings.Contains(out.String(), "sip.min_se is above the 90s JsSIP asks for"); got != tc.warn {
				t.Errorf("warned %v, want %v; log:\n%s", got, tc.warn, out.String())
			}
		})
	}
}
