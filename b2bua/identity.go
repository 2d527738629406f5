package b2bua

import (
	"regexp"
	"slices"
	"strings"

	"github.com/ghettovoice/gosip/sip"

	"github.com/sbc-project/sbc/b2bua/sipmsg"
)

// Caller identity at the border (RFC 3325, RFC 3323). The SBC, not the
// caller, says who is calling. Toward the callee of a new call:
//
//   - P-Asserted-Identity names the caller the auth stage authenticated
//     (digest, or the registration on the caller's connection), as its
//     users[].caller_id or user name at the identity domain; for a caller
//     from the trust domain (a trusted route source, a trusted trunk or a
//     trunk with identity.trust_domain) it is what that caller asserted;
//     otherwise there is none. A trunk with identity.assert none gets none.
//   - P-Preferred-Identity never passes, nor does any P-Asserted-Identity
//     the caller sent from outside the trust domain.
//   - From names the authenticated caller (identity.from asserted, the
//     default), without the display name the caller chose; a trusted
//     caller's From, and any From under identity.from keep, is the
//     caller's, with the SBC's host as ever.
//   - Privacy: id, user or header makes From anonymous; with id the
//     P-Asserted-Identity goes only to a callee in the trust domain (a
//     registered user never is). The caller's Privacy values go along.
//
// No header whitelist copies these headers between legs (copyHeaders):
// this file alone writes them.

// The identity headers.
const (
	hdrPAI     = "P-Asserted-Identity"
	hdrPPI     = "P-Preferred-Identity"
	hdrPrivacy = "Privacy"
)

// isIdentityHeader reports whether name (lower case) is an identity header.
func isIdentityHeader(name string) bool {
	return name == "p-asserted-identity" || name == "p-preferred-identity" || name == "privacy"
}

// anonymousFrom is the From of a caller that asked for privacy (RFC 3323
// section 4.1.1.3).
func anonymousFrom() *sip.Address {
	return &sip.Address{
		DisplayName: sip.String{Str: "Anonymous"},
		Uri:         &sip.SipUri{FUser: sip.String{Str: "anonymous"}, FHost: "anonymous.invalid", FUriParams: sipmsg.NewParams(), FHeaders: sipmsg.NewParams()},
	}
}

// peerIdentity is what one callee is told about callers.
type peerIdentity struct {
	assert      bool   // send P-Asserted-Identity
	rewriteFrom bool   // From names the authenticated caller
	domain      string // host of the identity the SBC asserts
	fromHost    string // host of a From the SBC does not rewrite
	trusted     bool   // the callee is in the trust domain
}

// peerFor is the identity policy toward d; host is the SBC's own host
// toward it. A registered user or the echo destination gets the defaults
// and is outside the trust domain.
func peerFor(d dest, host string) peerIdentity {
	p := peerIdentity{assert: true, rewriteFrom: true, domain: host, fromHost: host}
	tr := d.trunk
	if tr == nil {
		return p
	}
	p.assert, p.rewriteFrom, p.trusted = tr.AssertIdentity, tr.RewriteFrom, tr.TrustDomain
	if tr.FromDomain != "" {
		p.domain, p.fromHost = tr.FromDomain, tr.FromDomain
	}
	if tr.IdentityDomain != "" {
		p.domain = tr.IdentityDomain
	}
	return p
}

// callerTrusted reports whether the caller is in the trust domain: a
// trusted source of the call's route, or a trunk that is trusted or in the
// trust domain.
func (c *Call) callerTrusted() bool {
	ip := c.a.dst.Addr.Addr().Unmap()
	if c.route != nil && c.route.Trusts(ip) {
		return true
	}
	tr, ok := c.s.routes.Load().TrunkBySource(ip)
	return ok && tr.TrustDomain
}

