package app

import (
	"time"

	"github.com/sbc-project/sbc/internal/config"
)

// jssipSessionExpires is the session interval JsSIP (the web phone's
// SIP stack, and many browser clients') asks for in its INVITE; it does
// not retry after a 422 Session Interval Too Small.
const jssipSessionExpires = 90 * time.Second

// warnConfig logs, once at start, settings that are valid but that
// clients the SBC serves cannot work with.
func (a *App) warnConfig(cfg *config.Config) {
	if cfg.SIP.MinSE > jssipSessionExpires && hasWebSocket(cfg) {
		a.log.Warn("sip.min_se is above the 90s JsSIP asks for: JsSIP browsers (the web phone among them) get 422 and do not retry, so their calls fail",
			"key", "sip.min_se", "min_se", cfg.SIP.MinSE)
	}
}

// hasWebSocket reports whether the config has a WS or WSS listener.
func hasWebSocket(cfg *config.Config) bool {
	for _, l := range cfg.SIP.Listeners {
		if l.Transport == "ws" || l.Transport == "wss" { // validated lower-case
			return true
		}
	}
	return false
}
