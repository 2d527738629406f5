// Package config holds the SBC's typed configuration: the struct every other
// package is wired from, its embedded defaults, loading through viper (YAML
// file plus SBC_ environment overrides) and validation that reports every
// problem with its key path, value and reason.
//
// Nothing reads viper after Load returns: the rest of the program sees only
// a validated *Config.
package config

import (
	"time"

	"github.com/sbc-project/sbc/b2bua/routing"
)

// Defaults. Every field below names the constant it defaults to.
const (
	DefaultNodeID           = "sbc-1"
	DefaultLogLevel         = "info"
	DefaultLogFormat        = "text"
	DefaultUserAgent        = "sbc"
	DefaultMaxMessageSize   = 65535 // bytes; UDP datagrams cannot be larger
	DefaultMaxHeaders       = 128
	DefaultMaxLineLength    = 8192 // bytes
	DefaultHandshakeTimeout = 5 * time.Second
	DefaultIdleTimeout      = 15 * time.Minute
	DefaultMaxConnsPerIP    = 200  // stream connections per source IP; 0 is unlimited
	DefaultSymmetric        = true // a UDP listener answers requests at their source port (NAT)
	DefaultSessionExpires   = 1800 * time.Second
	DefaultMinSE            = 90 * time.Second
	DefaultInviteTimeout    = 32 * time.Second // Timer B / Timer C bound for one B-leg attempt
	DefaultRingTimeout      = 180 * time.Second
	DefaultMediaBindIP      = "127.0.0.1"
	DefaultRTPPorts         = "20000-29999"
	DefaultWebRTCPort       = 0 // 0: one port per call from rtp_ports
	DefaultMediaTimeout     = 60 * time.Second
	DefaultMediaHandshake   = 10 * time.Second // ICE + DTLS toward a browser
	DefaultTrunkMedia       = MediaRTP
	DefaultTrunkDTMF        = DTMFRFC4733
	DefaultOptionsInterval  = 30 * time.Second
	DefaultOptionsTimeout   = 5 * time.Second
	DefaultFailureThreshold = 2 // failed OPTIONS in a row before a trunk is down
	DefaultRetryAfter       = 30 * time.Second
	DefaultFlowGrace        = 30 * time.Second // a call outlives its browser's closed WebSocket this long (sip.flow_grace)
	DefaultPRACK            = PRACKSupported
	DefaultOverloadDelay    = 50 * time.Millisecond // at 20 ms the control refused calls at 1,000/s that the SBC carries; 50 ms passes 1,000 and holds 2x (BENCHMARKS.md, third step)
	DefaultAdminAddr        = "127.0.0.1:9090"
	DefaultCDRDir           = "./cdr"
	DefaultRealm            = "sbc"
	DefaultNonceTTL         = 5 * time.Minute
	DefaultMinExpires       = 60 * time.Second
	DefaultMaxExpires       = time.Hour
	DefaultMaxBindings      = 10
	DefaultKeepalive        = 30 * time.Second
	DefaultCDRSpool         = "./cdr-spool"    // the CDR spool directory (journal and cursors)
	DefaultCDRMaxBytes      = 64 << 20         // bytes; a file writer's file is finished at this size
	DefaultCDRRotateEvery   = 15 * time.Minute // a file writer's file is finished this long after its first record
)

// What the INVITEs the SBC sends to callees say of 100rel (sip.prack).
const (
	PRACKSupported = "supported" // Supported: 100rel
	PRACKRequired  = "required"  // Require: 100rel
	PRACKOff       = "off"       // 100rel not named
)

// Trunk media kinds (trunks[].media): routing's, which compiles them.
const (
	MediaRTP  = routing.MediaRTP  // plain RTP/AVP
	MediaSRTP = routing.MediaSRTP // SDES-SRTP: RTP/SAVP with a=crypto (RFC 4568)
)

// Trunk DTMF modes (trunks[].dtmf): routing's, which compiles them.
const (
	DTMFRFC4733 = routing.DTMFRFC4733 // telephone-event RTP packets
	DTMFInfo    = routing.DTMFInfo    // SIP INFO application/dtmf-relay
)

