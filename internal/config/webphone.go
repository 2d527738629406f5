package config

// DefaultWebPhoneEnabled: the web phone is on in the built-in defaults.
const DefaultWebPhoneEnabled = true

// WebPhone configures the browser phone the SBC serves (internal/webphone):
// a page that calls through the SBC's own WebSocket listeners, with a test
// call to the echo destination.
type WebPhone struct {
	// Enabled serves the page. Default DefaultWebPhoneEnabled.
	Enabled bool `mapstructure:"enabled"`
	// Addr is empty to serve the page on every ws and wss listener (at /,
	// next to the WebSocket endpoint), or an ip:port where a separate HTTPS
	// server serves it with the sip.tls certificate. Default: empty.
	Addr string `mapstructure:"addr"`
}
