package config

import "time"

// Policy stage names, in the one order the chain runs them (DESIGN.md):
// blacklist → rate_limit → sanity → auth → admission → dial_rules. The
// first three run on every request before any transaction exists; the last
// three run on new INVITEs once their route is known.
const (
	StageBlacklist = "blacklist"
	StageRateLimit = "rate_limit"
	StageSanity    = "sanity"
	StageAuth      = "auth"
	StageAdmission = "admission"
	StageDialRules = "dial_rules"
)

// StageOrder is every stage in chain order.
var StageOrder = []string{StageBlacklist, StageRateLimit, StageSanity, StageAuth, StageAdmission, StageDialRules}

// Policy defaults.
const (
	DefaultLogInterval      = 10 * time.Second // one log line per source and stage per interval
	DefaultBlacklistAction  = ActionDrop
	DefaultRateMaxSources   = 65536 // per-source rate-limit entries kept; least recently seen evicted
	DefaultRequestsRate     = 100.0 // requests/s per source IP
	DefaultRequestsBurst    = 200
	DefaultInviteRate       = 20.0 // INVITEs/s per source IP
	DefaultInviteBurst      = 40
	DefaultRegisterRate     = 10.0 // REGISTERs/s per source IP
	DefaultRegisterBurst    = 20
	DefaultDropAfter        = 20 // excess requests answered 503 per source before it is ignored
	DefaultRateRetryAfter   = 5 * time.Second
	DefaultBansFile         = "./bans.json"
	DefaultBanDuration      = time.Hour
	DefaultBanWindow        = 5 * time.Minute
	DefaultBanAuthFailures  = 5
	DefaultBanNotFound      = 10
	DefaultBanRateLimited   = 100
	DefaultBanBlacklisted   = 1
	DefaultMaxCallsPerUser  = 10
	DefaultMaxCallDuration  = 4 * time.Hour
	DefaultCountryCode      = "1"
	DefaultNationalPrefix   = "1"
	DefaultInternationalPfx = "011"
	DefaultDialGroup        = "default"
	DefaultMaxShortDigits   = 6  // digits of a short number (extension, 911); MaxShortDigitsLimit at most
	DefaultEchoMaxCalls     = 50 // concurrent calls to the echo destination
	DefaultEchoMaxCallsIP   = 4  // concurrent echo calls per source IP (IPv6: per /64)
)

// MaxShortDigitsLimit bounds policy.dial_rules.max_short_digits: the
// shortest international numbers have 7 digits (+290 and a 4-digit
// subscriber number), so a string of at most 6 digits cannot name one
// however a trunk reads it, whatever prefix it takes for international.
const MaxShortDigitsLimit = 6

// Blacklist actions.
const (
	ActionDrop   = "drop"   // silently ignore the request
	ActionReject = "reject" // answer 403 Forbidden
)

// DefaultScannerAgents are the User-Agent patterns of known SIP scanners
// and toll-fraud tools (case-insensitive regular expressions).
var DefaultScannerAgents = []string{
	"friendly-scanner", "sipvicious", "sipcli", "vaxsipuseragent", "sip-scan",
	"sipsak", "iwar", "sundayddr", "smap", "pplsip", "cseq", "svcrack", "svwar",
	"sipscan", "voipbuster", "eyebeam-scan",
}

// DefaultPremiumPrefixes are E.164 prefixes of premium-rate and
// high-fraud ranges denied unless a dial group allows premium numbers.
var DefaultPremiumPrefixes = []string{
	"+1900", "+1976", // NANP premium
	"+44870", "+44871", "+44872", "+44873", "+4490", "+4491", "+4498", // UK
	"+49900", "+49137", "+49118", // Germany
	"+3389", "+3308", // France
	"+39899", "+34803", "+34806", "+34807", "+31900", "+61190",
	"+881", "+882", "+883", "+870", "+979", // international networks, satellite, premium
}

// Policy configures the policy chain every inbound request passes.
type Policy struct {
	// Chain lists the stages that run; any subset of StageOrder, always run
	// in that order (writing them in another order is an error, so the file
	// says what happens). Default: all six.
	Chain []string `mapstructure:"chain"`
	// LogInterval: a stage logs at most one line per source per interval
	// (with the count of what it left out), so floods cannot flood the log.
	// Default DefaultLogInterval.
	LogInterval time.Duration `mapstructure:"log_interval"`
	Blacklist   Blacklist     `mapstructure:"blacklist"`
	RateLimit   RateLimit     `mapstructure:"rate_limit"`
	Bans        Bans          `mapstructure:"bans"`
	Admission   Admission     `mapstructure:"admission"`
	DialRules   DialRules     `mapstructure:"dial_rules"`
	WebSocket   WebSocket     `mapstructure:"websocket"`
}

