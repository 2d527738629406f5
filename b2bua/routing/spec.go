package routing

import (
	"crypto/tls"
	"time"

	"github.com/sbc-project/sbc/b2bua/routing/dnsres"
)

// Route targets (RouteSpec.Target, Route.Target).
const (
	TargetTrunks     = "trunks"     // the route's trunks, in order, with failover
	TargetRegistered = "registered" // users registered with the SBC
	TargetEcho       = "echo"       // the built-in echo destination
)

// Trunk media kinds (TrunkSpec.Media).
const (
	MediaRTP  = "rtp"  // plain RTP/AVP
	MediaSRTP = "srtp" // SDES-SRTP: RTP/SAVP with a=crypto (RFC 4568)
)

// Trunk DTMF modes (TrunkSpec.DTMF).
const (
	DTMFRFC4733 = "rfc4733" // telephone-event RTP packets
	DTMFInfo    = "info"    // SIP INFO application/dtmf-relay
)

// Transfer modes (TrunkSpec.Transfer, RouteSpec.Transfer): what the SBC
// does with a REFER (RFC 3515) on a call.
const (
	// TransferLocal: the SBC performs the transfer itself (a new leg to
	// the Refer-To target, routed and judged by the policy chain like a
	// new call; NOTIFY progress to the transferor).
	TransferLocal = "local"
	// TransferRelay: a blind transfer's REFER is carried to the other
	// party with its Refer-To pointing at the SBC (the target's user part
	// kept), so that party calls the target through the SBC; the NOTIFYs
	// come back the same way. An attended transfer (Replaces) names the
	// SBC's own dialogs: the SBC performs it as in TransferLocal.
	TransferRelay = "relay"
	// TransferRefuse: REFER is answered 403.
	TransferRefuse = "refuse"
)

// ValidTransfer reports whether mode is a transfer mode ("" is the
// default, TransferLocal).
func ValidTransfer(mode string) bool {
	return mode == "" || mode == TransferLocal || mode == TransferRelay || mode == TransferRefuse
}

// TransferModes is how errors name the valid modes.
const TransferModes = TransferLocal + ", " + TransferRelay + " or " + TransferRefuse

// Caller identity toward a trunk (IdentitySpec, RFC 3325).
const (
	// IdentityAssertUser: P-Asserted-Identity is the authenticated caller,
	// or what a trusted source asserted.
	IdentityAssertUser = "user"
	// IdentityAssertNone: no P-Asserted-Identity is sent.
	IdentityAssertNone = "none"
	// IdentityFromAsserted: From is the asserted identity of an
	// authenticated caller.
	IdentityFromAsserted = "asserted"
	// IdentityFromKeep: From user and display name are the caller's.
	IdentityFromKeep = "keep"
)

// TableSpec is what New compiles a Table from. The program's edge
// translates its configuration into it; New checks it whole.
type TableSpec struct {
	Trunks []TrunkSpec
	Routes []RouteSpec // tried in order
	// Listeners are the names RouteSpec.Match.Listener may give: one per
	// SIP listener, as Request.Listener names it.
	Listeners []string
	// Resolver locates DNS-named trunks by RFC 3263 (NAPTR, SRV, A/AAAA);
	// nil: their A/AAAA records through the system's resolver only.
	Resolver *dnsres.Resolver
}

// TrunkSpec is one named upstream: a PBX, a SIP trunk, a carrier.
type TrunkSpec struct {
	Name string
	URI  string // parsed by ParseURI
	// Username and Password answer the trunk's digest challenges.
	Username, Password string
	FromDomain         string // host of From toward the trunk; "": its host
	PassHeaders        []string
	// Trusted marks calls from the trunk's address as authenticated and
	// puts the trunk in the trust domain.
	Trusted  bool
	Identity IdentitySpec
	// TLS is the client configuration of a tls trunk (transport=tls or
	// sips:), its CA bundle and client certificate read; nil: the system
	// roots and no client certificate. Only a tls trunk may have one. The
	// Trunk keeps it: it must not be modified after New.
	TLS   *tls.Config
	Media string // MediaRTP or MediaSRTP; "": MediaRTP
	DTMF  string // DTMFRFC4733 or DTMFInfo; "": DTMFRFC4733
	// Transfer is what a REFER from this trunk does (TransferLocal,
	// TransferRelay or TransferRefuse); "": the route's mode.
	Transfer string

	OptionsInterval  time.Duration // OPTIONS probe period; 0: no probing, always up
	OptionsTimeout   time.Duration // bound on one probe; positive when probing
	FailureThreshold int           // failed probes in a row before down; at least 1 when probing

	// Register, when set, makes the SBC register to the trunk.
	Register *RegisterSpec
	// Codecs are the audio codecs offered toward and accepted from the
	// trunk, lower-case names in preference order; empty: any.
	Codecs []string
}

// IdentitySpec says which caller identity the SBC asserts toward a trunk.
// The zero value asserts the authenticated caller, writes From from it and
// leaves the trunk outside the trust domain unless it is trusted.
type IdentitySpec struct {
	Assert string // IdentityAssertUser or IdentityAssertNone; "": user
	From   string // IdentityFromAsserted or IdentityFromKeep; "": asserted
	Domain string // host of asserted identities; "": FromDomain, else the SBC's
	// TrustDomain puts the trunk in the trust domain (RFC 3325).
	TrustDomain bool
}

// RouteSpec sends the calls its match holds for to a target.
type RouteSpec struct {
	Name   string
	Match  MatchSpec
	Target string   // TargetTrunks, TargetRegistered or TargetEcho
	Trunks []string // names of trunks, for TargetTrunks only, tried in order
	// TrustedSources are IPs or CIDR prefixes whose calls on this route
	// need no digest authentication.
	TrustedSources []string
	// Transfer is what a REFER on this route's calls does when the
	// transferor's trunk sets none; "": TransferLocal.
	Transfer string
	// WebRTCCodecs are the audio codecs offered to and accepted from a
	// browser side of the route's calls, lower-case names in preference
	// order; empty: any.
	WebRTCCodecs []string
}

// MatchSpec is a conjunction: every non-empty field must hold (see
// Table.Route).
type MatchSpec struct {
	Listener    string   // a name of TableSpec.Listeners
	Trunk       string   // a trunk name: the request came from its address
	SourceCIDRs []string // IPs or CIDR prefixes
	RURIUser    string   // a regular expression, unanchored
	FromDomain  string   // compared case-insensitively
}