// Route targets (routes[].target): routing's, which compiles them.
const (
	TargetTrunks     = routing.TargetTrunks     // the route's trunks, in order, with failover
	TargetRegistered = routing.TargetRegistered // users registered with the SBC
	TargetEcho       = routing.TargetEcho       // the built-in echo destination
)

// Config is the whole SBC configuration. The zero value is not valid: use
// Default or Load.
type Config struct {
	// NodeID names this node in CDRs, logs and shared state. Default DefaultNodeID.
	NodeID string `mapstructure:"node_id"`
	Log    Log    `mapstructure:"log"`
	SIP    SIP    `mapstructure:"sip"`
	Media  Media  `mapstructure:"media"`
	// Trunks are the named upstreams routes may send calls to.
	Trunks []Trunk `mapstructure:"trunks"`
	// Routes are tried in order; the first whose match holds picks the target.
	Routes    []Route   `mapstructure:"routes"`
	Users     []User    `mapstructure:"users"`
	Auth      Auth      `mapstructure:"auth"`
	Registrar Registrar `mapstructure:"registrar"`
	Policy    Policy    `mapstructure:"policy"`
	// CDR lists the writers every call record is handed to. An empty list
	// turns CDRs off.
	CDR []CDRWriter `mapstructure:"cdr"`
	// CDRSpool is the directory of the CDR spool: the journal each record is
	// fsynced to before the call's resources are freed, and every writer's
	// delivery cursor. It must be local, and no writer's dir. Default
	// DefaultCDRSpool.
	CDRSpool string `mapstructure:"cdr_spool"`
	Admin    Admin  `mapstructure:"admin"`
	// HEP exports SIP and RTCP to a Homer collector (see ops.go).
	HEP HEP `mapstructure:"hep"`
	// WebPhone serves the browser phone (see webphone.go).
	WebPhone WebPhone `mapstructure:"webphone"`
	// DNS is how trunk host names are resolved (see trunkreg.go).
	DNS DNS `mapstructure:"dns"`
	// Cluster shares state with other nodes in Redis (see cluster.go).
	Cluster Cluster `mapstructure:"cluster"`
	// Timeline keeps per-call timelines for the admin API (see
	// timeline.go).
	Timeline Timeline `mapstructure:"timeline"`
	// Announcements are played before refusals (see earlymedia.go).
	Announcements Announcements `mapstructure:"announcements"`
}

// Log configures log/slog.
type Log struct {
	// Level is debug, info, warn or error. Default DefaultLogLevel.
	Level string `mapstructure:"level"`
	// Format is text or json. Default DefaultLogFormat.
	Format string `mapstructure:"format"`
	// Trace lists users and numbers whose calls are logged at debug level
	// whatever Level says (POST /api/v1/trace adds more at run time).
	// Default: none.
	Trace []string `mapstructure:"trace"`
}

