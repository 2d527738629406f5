package config

import (
	_ "embed"

	"github.com/sbc-project/sbc/policy"
)

// The canonical defaults file lives next to this package because go:embed
// cannot reach ../../configs. configs/default.yaml is a verbatim copy for
// operators; TestConfigsDefaultIsEmbeddedCopy fails when the two differ, and
// `go generate ./internal/config` refreshes the copy.
//
//go:generate cp default.yaml ../../configs/default.yaml

// defaultYAML is the embedded defaults file. Load starts from it; Default
// returns the same values as a struct (TestDefaultMatchesEmbeddedYAML).
//
//go:embed default.yaml
var defaultYAML []byte

// More defaults, for values that have no field-level constant above.
const (
	DefaultSIPAddr = "127.0.0.1:5060" // default UDP and TCP listener address
	DefaultWSAddr  = "127.0.0.1:8080" // default WS listener address
	DefaultWSSAddr = "127.0.0.1:8443" // default WSS listener address
	DefaultCDRType = CDRJSONL         // type of a cdr writer that names none
)

// CDR writer types.
const (
	CDRJSONL    = "jsonl"    // one JSON object per line, in Dir
	CDRCSV      = "csv"      // CSV with a header line, in Dir
	CDRPostgres = "postgres" // rows in PostgreSQL at DSN
)

// Default returns the built-in configuration: the values of the embedded
// default.yaml, which is what Load("") returns with an empty environment.
// Each call returns a new value the caller may modify. It passes Validate;
// its TLS section is empty, so a self-signed certificate is generated at
// start.
func Default() *Config {
	return &Config{
		NodeID: DefaultNodeID,
		Log:    Log{Level: DefaultLogLevel, Format: DefaultLogFormat, Trace: []string{}},
		SIP: SIP{
			Listeners: []Listener{
				{Name: "udp", Transport: "udp", Addr: DefaultSIPAddr, Symmetric: DefaultSymmetric},
				{Name: "tcp", Transport: "tcp", Addr: DefaultSIPAddr, Symmetric: DefaultSymmetric},
				{Name: "ws", Transport: "ws", Addr: DefaultWSAddr, Symmetric: DefaultSymmetric},
				{Name: "wss", Transport: "wss", Addr: DefaultWSSAddr, Symmetric: DefaultSymmetric},
			},
			TLS:              TLS{ReloadInterval: DefaultTLSReloadInterval},
			UserAgent:        DefaultUserAgent,
			MaxMessageSize:   DefaultMaxMessageSize,
			MaxHeaders:       DefaultMaxHeaders,
			MaxLineLength:    DefaultMaxLineLength,
			HandshakeTimeout: DefaultHandshakeTimeout,
			IdleTimeout:      DefaultIdleTimeout,
			MaxConnsPerIP:    DefaultMaxConnsPerIP,
			HeaderWhitelist:  []string{},
			SessionExpires:   DefaultSessionExpires,
			MinSE:            DefaultMinSE,
			InviteTimeout:    DefaultInviteTimeout,
			RetryAfter:       DefaultRetryAfter,
			OverloadDelay:    DefaultOverloadDelay,
			PRACK:            DefaultPRACK,
			FlowGrace:        DefaultFlowGrace,
			RingTimeout:      DefaultRingTimeout,
		},
		Media: Media{
			BindIP:     DefaultMediaBindIP,
			RTPPorts:   DefaultRTPPorts,
			WebRTCPort: DefaultWebRTCPort,
			Timeout:    DefaultMediaTimeout,

			HandshakeTimeout: DefaultMediaHandshake,
			Ringback:         Ringback{Tone: DefaultRingbackTone, RawRate: DefaultRawRate},
			Transcoding:      Transcoding{Enabled: DefaultTranscodingEnabled, MaxCalls: DefaultTranscodingMaxCalls},
		},
		Trunks: []Trunk{},
		Routes: []Route{{
			Name:   "echo",
			Match:  Match{RURIUser: "^echo$"},
			Target: TargetEcho,
		}},
		CDR: []CDRWriter{{Name: DefaultCDRType, Type: DefaultCDRType, Dir: DefaultCDRDir,
			MaxBytes: DefaultCDRMaxBytes, RotateEvery: DefaultCDRRotateEvery}},
		CDRSpool: DefaultCDRSpool,
		Users:    []User{},
		Auth:     Auth{Realm: DefaultRealm, NonceTTL: DefaultNonceTTL, Algorithms: []string{"SHA-256", "MD5"}},
		Registrar: Registrar{MinExpires: DefaultMinExpires, MaxExpires: DefaultMaxExpires,
			MaxBindingsPerAOR: DefaultMaxBindings, KeepaliveInterval: DefaultKeepalive},
		Policy: defaultPolicy(),
		Admin:  Admin{Addr: DefaultAdminAddr, Hosts: []string{}, DrainTimeout: DefaultDrainTimeout},
		HEP:    HEP{CaptureID: DefaultHEPCaptureID},

		WebPhone: WebPhone{Enabled: DefaultWebPhoneEnabled},
		Timeline: Timeline{Keep: DefaultTimelineKeep, MaxEvents: DefaultTimelineMaxEvents,
			SampleInterval: DefaultTimelineSample},
		Announcements: Announcements{MaxPlaying: DefaultAnnouncementsMax,
			MaxDuration: DefaultAnnouncementMaxTime, Play: []Announcement{}},
	}
}

// defaultPolicy is the policy section of Default: the chain's defaults
// (policy.DefaultSpec), bans kept in DefaultBansFile, and WebSocket pages
// of the same origin only.
func defaultPolicy() Policy {
	spec := policy.DefaultSpec()
	return Policy{
		Chain:       spec.Stages,
		LogInterval: spec.LogInterval,
		Blacklist:   spec.Blacklist,
		RateLimit:   spec.RateLimit,
		Bans:        Bans{File: DefaultBansFile, BanSpec: spec.Bans},
		Admission:   spec.Admission,
		DialRules:   spec.DialRules,
		WebSocket:   WebSocket{AllowedOrigins: []string{}},
	}
}
