package config

import (
	"time"

	"github.com/sbc-project/sbc/policy"
)

// DefaultBansFile is where bans are kept across restarts by default.
const DefaultBansFile = "./bans.json"

// Policy configures the policy chain every inbound request passes. The
// stage settings are the policy package's own types, decoded as they are:
// each is exactly what its stage takes, so declaring it again here would
// only give every key two definitions to keep in step. internal/app turns
// this section into the policy.Spec the chain is built from.
type Policy struct {
	// Chain lists the stages that run; any subset of policy.StageOrder,
	// always run in that order (writing them in another order is an
	// error, so the file says what happens). Default: all six.
	Chain []string `mapstructure:"chain"`
	// LogInterval: a stage logs at most one line per source per interval
	// (with the count of what it left out), so floods cannot flood the log.
	// Default policy.DefaultLogInterval.
	LogInterval time.Duration        `mapstructure:"log_interval"`
	Blacklist   policy.BlacklistSpec `mapstructure:"blacklist"`
	RateLimit   policy.RateLimitSpec `mapstructure:"rate_limit"`
	Bans        Bans                 `mapstructure:"bans"`
	Admission   policy.AdmissionSpec `mapstructure:"admission"`
	DialRules   policy.DialRulesSpec `mapstructure:"dial_rules"`
	WebSocket   WebSocket            `mapstructure:"websocket"`
}

// Bans are fail2ban-like dynamic bans: a source that misbehaves N times
// within Window is ignored (as if blacklisted) for Duration. The section
// is the chain's policy.BanSpec plus the file of the ban store, which the
// SBC opens (and the admin API shares) rather than the chain.
type Bans struct {
	// File keeps bans across restarts (JSON, rewritten atomically on each
	// change). Empty: bans live in memory only. Default DefaultBansFile.
	File string `mapstructure:"file"`
	// BanSpec's keys sit beside file (squash): policy.bans.duration ...
	policy.BanSpec `mapstructure:",squash"`
}

// WebSocket hardens the WS and WSS listeners (applied by the transport;
// handshake timeout, idle timeout, message and frame size (a frame larger
// than sip.max_message_size closes the connection with 1009) and
// connections per IP are the sip section's limits).
type WebSocket struct {
	// AllowedOrigins lists the Origin values (scheme://host[:port]) whose
	// pages may open a SIP WebSocket; "*" allows any. A request without an
	// Origin (not from a browser) is always allowed. Empty: same origin
	// only (the Origin's host:port equals the Host the browser connected
	// to, as for the SBC's own web phone). Default: empty.
	AllowedOrigins []string `mapstructure:"allowed_origins"`
}
