package config

import (
	"math"
	"testing"
	"time"

	"github.com/sbc-project/sbc/policy"
)

func TestValidatePolicy(t *testing.T) {
	runValidateCases(t, []validateCase{
		{"chain subset in order", func(c *Config) {
			c.Policy.Chain = []string{policy.StageBlacklist, policy.StageSanity, policy.StageDialRules}
		}, nil},
		{"chain empty", func(c *Config) { c.Policy.Chain = []string{} }, nil},
		{"chain unknown stage", func(c *Config) { c.Policy.Chain = []string{policy.StageBlacklist, policy.StageRateLimit, "firewall"} },
			[]string{"policy.chain[2]: want one of blacklist, rate_limit"}},
		{"chain out of order", func(c *Config) { c.Policy.Chain = []string{policy.StageSanity, policy.StageBlacklist} },
			[]string{"policy.chain[1]: out of order"}},
		{"chain twice", func(c *Config) { c.Policy.Chain = []string{policy.StageBlacklist, policy.StageBlacklist} },
			[]string{"policy.chain[1]: listed twice"}},
		{"log interval", func(c *Config) { c.Policy.LogInterval = 0 }, []string{"policy.log_interval: positive"}},
		{"blacklist cidrs", func(c *Config) {
			c.Policy.Blacklist.CIDRs = []string{"192.0.2.7", "198.51.100.0/24", "2001:db8::/32", "::1", "192.0.2.0/33", "host.example", "fe80::1%eth0"}
		}, []string{"policy.blacklist.cidrs[4]: want an IP or CIDR", "policy.blacklist.cidrs[5]: want an IP or CIDR", "policy.blacklist.cidrs[6]: want an IP or CIDR"}},
		{"blacklist patterns", func(c *Config) {
			c.Policy.Blacklist.UserAgents = []string{"ok", "(unclosed"}
			c.Policy.Blacklist.URIs = []string{""}
		}, []string{"policy.blacklist.user_agents[1]: not a regular expression", "policy.blacklist.uris[0]: must not be empty"}},
		{"blacklist action", func(c *Config) { c.Policy.Blacklist.Action = "ignore" }, []string{"policy.blacklist.action: want one of drop, reject"}},
		{"blacklist reject", func(c *Config) { c.Policy.Blacklist.Action = policy.ActionReject }, nil},
		{"bucket off", func(c *Config) { c.Policy.RateLimit.Invite = policy.Bucket{} }, nil},
		{"buckets", func(c *Config) {
			c.Policy.RateLimit.Requests = policy.Bucket{Rate: -1, Burst: 5}
			c.Policy.RateLimit.Invite = policy.Bucket{Rate: 5, Burst: 0}
			c.Policy.RateLimit.Register = policy.Bucket{Rate: math.NaN(), Burst: 1}
			c.Policy.Admission.UserCPS = policy.Bucket{Rate: 0, Burst: -1}
		}, []string{"policy.rate_limit.requests.rate: want 0 (off)", "policy.rate_limit.invite.burst: at least 1",
			"policy.rate_limit.register.rate: want 0", "policy.admission.user_cps.burst: want 0 or more"}},
		{"rate limit numbers", func(c *Config) {
			c.Policy.RateLimit.DropAfter = -1
			c.Policy.RateLimit.RetryAfter = 0
			c.Policy.RateLimit.MaxSources = 0
			c.Policy.RateLimit.ExemptCIDRs = []string{"10.0.0.0/8", "10.0.0.0/"}
		}, []string{"policy.rate_limit.drop_after: want 0 or more", "policy.rate_limit.retry_after: positive",
			"policy.rate_limit.max_sources: at least 1", "policy.rate_limit.exempt_cidrs[1]: want an IP or CIDR"}},
		{"bans", func(c *Config) {
			c.Policy.Bans.Duration = 0
			c.Policy.Bans.Window = -time.Second
			c.Policy.Bans.AuthFailures = -1
			c.Policy.Bans.NotFound = 0 // off
			c.Policy.Bans.ExemptCIDRs = []string{"x"}
		}, []string{"policy.bans.duration: positive", "policy.bans.window: positive",
			"policy.bans.auth_failures: want 0 or more", "policy.bans.exempt_cidrs[0]: want an IP"}},
		{"bans in memory", func(c *Config) { c.Policy.Bans.File = "" }, nil},
		{"admission", func(c *Config) {
			c.Policy.Admission.MaxCalls = -1
			c.Policy.Admission.MaxDuration = -time.Second
		}, []string{"policy.admission.max_calls: want 0 or more", "policy.admission.max_duration: want 0 (unlimited)"}},
		{"admission unlimited", func(c *Config) { c.Policy.Admission = policy.AdmissionSpec{} }, nil},
		{"echo admission", func(c *Config) { c.Policy.Admission.Echo = policy.EchoSpec{MaxCalls: -1, MaxCallsPerIP: -2} },
			[]string{"policy.admission.echo.max_calls: want 0 or more", "policy.admission.echo.max_calls_per_ip: want 0 or more"}},
		{"dial numbering", func(c *Config) {
			d := &c.Policy.DialRules
			d.CountryCode, d.NationalPrefix, d.InternationalPrefix = "+49", "o", "+"
			d.PremiumPrefixes = []string{"+1900", "1900", "+19x"}
		}, []string{"policy.dial_rules.country_code: 1 to 3 digits", "policy.dial_rules.national_prefix: want digits",
			"policy.dial_rules.international_prefix: want digits", "policy.dial_rules.premium_prefixes[1]: want + and digits",
			"policy.dial_rules.premium_prefixes[2]: want + and digits"}},
		{"dial codes", func(c *Config) {
			c.Policy.DialRules.AccessCodes = []string{"9", "", "12345", "*9"}
			c.Policy.DialRules.FeatureCodes = []string{"*67", "#31#", "67", "*", "*6a", "*12345"}
			c.Policy.DialRules.MaxShortDigits = 7
		}, []string{"policy.dial_rules.access_codes[1]: want 1 to 4 digits", "policy.dial_rules.access_codes[2]: want 1 to 4 digits",
			"policy.dial_rules.access_codes[3]: want 1 to 4 digits", "policy.dial_rules.feature_codes[2]: want * or #",
			"policy.dial_rules.feature_codes[3]: want * or #", "policy.dial_rules.feature_codes[4]: want * or #",
			"policy.dial_rules.feature_codes[5]: want * or #", "policy.dial_rules.max_short_digits: want 0 to 6"}},
		{"dial short digits off", func(c *Config) { c.Policy.DialRules.MaxShortDigits = 0 }, nil},
		{"dial groups", func(c *Config) {
			d := &c.Policy.DialRules
			d.Groups = []policy.DialGroupSpec{
				{Name: "default", Allow: []string{"*", "+4930"}, Deny: []string{"+49900"}},
				{Name: "default"},
				{Name: ""},
				{Name: "staff", Allow: []string{"4930", "+"}},
			}
		}, []string{"policy.dial_rules.groups[1].name: already names policy.dial_rules.groups[0]",
			"policy.dial_rules.groups[2].name: must not be empty",
			"policy.dial_rules.groups[3].allow[0]: want + and digits", "policy.dial_rules.groups[3].allow[1]: want + and digits"}},
		{"default group unknown", func(c *Config) { c.Policy.DialRules.DefaultGroup = "staff" },
			[]string{"policy.dial_rules.default_group: no group"}},
		{"user group", func(c *Config) {
			c.Users = []User{{Username: "a", Password: "x", Group: "default"}, {Username: "b", Password: "y", Group: "intl"}}
		}, []string{"users[1].group: no group in policy.dial_rules.groups"}},
		{"allowed origins", func(c *Config) {
			c.Policy.WebSocket.AllowedOrigins = []string{"*", "https://app.example.com", "http://127.0.0.1:8080",
				"app.example.com", "https://app.example.com/", "https://app.example.com:99999", "https://"}
		}, []string{"policy.websocket.allowed_origins[3]: want", "policy.websocket.allowed_origins[4]: want",
			"policy.websocket.allowed_origins[5]: want", "policy.websocket.allowed_origins[6]: want"}},
		{"trusted sources", func(c *Config) {
			c.Routes[0].TrustedSources = []string{"192.0.2.0/24", "2001:db8::1", "pbx.example"}
		}, []string{"routes[0].trusted_sources[2]: want an IP or CIDR"}},
	})
}
