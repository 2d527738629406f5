package b2bua

import (
	"strconv"
	"strings"
	"time"

	"github.com/ghettovoice/gosip/sip"

	"github.com/sbc-project/sbc/b2bua/outcome"
	"github.com/sbc-project/sbc/b2bua/routing"
	"github.com/sbc-project/sbc/b2bua/sipmsg"
)

// sipURI is u, a URI routing parsed, as the SIP stack's URI: built field
// by field, never parsed again. The stack holds the user decoded, as
// routing does, and an IPv6 host in brackets.
func sipURI(u routing.URI) sip.Uri {
	out := &sip.SipUri{FIsEncrypted: u.Scheme == "sips", FHost: u.Host, FUriParams: sip.NewParams(), FHeaders: sip.NewParams()}
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

// failTLS answers A when the last trunk could not be reached because its
// TLS handshake failed (its certificate not valid for its name or from an
// unknown CA, or a client certificate missing): 503, and a CDR whose
// hangup_cause says so. The details are in the log, not in the answer.
func (c *Call) failTLS() {
	c.fail(outcome.CauseTrunkTLSFailed,
		sipmsg.Generic("Retry-After", strconv.Itoa(int(c.s.cfg.RetryAfter/time.Second))),
		sipmsg.Generic("Warning", `399 sbc "TLS handshake with the trunk failed"`))
}