// Blacklist refuses requests by source or content (stage blacklist).
type Blacklist struct {
	// CIDRs are IPs or prefixes, IPv4 or IPv6, never served. Default: none.
	CIDRs []string `mapstructure:"cidrs"`
	// UserAgents are case-insensitive regular expressions matched against
	// User-Agent. Default DefaultScannerAgents.
	UserAgents []string `mapstructure:"user_agents"`
	// URIs are case-insensitive regular expressions matched against the
	// request-URI, From URI and To URI. Default: none.
	URIs []string `mapstructure:"uris"`
	// Action is drop (say nothing: a scanner learns nothing) or reject
	// (403). Default DefaultBlacklistAction.
	Action string `mapstructure:"action"`
}

// Bucket is a token bucket: Rate tokens per second, holding at most Burst.
// Rate 0 turns the bucket off.
type Bucket struct {
	Rate  float64 `mapstructure:"rate"`
	Burst int     `mapstructure:"burst"`
}

// RateLimit limits request rates per source IP (stage rate_limit).
type RateLimit struct {
	// Requests: every request from one source IP. Default
	// DefaultRequestsRate/DefaultRequestsBurst.
	Requests Bucket `mapstructure:"requests"`
	// Invite: new INVITEs from one source IP. Default DefaultInviteRate/Burst.
	Invite Bucket `mapstructure:"invite"`
	// Register: REGISTERs from one source IP. Default DefaultRegisterRate/Burst.
	Register Bucket `mapstructure:"register"`
	// DropAfter: a source over its limit gets 503 with Retry-After for its
	// first DropAfter excess requests; after that it is ignored until its
	// bucket refills, so a flood costs the attacker more than it costs us.
	// Default DefaultDropAfter.
	DropAfter int `mapstructure:"drop_after"`
	// RetryAfter is the Retry-After on those 503s. Default DefaultRateRetryAfter.
	RetryAfter time.Duration `mapstructure:"retry_after"`
	// MaxSources bounds the per-source state: past it the least recently
	// seen source is forgotten, so a spoofed-source flood cannot exhaust
	// memory. Default DefaultRateMaxSources.
	MaxSources int `mapstructure:"max_sources"`
	// ExemptCIDRs are never rate limited per source (a busy PBX). Trunk
	// addresses are always exempt; they have per-trunk limits under
	// admission. Default: none.
	ExemptCIDRs []string `mapstructure:"exempt_cidrs"`
}

// Bans are fail2ban-like dynamic bans: a source that misbehaves N times
// within Window is ignored (as if blacklisted) for Duration.
type Bans struct {
	// File keeps bans across restarts (JSON, rewritten atomically on each
	// change). Empty: bans live in memory only. Default DefaultBansFile.
	File string `mapstructure:"file"`
	// Duration of a dynamic ban. Default DefaultBanDuration.
	Duration time.Duration `mapstructure:"duration"`
	// Window over which the counts below are taken. Default DefaultBanWindow.
	Window time.Duration `mapstructure:"window"`
	// AuthFailures: wrong passwords, unknown users, stale replays.
	// 0 disables. Default DefaultBanAuthFailures.
	AuthFailures int `mapstructure:"auth_failures"`
	// NotFound: 404 answers (extension scans). 0 disables. Default
	// DefaultBanNotFound.
	NotFound int `mapstructure:"not_found"`
	// RateLimited: requests refused by rate_limit. 0 disables. Default
	// DefaultBanRateLimited.
	RateLimited int `mapstructure:"rate_limited"`
	// Blacklisted: requests refused by the User-Agent or URI blacklist
	// (a scanner is banned on its first). 0 disables. Default
	// DefaultBanBlacklisted.
	Blacklisted int `mapstructure:"blacklisted"`
	// ExemptCIDRs are never banned dynamically (admin bans still apply).
	// Default: none.
	ExemptCIDRs []string `mapstructure:"exempt_cidrs"`
}