// SIP configures the signaling plane.
type SIP struct {
	// Listeners are the sockets the SBC takes SIP on. Default: UDP and TCP on
	// 127.0.0.1:5060, WS on 127.0.0.1:8080, WSS on 127.0.0.1:8443.
	Listeners []Listener `mapstructure:"listeners"`
	// TLS holds the certificate for TLS and WSS listeners.
	TLS TLS `mapstructure:"tls"`
	// PublicAddr is the host (IP or name) advertised in Via, Contact and
	// Record-Route instead of the listener's bound IP, for an SBC behind a
	// 1:1 NAT; or an IPv4 and an IPv6 address separated by a comma (dual
	// stack), each advertised to peers of its family (PublicHosts). Empty:
	// the listener's own address.
	PublicAddr string `mapstructure:"public_addr"`
	// UserAgent is the User-Agent and Server value on everything the SBC
	// originates. Default DefaultUserAgent.
	UserAgent string `mapstructure:"user_agent"`
	// MaxMessageSize is the largest SIP message accepted, in bytes. Default
	// DefaultMaxMessageSize.
	MaxMessageSize int `mapstructure:"max_message_size"`
	// MaxHeaders is the largest number of header fields accepted in one
	// message. Default DefaultMaxHeaders.
	MaxHeaders int `mapstructure:"max_headers"`
	// MaxLineLength is the longest start line or header line accepted, in
	// bytes. Default DefaultMaxLineLength.
	MaxLineLength int `mapstructure:"max_line_length"`
	// HandshakeTimeout bounds a TLS or WebSocket handshake. Default
	// DefaultHandshakeTimeout.
	HandshakeTimeout time.Duration `mapstructure:"handshake_timeout"`
	// IdleTimeout closes a stream connection that carried nothing for this
	// long. Default DefaultIdleTimeout.
	IdleTimeout time.Duration `mapstructure:"idle_timeout"`
	// MaxConnsPerIP caps stream connections from one source IP; 0 is
	// unlimited. Default DefaultMaxConnsPerIP.
	MaxConnsPerIP int `mapstructure:"max_conns_per_ip"`
	// HeaderWhitelist names extra headers passed from one leg to the other
	// (case-insensitive). Everything a call needs is always rebuilt by the
	// SBC; every other header is dropped. The identity headers
	// (P-Asserted-Identity, P-Preferred-Identity, Privacy) may not be
	// named: see trunks[].identity. Default: none.
	HeaderWhitelist []string `mapstructure:"header_whitelist"`
	// SessionExpires is the RFC 4028 interval the SBC asks for on calls it
	// originates when the caller asked for a session timer. Default
	// DefaultSessionExpires.
	SessionExpires time.Duration `mapstructure:"session_expires"`
	// MinSE is the smallest session interval accepted (RFC 4028 Min-SE).
	// Default DefaultMinSE.
	MinSE time.Duration `mapstructure:"min_se"`
	// InviteTimeout bounds how long one B-leg attempt may go without a
	// provisional response before failover. Default DefaultInviteTimeout.
	InviteTimeout time.Duration `mapstructure:"invite_timeout"`
	// RingTimeout bounds how long a call may ring before 408. Default
	// DefaultRingTimeout.
	RingTimeout time.Duration `mapstructure:"ring_timeout"`
	// RetryAfter is the Retry-After sent with a 503 when every trunk of a
	// route is down, rounded to seconds. Default DefaultRetryAfter.
	RetryAfter time.Duration `mapstructure:"retry_after"`
	// OverloadDelay is the standing queueing delay (the smallest time a
	// received message waited, from the kernel's arrival to our handling,
	// over 100 ms) past which the SBC is overloaded: a growing share of
	// new calls is refused at once with 503 and Retry-After while calls
	// in progress go on. 0 turns the control off. Default
	// DefaultOverloadDelay.
	OverloadDelay time.Duration `mapstructure:"overload_delay"`
	// PRACK is what the INVITEs the SBC sends to callees say of reliable
	// provisional responses (RFC 3262, 100rel): PRACKSupported,
	// PRACKRequired (a callee without 100rel answers 420) or PRACKOff.
	// Callers are served as they ask whatever it says. Default
	// DefaultPRACK.
	PRACK string `mapstructure:"prack"`
	// FlowGrace is how long an answered call outlives the closing of the
	// WebSocket, TCP or TLS connection one of its legs lives on: media
	// goes on, and the same party (README, Security model) may take the
	// dialog over from a new connection; after it the call ends with
	// connection_lost. 0: it ends at once. At most MaxFlowGrace. Default
	// DefaultFlowGrace.
	FlowGrace time.Duration `mapstructure:"flow_grace"`
}

// MaxFlowGrace bounds sip.flow_grace: a call whose browser is gone keeps
// its media ports and admission counts for the grace.
const MaxFlowGrace = 10 * time.Minute

// Listener is one SIP socket.
type Listener struct {
	// Name identifies the listener in routes. Default: the transport.
	Name string `mapstructure:"name"`
	// Transport is udp, tcp, tls, ws or wss.
	Transport string `mapstructure:"transport"`
	// Addr is ip:port to bind.
	Addr string `mapstructure:"addr"`
	// Symmetric (UDP) answers every request at the address and port it
	// came from, as if it carried rport (RFC 3581), and records received
	// and rport in the Via of the responses: a client behind NAT receives
	// nothing anywhere else. false keeps RFC 3261 18.2.2 (responses to the
	// port of the Via's sent-by unless the request carries rport), for a
	// trunk that sends from one port and listens on another. Stream
	// listeners answer on the connection either way. Default
	// DefaultSymmetric.
	Symmetric bool `mapstructure:"symmetric"`
}

