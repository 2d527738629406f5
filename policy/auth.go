package policy

import (
	"context"
	"net/netip"
)

// Challenger is implemented by an Authenticator that offers more than one
// challenge (one per digest algorithm, RFC 8760). After a Check that
// returned ok false, Challenges returns every challenge header to send,
// preferred first; the auth stage sends them instead of Check's single
// one. SIP forbids folding several Proxy-Authenticate values into one
// header (RFC 3261 section 7.3.1), hence the separate headers.
type Challenger interface {
	Challenges() [][2]string
}

// auth is the auth stage: nothing reaches a trunk, and no web user reaches
// another, without digest credentials, unless the route trusts the source.
type auth struct {
	defaultGroup string
	report       func(src netip.Addr, transport string)
}

// NewAuth returns the auth stage. It decides per routed INVITE:
//
//   - target echo: no authentication (the built-in test destination costs
//     nothing and reaches no one);
//   - a trusted source (the route or a trunk trusts it, e.g. the PBX's
//     CIDR): no authentication, and the request gets the default dial
//     group;
//   - target trunks, or target registered from a WebSocket (ws, wss) source
//     (a web user calling a web user), and any target this stage does not
//     know: digest credentials are required;
//   - target registered from any other transport (the PBX calling a web
//     user without being trusted is the route's business): none.
//
// With credentials required, the request goes on with User and Group set
// (an empty group becomes defaultGroup, the default dial group); without
// them, or with wrong ones, it is answered 407 with the Authenticator's
// challenge. Wrong credentials are reported to report with the request's
// source and transport (nil: not reported), which feeds the dynamic bans.
// A request without an Authenticator, or whose Authenticator has no
// challenge to offer, is answered 403: the stage fails closed. The stage keeps no state and is safe for concurrent use.
func NewAuth(defaultGroup string, report func(src netip.Addr, transport string)) Stage {
	return &auth{defaultGroup: defaultGroup, report: report}
}

// Check implements Stage.
func (a *auth) Check(ctx context.Context, r *Request) Decision {
	switch {
	case r.Target == TargetEcho:
		return Pass
	case r.Trusted:
		r.Group = a.defaultGroup
		return Pass
	case !authRequired(r):
		return Pass
	case r.Auth == nil:
		return deny403(StageAuth, "auth_unavailable", "Forbidden (authentication unavailable)")
	}
	user, group, ok, challenge, failed := r.Auth.Check(ctx)
	if ok {
		if group == "" {
			group = a.defaultGroup
		}
		r.User, r.Group = user, group
		return Pass
	}
	cause := "auth_required"
	if failed {
		cause = "auth_failed"
		if a.report != nil {
			a.report(r.Src.Addr().Unmap(), r.Transport)
		}
	}
	headers := challenges(r.Auth, challenge)
	if len(headers) == 0 {
		return deny403(StageAuth, cause, "Forbidden (authentication unavailable)")
	}
	return Decision{
		Action: Answer, Code: 407, Reason: "Proxy Authentication Required",
		Headers: headers, Stage: StageAuth, Cause: cause,
	}
}

// authRequired reports whether a routed INVITE must carry credentials.
func authRequired(r *Request) bool {
	switch r.Target {
	case TargetTrunks:
		return true
	case TargetRegistered:
		return r.Transport == "ws" || r.Transport == "wss"
	default:
		// A target this stage does not know: fail closed.
		return true
	}
}

// challenges returns the challenge headers to send: every one the
// Authenticator offers when it is a Challenger, else the one Check returned.
// Headers without a name or value are left out.
func challenges(a Authenticator, one [2]string) [][2]string {
	var all [][2]string
	if c, ok := a.(Challenger); ok {
		all = c.Challenges()
	}
	if len(all) == 0 {
		all = [][2]string{one}
	}
	out := make([][2]string, 0, len(all))
	for _, h := range all {
		if h[0] != "" && h[1] != "" {
			out = append(out, h)
		}
	}
	return out
}

// deny403 is a 403 answer labelled with stage and cause.
func deny403(stage, cause, reason string) Decision {
	return Decision{Action: Answer, Code: 403, Reason: reason, Stage: stage, Cause: cause}
}
