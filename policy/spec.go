package policy

import (
	"slices"
	"time"
)

// This file is what New builds a chain from: the stage names and their one
// order, each stage's settings and their defaults. The stage settings carry
// mapstructure tags because the SBC's config file sets them as they are:
// the config loader decodes its policy.blacklist, policy.rate_limit ...
// sections straight into these types, so each setting is declared and
// documented once, here, with its unit and default.

// Stage names, in the one order the chain runs them (ARCHITECTURE.md):
// blacklist → rate_limit → sanity → auth → admission → dial_rules. The
// first three run on every request before any transaction exists (Early);
// the last three run on new INVITEs once their route is known (Late).
const (
	StageBlacklist = "blacklist"
	StageRateLimit = "rate_limit"
	StageSanity    = "sanity"
	StageAuth      = "auth"
	StageAdmission = "admission"
	StageDialRules = "dial_rules"
)

// StageOrder is every stage in chain order. Callers must not modify it.
var StageOrder = []string{StageBlacklist, StageRateLimit, StageSanity, StageAuth, StageAdmission, StageDialRules}

// Stage defaults, as DefaultSpec returns them.
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

// MaxShortDigitsLimit bounds DialRulesSpec.MaxShortDigits: the shortest
// international numbers have 7 digits (+290 and a 4-digit subscriber
// number), so a string of at most 6 digits cannot name one however a
// trunk reads it, whatever prefix it takes for international.
const MaxShortDigitsLimit = 6

// Blacklist actions (BlacklistSpec.Action).
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

// Spec is the chain New builds: which stages run, and their settings. The
// zero value runs no stage.
type Spec struct {
	// Stages lists the stages that run: names from StageOrder, run in that
	// order whatever the order given.
	Stages []string
	// LogInterval: a stage logs at most one line per source per interval
	// (with the count of what it left out), so floods cannot flood the log.
	LogInterval time.Duration
	Blacklist   BlacklistSpec
	RateLimit   RateLimitSpec
	// Bans: dynamic bans are counted whichever stages run, and honoured by
	// the blacklist stage; the ban store itself is Deps.Bans.
	Bans      BanSpec
	Admission AdmissionSpec
	DialRules DialRulesSpec
}

// DefaultSpec returns every stage with its defaults: scanners banned on
// sight, per-source rate limits, and one dial group that may call
// national, non-premium numbers. Lists are empty rather than nil where
// the default has none. Each call returns a new value the caller may
// modify.
func DefaultSpec() Spec {
	return Spec{
		Stages:      slices.Clone(StageOrder),
		LogInterval: DefaultLogInterval,
		Blacklist: BlacklistSpec{
			CIDRs:      []string{},
			UserAgents: slices.Clone(DefaultScannerAgents),
			URIs:       []string{},
			Action:     DefaultBlacklistAction,
		},
		RateLimit: RateLimitSpec{
			Requests:    Bucket{Rate: DefaultRequestsRate, Burst: DefaultRequestsBurst},
			Invite:      Bucket{Rate: DefaultInviteRate, Burst: DefaultInviteBurst},
			Register:    Bucket{Rate: DefaultRegisterRate, Burst: DefaultRegisterBurst},
			DropAfter:   DefaultDropAfter,
			RetryAfter:  DefaultRateRetryAfter,
			MaxSources:  DefaultRateMaxSources,
			ExemptCIDRs: []string{},
		},
		Bans: BanSpec{
			Duration:     DefaultBanDuration,
			Window:       DefaultBanWindow,
			AuthFailures: DefaultBanAuthFailures,
			NotFound:     DefaultBanNotFound,
			RateLimited:  DefaultBanRateLimited,
			Blacklisted:  DefaultBanBlacklisted,
			ExemptCIDRs:  []string{},
		},
		Admission: AdmissionSpec{
			MaxCallsPerUser: DefaultMaxCallsPerUser,
			MaxDuration:     DefaultMaxCallDuration,
			Echo:            EchoSpec{MaxCalls: DefaultEchoMaxCalls, MaxCallsPerIP: DefaultEchoMaxCallsIP},
		},
		DialRules: DialRulesSpec{
			CountryCode:         DefaultCountryCode,
			NationalPrefix:      DefaultNationalPrefix,
			InternationalPrefix: DefaultInternationalPfx,
			AccessCodes:         []string{},
			FeatureCodes:        []string{},
			MaxShortDigits:      DefaultMaxShortDigits,
			PremiumPrefixes:     slices.Clone(DefaultPremiumPrefixes),
			DefaultGroup:        DefaultDialGroup,
			Groups:              []DialGroupSpec{{Name: DefaultDialGroup, Allow: []string{}, Deny: []string{}}},
		},
	}
}

// BlacklistSpec refuses requests by source or content (stage blacklist).
type BlacklistSpec struct {
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

// RateLimitSpec limits request rates per source IP (stage rate_limit).
type RateLimitSpec struct {
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
	// memory. It bounds the dynamic bans' counts too. Default
	// DefaultRateMaxSources.
	MaxSources int `mapstructure:"max_sources"`
	// ExemptCIDRs are never rate limited per source (a busy PBX). Trunk
	// addresses are always exempt (Deps.Exempt); they have per-trunk
	// limits under admission. Default: none.
	ExemptCIDRs []string `mapstructure:"exempt_cidrs"`
}

// BanSpec sets the fail2ban-like dynamic bans: a source that misbehaves N
// times within Window is ignored (as if blacklisted) for Duration.
type BanSpec struct {
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

// AdmissionSpec limits concurrent calls and call rates (stage admission).
// 0 means unlimited throughout.
type AdmissionSpec struct {
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
	Echo EchoSpec `mapstructure:"echo"`
}

// EchoSpec limits concurrent calls to the echo destination (TargetEcho);
// over a limit a call is answered 503 with Retry-After. 0 means
// unlimited.
type EchoSpec struct {
	// MaxCalls in total. Default DefaultEchoMaxCalls.
	MaxCalls int `mapstructure:"max_calls"`
	// MaxCallsPerIP per source IP (an IPv6 source per /64, as for rate
	// limits). Default DefaultEchoMaxCallsIP.
	MaxCallsPerIP int `mapstructure:"max_calls_per_ip"`
}

// DialRulesSpec are the toll-fraud rules for calls toward trunks (stage
// dial_rules): the dialed number is read under this dialing plan (a full
// number in E.164, a short number, a name, or unreadable), checked against
// the caller's group in that one form, and leg B dials that form.
type DialRulesSpec struct {
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
	Groups []DialGroupSpec `mapstructure:"groups"`
}

// DialGroupSpec is the rules of one group of callers.
type DialGroupSpec struct {
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