// TLS names a certificate and key in PEM files. Both empty: a self-signed
// certificate is generated at start.
type TLS struct {
	// CertFile is the PEM certificate chain, leaf first. Default: empty.
	CertFile string `mapstructure:"cert_file"`
	// KeyFile is the PEM private key of the leaf. Default: empty.
	KeyFile string `mapstructure:"key_file"`
	// ReloadInterval is how often the two files are checked for a change
	// (modification time, size, then content); a changed, usable pair is
	// put in force for new handshakes without dropping connections. 0
	// checks never (SIGHUP still re-reads them). Not used for the
	// generated self-signed certificate. Default DefaultTLSReloadInterval.
	ReloadInterval time.Duration `mapstructure:"reload_interval"`
}

// DefaultTLSReloadInterval is how often the certificate files are checked
// for a change (sip.tls.reload_interval).
const DefaultTLSReloadInterval = 10 * time.Second

// Media configures the media plane.
type Media struct {
	// BindIP is the local IP media sockets bind to. Default DefaultMediaBindIP.
	BindIP string `mapstructure:"bind_ip"`
	// PublicIP is the IP written into SDP. Empty: BindIP.
	PublicIP string `mapstructure:"public_ip"`
	// RTPPorts is the "min-max" UDP port range for RTP/RTCP pairs. Default
	// DefaultRTPPorts.
	RTPPorts string `mapstructure:"rtp_ports"`
	// WebRTCPort is one UDP port shared by all WebRTC media; 0 uses ports
	// from RTPPorts. Default DefaultWebRTCPort.
	WebRTCPort int `mapstructure:"webrtc_port"`
	// Timeout ends a call that received no media from either side for this
	// long while not on hold. Default DefaultMediaTimeout.
	Timeout time.Duration `mapstructure:"timeout"`
	// HandshakeTimeout bounds ICE + DTLS toward a browser; a call whose
	// WebRTC media is not up by then is ended. Default DefaultMediaHandshake.
	HandshakeTimeout time.Duration `mapstructure:"handshake_timeout"`
	// Ringback is local ringback toward browser callers (earlymedia.go).
	Ringback Ringback `mapstructure:"ringback"`
	// Transcoding configures transcoding (transcoding.go).
	Transcoding Transcoding `mapstructure:"transcoding"`
}