// Admission limits concurrent calls and call rates (stage admission).
// 0 means unlimited throughout.
type Admission struct {
	// MaxCalls in total. Default 0.
	MaxCalls int `mapstructure:"max_calls"`
	// MaxCallsPerTrunk toward any one trunk (counted against the route's
	// first trunk that is up). Default 0.
	MaxCallsPerTrunk int `mapstructure:"max_calls_per_trunk"`
	// MaxCallsPerUser per authenticated user. Default DefaultMaxCallsPerUser.
	MaxCallsPerUser int `mapstructure:"max_calls_per_user"`
	// MaxCallsPerIP per source IP (an IPv6 source per /64, as for rate
	// limits). Default 0.
	MaxCallsPerIP int `mapstructure:"max_calls_per_ip"`
	// MaxDuration ends a call (BYE both legs, cause max_duration) this long
	// after it was answered. Default DefaultMaxCallDuration.
	MaxDuration time.Duration `mapstructure:"max_duration"`
	// UserCPS: new calls per second per authenticated user. Default off.
	UserCPS Bucket `mapstructure:"user_cps"`
	// TrunkCPS: new calls per second toward any one trunk. Default off.
	TrunkCPS Bucket `mapstructure:"trunk_cps"`
	// Echo limits calls to the built-in echo destination, which needs no
	// authentication: without a bound of its own, strangers could hold
	// every RTP port with echo calls. Counted on top of the limits above.
	Echo EchoAdmission `mapstructure:"echo"`
}

// EchoAdmission limits concurrent calls to the echo destination (target
// echo); over a limit a call is answered 503 with Retry-After. 0 means
// unlimited.
type EchoAdmission struct {
	// MaxCalls in total. Default DefaultEchoMaxCalls.
	MaxCalls int `mapstructure:"max_calls"`
	// MaxCallsPerIP per source IP (an IPv6 source per /64, as for rate
	// limits). Default DefaultEchoMaxCallsIP.
	MaxCallsPerIP int `mapstructure:"max_calls_per_ip"`
}

// DialRules are the toll-fraud rules for calls toward trunks (stage
// dial_rules): the dialed number is read under this dialing plan (a full
// number in E.164, a short number, a name, or unreadable), checked against
// the caller's group in that one form, and leg B dials that form.
type DialRules struct {
	// CountryCode is the home country calling code, digits only, e.g. 1,
	// 44, 49. Default DefaultCountryCode.
	CountryCode string `mapstructure:"country_code"`
	// NationalPrefix is dialed before national numbers (0 in most of
	// Europe, 1 in NANP). Default DefaultNationalPrefix.
	NationalPrefix string `mapstructure:"national_prefix"`
	// InternationalPrefix is dialed before a country code (00, 011).
	// "+" always works too. Default DefaultInternationalPfx.
	InternationalPrefix string `mapstructure:"international_prefix"`
	// AccessCodes are outside-line codes callers dial before a full number
	// ("9" on many PBXs), digits. One is removed when a full number
	// follows it. Default: none.
	AccessCodes []string `mapstructure:"access_codes"`
	// FeatureCodes are service codes phones dial before a full number
	// ("*67", "*82"): "*" or "#" then digits, "*" or "#". One is removed
	// when a full number follows it, and is not sent on: the SBC dials the
	// number. Default: none.
	FeatureCodes []string `mapstructure:"feature_codes"`
	// MaxShortDigits: a dialed string that is not a full number but at
	// most this many digits (with "*" and "#") is a short number (an
	// extension, 911, *97) and is dialed as is; anything longer must read
	// as a full number or is refused. 0 to MaxShortDigitsLimit. Default
	// DefaultMaxShortDigits.
	MaxShortDigits int `mapstructure:"max_short_digits"`
	// PremiumPrefixes are E.164 prefixes ("+1900") treated as premium rate.
	// Default DefaultPremiumPrefixes.
	PremiumPrefixes []string `mapstructure:"premium_prefixes"`
	// DefaultGroup is the group of users without one, of trusted sources
	// and of HMAC (web) credentials. Must name a group. Default
	// DefaultDialGroup.
	DefaultGroup string `mapstructure:"default_group"`
	// Groups are the dial groups. Default: one group named default that
	// may call national, non-premium numbers.
	Groups []DialGroup `mapstructure:"groups"`
}

// DialGroup is the rules of one group of callers.
type DialGroup struct {
	// Name is what users[].group and default_group refer to.
	Name string `mapstructure:"name"`
	// Allow: if not empty, only numbers starting with one of these E.164
	// prefixes ("+4930", or "*" for any) may be dialed.
	Allow []string `mapstructure:"allow"`
	// Deny: numbers starting with one of these E.164 prefixes are refused,
	// whatever Allow says.
	Deny []string `mapstructure:"deny"`
	// International lets the group call other countries. Default false.
	International bool `mapstructure:"international"`
	// Premium lets the group call PremiumPrefixes. Default false.
	Premium bool `mapstructure:"premium"`
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
