package b2bua

import (
	"strings"

	"github.com/ghettovoice/gosip/sip"

	"github.com/sbc-project/sbc/b2bua/routing"
	"github.com/sbc-project/sbc/b2bua/sipmsg"
	"github.com/sbc-project/sbc/b2bua/trunkreg"
)

// authorizeForTrunk adds to req (an INVITE toward tr) the answer to the
// trunk's digest challenge in res, with the trunk's username and
// password: MD5 or SHA-256 (RFC 8760), the same client as the trunk's
// registration (b2bua/trunkreg). gosip's own answers MD5 only and a
// carrier may challenge with SHA-256 alone.
func authorizeForTrunk(req sip.Request, res sip.Response, tr *routing.Trunk) error {
	h, err := trunkreg.Answer(res, trunkreg.Credentials{User: tr.Username, Password: tr.Password,
		Method: string(req.Method()), URI: req.Recipient().String()}, false)
	if err != nil {
		return err
	}
	req.AppendHeader(h)
	return nil
}

// sipURI is u, a URI routing parsed, as the SIP stack's URI: built field
// by field, never parsed again. The stack holds the user decoded, as
// routing does, and an IPv6 host in brackets.
func sipURI(u routing.URI) sip.Uri {
	out := &sip.SipUri{FIsEncrypted: u.Scheme == "sips", FHost: u.Host, FUriParams: sipmsg.NewParams(), FHeaders: sipmsg.NewParams()}
	if strings.Contains(u.Host, ":") {
		out.FHost = "[" + u.Host + "]"
	}
	if u.User != "" {
		out.FUser = sip.String{Str: u.User}
	}
	if u.Port != 0 {
		port := sip.Port(u.Port)
		out.FPort = &port
	}
	for _, p := range u.Params {
		var value sip.MaybeString
		if p.Value != "" {
			value = sip.String{Str: p.Value}
		}
		out.FUriParams.Add(p.Name, value)
	}
	return out
}