// Trunk is a named upstream: a PBX, a SIP trunk, a carrier.
type Trunk struct {
	// Name identifies the trunk in routes and CDRs.
	Name string `mapstructure:"name"`
	// URI is where calls go, e.g. sip:pbx.example.com:5060;transport=tcp.
	URI string `mapstructure:"uri"`
	// Username and Password answer the trunk's digest challenges.
	Username string `mapstructure:"username"`
	Password string `mapstructure:"password"`
	// FromDomain replaces the host of From on calls to this trunk. Empty:
	// the trunk's host.
	FromDomain string `mapstructure:"from_domain"`
	// OptionsInterval is the OPTIONS keepalive period; 0 disables probing and
	// the trunk is always up. Default DefaultOptionsInterval.
	OptionsInterval time.Duration `mapstructure:"options_interval"`
	// OptionsTimeout bounds one OPTIONS probe. Default DefaultOptionsTimeout.
	OptionsTimeout time.Duration `mapstructure:"options_timeout"`
	// FailureThreshold is how many failed probes in a row mark the trunk
	// down. Default DefaultFailureThreshold.
	FailureThreshold int `mapstructure:"failure_threshold"`
	// PassHeaders are extra headers passed to and from this trunk, such as
	// Diversion. The identity headers (P-Asserted-Identity,
	// P-Preferred-Identity, Privacy) are the SBC's own business (Identity)
	// and may not be named. Default: none.
	PassHeaders []string `mapstructure:"pass_headers"`
	// Trusted marks calls arriving from this trunk's address as
	// authenticated, and puts the trunk in the trust domain (Identity).
	Trusted bool `mapstructure:"trusted"`
	// Identity says which caller identity the SBC asserts toward the trunk
	// (RFC 3325). Default: the zero TrunkIdentity (safe).
	Identity TrunkIdentity `mapstructure:"identity"`
	// TLS configures a tls trunk's certificate verification and client
	// certificate; only tls trunks take it. Default: system roots, no
	// client certificate.
	TLS TrunkTLS `mapstructure:"tls"`
	// Media is what the trunk speaks: rtp (RTP/AVP) or srtp (SDES-SRTP).
	// Default DefaultTrunkMedia.
	Media string `mapstructure:"media"`
	// DTMF is how the trunk sends and wants digits: rfc4733
	// (telephone-event) or info (SIP INFO application/dtmf-relay).
	// Default DefaultTrunkDTMF.
	DTMF string `mapstructure:"dtmf"`
	// Register makes the SBC register to the trunk on its behalf (see
	// trunkreg.go). Default: empty, no registration.
	Register TrunkRegister `mapstructure:"register"`
	// Transfer is what a REFER from this trunk's side of a call does:
	// local (the SBC performs the transfer, the target judged by the
	// policy chain like a new call), relay (the REFER goes to the other
	// party with Refer-To pointing at the SBC) or refuse (403). Default:
	// "", the route's mode.
	Transfer string `mapstructure:"transfer"`
	// Codecs are the audio codecs the SBC offers toward and accepts from
	// the trunk, in preference order (Codecs names them); a call whose
	// other side shares none is transcoded. Default: empty, any.
	Codecs []string `mapstructure:"codecs"`
}

// Route sends matching calls to a target.
type Route struct {
	// Name identifies the route in logs.
	Name  string `mapstructure:"name"`
	Match Match  `mapstructure:"match"`
	// Target is trunks, registered or echo.
	Target string `mapstructure:"target"`
	// Trunks, for target trunks, are tried in order.
	Trunks []string `mapstructure:"trunks"`
	// TrustedSources are IPs or CIDR prefixes (IPv4 or IPv6) whose calls on
	// this route need no digest authentication, e.g. the PBX's network.
	// Every other call toward a trunk must authenticate (policy stage
	// auth). Default: none.
	TrustedSources []string `mapstructure:"trusted_sources"`
	// Transfer is what a REFER on this route's calls does when the
	// transferor's trunk sets none: local, relay or refuse. Default local.
	Transfer string `mapstructure:"transfer"`
	// WebRTCCodecs are the audio codecs offered to and accepted from the
	// browser side of this route's calls, in preference order
	// (WebRTCCodecs names them); e.g. [opus] makes the browser speak
	// Opus and the SBC transcode toward a G.711 trunk. Default: empty, any.
	WebRTCCodecs []string `mapstructure:"webrtc_codecs"`
}

// Match is a conjunction: every non-empty field must hold.
type Match struct {
	// Listener is the name of the listener the request came in on.
	Listener string `mapstructure:"listener"`
	// Trunk is the name of the trunk the request came from (by address).
	Trunk string `mapstructure:"trunk"`
	// SourceCIDRs hold if the source IP is in any of them.
	SourceCIDRs []string `mapstructure:"source_cidrs"`
	// RURIUser is a regular expression the request-URI user must match.
	RURIUser string `mapstructure:"ruri_user"`
	// FromDomain is the host of the From URI, compared case-insensitively.
	FromDomain string `mapstructure:"from_domain"`
}

// User is a SIP identity the SBC authenticates (registration issue).
type User struct {
	Username string `mapstructure:"username"`
	Password string `mapstructure:"password"`
	Domain   string `mapstructure:"domain"`
	// Group names the policy.dial_rules.groups entry whose rules the
	// user's calls follow. Default: policy.dial_rules.default_group.
	Group string `mapstructure:"group"`
	// CallerID is the identity the SBC asserts for the user's calls
	// toward trunks (P-Asserted-Identity, From), a number such as
	// +12125550100 or a SIP user part. Default: the username.
	CallerID string `mapstructure:"caller_id"`
}

