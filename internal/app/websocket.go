package app

import (
	"net/http"
	"sync/atomic"

	"github.com/sbc-project/sbc/b2bua/transport"
	"github.com/sbc-project/sbc/internal/config"
)

// setupOrigin installs the WebSocket Origin allowlist of
// policy.websocket.allowed_origins on the transport, before any WS or WSS
// listener starts; a reload that changes the list puts the new one in force
// for the next upgrades (connections already open stay).
func (a *App) setupOrigin(cfg *config.Config) {
	var check atomic.Pointer[func(*http.Request) bool]
	set := func(c *config.Config) {
		f := transport.OriginChecker(c.Policy.WebSocket.AllowedOrigins)
		if c.WebPhone.Enabled && c.WebPhone.Addr != "" {
			// The web phone on its own address is another origin than the
			// WSS listener its page connects to: let it in.
			own := transport.OriginChecker([]string{"https://" + c.WebPhone.Addr})
			allowed := f
			f = func(r *http.Request) bool { return allowed(r) || own(r) }
		}
		check.Store(&f)
	}
	set(cfg)
	a.server.Transport().CheckOrigin = func(r *http.Request) bool { return (*check.Load())(r) }
	a.OnReload([]string{"policy.websocket"}, func(_, next *config.Config) { set(next) })
	// webphone.addr itself is restart-only; its origin follows the
	// config the listeners were started with.
}
