// Package policy is the chain every inbound SIP request passes before the
// B2BUA gives it any state: blacklist → rate limit → sanity → auth →
// admission → dial rules (ARCHITECTURE.md). Each stage is small, has one method,
// and either lets the request go on, answers it, or drops it silently.
//
// The first three stages (Early) run on every request as soon as it is
// parsed, before a transaction exists, so a flood costs one parse and a few
// map lookups. The last three (Late) run on a new INVITE once its route is
// known, because they depend on it: who must authenticate, which trunk and
// user it counts against, which dial group it follows.
//
// New builds a Chain from a Spec: the stages to run and their settings,
// whose names, order and defaults this package owns (spec.go). It reads no
// configuration itself; the program's edge fills the Spec from its config
// file.
package policy

import (
	"context"
	"net/netip"
	"time"
)

// Action is what a stage decided.
type Action uint8

const (
	Continue Action = iota // pass the request to the next stage
	Answer                 // answer with Decision.Code and Reason, then stop
	Drop                   // say nothing, stop
)

// Decision is a stage's verdict on one request.
type Decision struct {
	Action Action
	// Code and Reason are the SIP response for Answer (403, 404, 407, 482,
	// 483, 503 ...).
	Code   int
	Reason string
	// RetryAfter, when positive, is sent as Retry-After (503).
	RetryAfter time.Duration
	// Headers are extra header fields for the response, as name and value
	// (e.g. Proxy-Authenticate, Warning).
	Headers [][2]string
	// Stage and Cause label the rejection in metrics and logs: Stage is the
	// stage's name, Cause a short snake_case reason from a bounded set
	// (scanner_ua, banned, rate_invite, loop, premium ...).
	Stage string
	Cause string
}

// Pass is the decision to go on.
var Pass = Decision{Action: Continue}

// Request is what the chain sees of one inbound request. The b2bua fills it
// from the parsed message; the Late fields only for Late stages.
type Request struct {
	Src       netip.AddrPort
	Transport string // udp, tcp, tls, ws or wss
	Method    string // upper case
	CallID    string
	ToTag     string // non-empty: an in-dialog request
	RURI      string // request-URI as text
	RURIUser  string
	From      string // From URI as text
	FromUser  string
	To        string // To URI as text
	// FromTag is the From tag; "" when absent (sanity refuses an INVITE
	// without one from an RFC 3261 element).
	FromTag string
	// RFC2543 is set for a request of an RFC 2543 element (its top Via
	// branch lacks RFC 3261's magic cookie): a From without a tag is its
	// normal form (RFC 3261 8.2 and 12.2.2 keep such peers working).
	RFC2543   bool
	UserAgent string
	// Vias are the sent-by values (host[:port]) of every Via, top first.
	Vias []string

	// Late: set by the b2bua for new INVITEs once routed.
	Route   string // route name
	Target  Target
	Trunk   string // first trunk of the route, for target trunks
	Trusted bool   // the route or a trusted trunk trusts the source
	// User is the authenticated user ("" until the auth stage passes, or
	// when the source is trusted); Group its dial group.
	User  string
	Group string
	// Auth lets the auth stage check credentials on the message itself
	// (Proxy-Authorization); nil outside Late.
	Auth Authenticator
	// Admitted is set by the admission stage: call it once when the call
	// ends to give back what it counted. Nil when nothing was counted.
	Admitted func()
	// Dial is set by the dial_rules stage on a call toward trunks that
	// passes: the user part leg B must dial, the one form the rules were
	// checked against (a number in E.164, a short number or a name; see
	// DialRules). "" when the stage did not judge the call.
	Dial string
}

// Target is the kind of destination a routed INVITE goes to, which the
// Late stages judge it by. The zero value, TargetUnknown, is a target the
// chain does not know: auth asks it for credentials (fail closed),
// admission counts it against no trunk and dial_rules does not judge it.
type Target uint8

const (
	TargetUnknown    Target = iota
	TargetTrunks            // the route's trunks: credentials, trunk limits, dial rules
	TargetRegistered        // a user registered with the SBC
	TargetEcho              // the built-in echo destination: no credentials, echo limits
)

// Authenticator checks the digest credentials a request carries. The b2bua
// implements it over b2bua/registrar.Auth and the message.
type Authenticator interface {
	// Check returns the authenticated user and its group, or ok false with
	// the challenge header to send (name, value) and whether the request
	// carried wrong credentials (counted toward bans) rather than none.
	Check(ctx context.Context) (user, group string, ok bool, challenge [2]string, failed bool)
}

// Stage is one step of the chain.
type Stage interface {
	Check(ctx context.Context, r *Request) Decision
}

// StageFunc adapts a function to Stage.
type StageFunc func(ctx context.Context, r *Request) Decision

// Check calls f.
func (f StageFunc) Check(ctx context.Context, r *Request) Decision { return f(ctx, r) }