// Auth configures digest authentication of web users (RFC 7616 with MD5
// and SHA-256, RFC 8760).
type Auth struct {
	// Realm is the digest realm. Default DefaultRealm.
	Realm string `mapstructure:"realm"`
	// UsersFile holds more users, one "username:password" per line (#
	// comments); empty: only users[].
	UsersFile string `mapstructure:"users_file"`
	// HMACSecret enables short-lived credentials minted by a web
	// application (TURN REST style): username "<unix expiry>:<user>",
	// password base64(HMAC-SHA1(secret, username)). Empty: off.
	HMACSecret string `mapstructure:"hmac_secret"`
	// NonceTTL is how long a nonce is good for. Default DefaultNonceTTL.
	NonceTTL time.Duration `mapstructure:"nonce_ttl"`
	// Algorithms are the digest algorithms challenged, in order (RFC
	// 8760): SHA-256 and MD5. Phones that only read the first challenge
	// and know only MD5 need MD5 first.
	Algorithms []string `mapstructure:"algorithms"`
}

// Registrar configures the bindings of users registered through the SBC.
type Registrar struct {
	// MinExpires: shorter registrations get 423 with Min-Expires.
	MinExpires time.Duration `mapstructure:"min_expires"`
	// MaxExpires: longer registrations are clamped to it.
	MaxExpires time.Duration `mapstructure:"max_expires"`
	// MaxBindingsPerAOR caps the registrations of one user.
	MaxBindingsPerAOR int `mapstructure:"max_bindings_per_aor"`
	// KeepaliveInterval paces WebSocket pings, CRLF on TCP/TLS and
	// OPTIONS to UDP contacts of registered users; 0 disables.
	KeepaliveInterval time.Duration `mapstructure:"keepalive_interval"`
}

// CDRWriter is one CDR sink. Every writer receives every record, in the
// order the calls ended, from the shared spool.
type CDRWriter struct {
	// Name identifies the writer in logs, metrics and the spool (its
	// delivery cursor): letters, digits, '-' and '_', unique among writers.
	// Default: the type.
	Name string `mapstructure:"name"`
	// Type is jsonl (the default), csv or postgres.
	Type string `mapstructure:"type"`
	// Dir is the directory of a jsonl or csv writer's files. Default
	// DefaultCDRDir.
	Dir string `mapstructure:"dir"`
	// MaxBytes finishes a jsonl or csv writer's file once it holds at least
	// this many bytes; 0: no size limit. Default DefaultCDRMaxBytes.
	MaxBytes int64 `mapstructure:"max_bytes"`
	// RotateEvery finishes a jsonl or csv writer's file this long after its
	// first record; 0: no age limit. Default DefaultCDRRotateEvery.
	RotateEvery time.Duration `mapstructure:"rotate_every"`
	// DSN is the PostgreSQL connection string of the postgres writer, as a
	// URL (postgres://user:pass@host:5432/db) or key=value pairs.
	DSN string `mapstructure:"dsn"`
}

// Admin configures the admin HTTP server.
type Admin struct {
	// Addr is ip:port of the admin HTTP server; empty disables it. Default
	// DefaultAdminAddr.
	Addr string `mapstructure:"addr"`
	// Token, when set, is required as a bearer token on /metrics and
	// /api/v1/ (never on /healthz and /readyz). Required when Addr is not
	// a loopback address. Default: empty.
	Token string `mapstructure:"token"`
	// Hosts are the host names (or IPs), without port, a request's Host
	// header may give besides the server's own address and localhost:
	// names operators or a reverse proxy reach it by. Any other Host is
	// refused (DNS rebinding). Default: none.
	Hosts []string `mapstructure:"hosts"`
	// DrainTimeout bounds a graceful drain (SIGTERM, POST /api/v1/drain):
	// calls still up then are ended with BYE. Default DefaultDrainTimeout.
	DrainTimeout time.Duration `mapstructure:"drain_timeout"`
}