// identityFor returns the From of the INVITE toward d and the identity
// headers to add to it; host is the SBC's own host toward d.
func (c *Call) identityFor(d dest, host string) (*sip.Address, []sip.Header) {
	p := peerFor(d, host)
	priv := parsePrivacy(c.invReq)
	trusted := c.callerTrusted()
	var asserted []string // P-Asserted-Identity values
	switch {
	case c.user != "":
		asserted = []string{"<" + c.userURI(p.domain).String() + ">"}
	case trusted:
		asserted = trustedAssertions(c.invReq)
	}

	var from *sip.Address
	switch {
	case priv.hide:
		from = anonymousFrom()
	case c.user != "" && p.rewriteFrom:
		from = &sip.Address{Uri: c.userURI(p.domain)}
	default:
		from = &sip.Address{DisplayName: c.a.remote.DisplayName,
			Uri: &sip.SipUri{FHost: p.fromHost, FUriParams: sipmsg.NewParams(), FHeaders: sipmsg.NewParams()}}
		if u := c.a.remote.Uri.User(); u != nil {
			from.Uri.(*sip.SipUri).FUser = sip.String{Str: u.String()}
		}
	}

	var hs []sip.Header
	if p.assert && (!priv.id || p.trusted) {
		for _, v := range asserted {
			hs = append(hs, &sip.GenericHeader{HeaderName: hdrPAI, Contents: v})
		}
	}
	if len(priv.values) > 0 {
		hs = append(hs, &sip.GenericHeader{HeaderName: hdrPrivacy, Contents: strings.Join(priv.values, ";")})
	}
	return from, hs
}

// userURI is the identity of the authenticated caller at domain: its
// users[].caller_id, else its user name; a telephone number gets
// user=phone (RFC 3261 section 19.1.1).
func (c *Call) userURI(domain string) *sip.SipUri {
	user := c.user
	if id := c.s.cfg.CallerIDs[user]; id != "" {
		user = id
	}
	u := &sip.SipUri{FUser: sip.String{Str: user}, FHost: domain, FUriParams: sipmsg.NewParams(), FHeaders: sipmsg.NewParams()}
	if reTelephone.MatchString(user) {
		u.FUriParams.Add("user", sip.String{Str: "phone"})
	}
	return u
}

// reTelephone matches a global telephone number (E.164 style).
var reTelephone = regexp.MustCompile(`^\+[0-9]{2,15}$`)

// privacy is what a caller asked for in its Privacy headers.
type privacy struct {
	values []string // the known priv-values, lower case, in order, once each
	id     bool     // id: withhold the asserted identity outside the trust domain
	hide   bool     // id, user or header: an anonymous From
}

// privValues are the priv-values the SBC knows (RFC 3323, RFC 3325).
var privValues = []string{"none", "header", "session", "user", "id", "critical"}

// parsePrivacy reads the Privacy headers of req. Values it does not know
// are dropped; none alone asks for nothing.
func parsePrivacy(req sip.Request) privacy {
	var p privacy
	for _, h := range req.GetHeaders(hdrPrivacy) {
		for _, v := range strings.FieldsFunc(h.Value(), func(r rune) bool { return r == ';' || r == ',' }) {
			v = strings.ToLower(strings.TrimSpace(v))
			if slices.Contains(privValues, v) && !slices.Contains(p.values, v) {
				p.values = append(p.values, v)
			}
		}
	}
	for _, v := range p.values {
		switch v {
		case "id":
			p.id, p.hide = true, true
		case "user", "header":
			p.hide = true
		}
	}
	if slices.Equal(p.values, []string{"none"}) {
		p.values = nil
	}
	return p
}

// trustedAssertions returns the P-Asserted-Identity values of req,
// rebuilt from what parses: at most one sip: or sips: URI and one tel: URI
// (RFC 3325 section 9.1), each with its display name re-quoted.
func trustedAssertions(req sip.Request) []string {
	var out []string
	var sipSeen, telSeen bool
	for _, h := range req.GetHeaders(hdrPAI) {
		for _, entry := range splitAddrList(h.Value()) {
			name, uri, ok := parseNameAddr(entry)
			if !ok {
				continue
			}
			tel := strings.HasPrefix(strings.ToLower(uri), "tel:")
			if tel && telSeen || !tel && sipSeen {
				continue
			}
			sipSeen, telSeen = sipSeen || !tel, telSeen || tel
			out = append(out, nameAddr(name, uri))
		}
	}
	return out
}
