package registrar

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/ghettovoice/gosip/sip"
	"github.com/sbc-project/sbc/b2bua/sipmsg"
)

// maxContactURILen bounds a registered Contact URI: the store keeps it, so
// a flood of huge ones must not fill memory.
const maxContactURILen = 1024

// maxInstanceLen bounds a +sip.instance value.
const maxInstanceLen = 256

// ContactParam is one Contact of a REGISTER.
type ContactParam struct {
	// URI is the Contact URI as the UA sent it, without angle brackets.
	URI string
	// Expires is the expires parameter in seconds; -1 when not given.
	Expires int
	// Instance is the +sip.instance parameter (RFC 5626), unquoted, e.g.
	// "<urn:uuid:...>"; "" when not given.
	Instance string
	// RegID is the reg-id parameter (RFC 5626); 0 when not given.
	RegID int
}

// Update is what one REGISTER asks of the Store, extracted by ParseUpdate
// (or built by hand).
type Update struct {
	// AOR is the canonical address-of-record (see AOR).
	AOR string
	// Contacts are the Contact values other than "*". None and no
	// Wildcard: a query for the current bindings.
	Contacts []ContactParam
	// Wildcard is set for "Contact: *".
	Wildcard bool
	// Expires is the Expires header in seconds; -1 when absent.
	Expires int
	// CallID and CSeq order refreshes (RFC 3261 section 10.3 step 7).
	CallID string
	CSeq   uint32
	// Flow is how the UA is reached: the connection or latched source
	// address the REGISTER came from.
	Flow Flow
	// UserAgent is the User-Agent header, for the admin API.
	UserAgent string
	// Token, when set, is the token of the binding this update creates
	// or refreshes (a relayed registration: the upstream registrar knows
	// the SBC's Contact by it); a refreshed binding with another token is
	// re-keyed to it. It must be unused by other bindings. Empty: a new
	// binding draws a random token and a refresh keeps its own.
	Token string
	// Upstream is set when the expiries were granted by an upstream
	// registrar that checked the credentials (the PBX of a relayed
	// registration): a short one is taken as granted, not refused 423.
	Upstream bool
}

// ParseUpdate extracts the Update of a REGISTER request for the given AOR
// (usually AOR of the To URI) arriving on flow. It reports malformed
// Contact parameters (expires, reg-id), over-long Contact URIs and an
// empty AOR as errors: answer 400. Delta-seconds beyond 2^31-1 are taken as
// 2^31-1 and left for the Store to clamp.
//
// gosip drops header fields it cannot parse, so a Contact with a non-SIP
// URI or broken syntax, or an unparsable Expires header, never reaches
// here: such a REGISTER reads as having no such header.
func ParseUpdate(req sip.Request, aor string, flow Flow) (Update, error) {
	if aor == "" {
		return Update{}, errors.New("register without a user in the To URI")
	}
	// A binding lives as long as the registration: what it keeps of the
	// REGISTER is copied, not substrings of the datagram it came in
	// (sipmsg.ParseOwned), which would stay held with it (~0.7 kB each).
	u := Update{
		AOR:       strings.Clone(aor),
		Expires:   -1,
		CallID:    strings.Clone(sipmsg.CallID(req)),
		Flow:      flow,
		UserAgent: strings.Clone(sipmsg.Header(req, "User-Agent")),
	}
	u.CSeq, _ = sipmsg.CSeq(req)
	if len(req.GetHeaders("Expires")) > 0 {
		v, err := deltaSeconds(sipmsg.Header(req, "Expires"))
		if err != nil {
			return Update{}, fmt.Errorf("expires header: %w", err)
		}
		u.Expires = v
	}
	for _, h := range req.GetHeaders("Contact") {
		c, ok := h.(*sip.ContactHeader)
		if !ok || c.Address == nil {
			return Update{}, errors.New("unparsed contact header")
		}
		if c.Address.IsWildcard() {
			u.Wildcard = true
			continue
		}
		cp, err := contactParam(c)
		if err != nil {
			return Update{}, fmt.Errorf("contact %d: %w", len(u.Contacts)+1, err)
		}
		u.Contacts = append(u.Contacts, cp)
	}
	return u, nil
}

// contactParam reads one non-wildcard Contact.
func contactParam(c *sip.ContactHeader) (ContactParam, error) {
	cp := ContactParam{URI: c.Address.String(), Expires: -1}
	if len(cp.URI) > maxContactURILen {
		return cp, fmt.Errorf("uri longer than %d bytes", maxContactURILen)
	}
	if c.Address.Host() == "" {
		return cp, errors.New("uri without host")
	}
	if v, ok := param(c.Params, "expires"); ok {
		n, err := deltaSeconds(v)
		if err != nil {
			return cp, fmt.Errorf("expires parameter: %w", err)
		}
		cp.Expires = n
	}
	if v, ok := param(c.Params, "+sip.instance"); ok {
		v = sipmsg.Unquote(v) // a quoted-string: "<urn:uuid:...>"
		if v == "" || len(v) > maxInstanceLen {
			return cp, errors.New("bad +sip.instance")
		}
		cp.Instance = strings.Clone(v)
	}
	if v, ok := param(c.Params, "reg-id"); ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > math.MaxInt32 {
			return cp, fmt.Errorf("bad reg-id %q", v)
		}
		cp.RegID = n
	}
	return cp, nil
}

// deltaSeconds parses RFC 3261 delta-seconds: digits only; values too
// large for an int32 become math.MaxInt32 (section 20.19 says to treat
// them as the largest value).
func deltaSeconds(s string) (int, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, errors.New("empty")
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, fmt.Errorf("not delta-seconds: %q", s)
		}
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || n > math.MaxInt32 {
		return math.MaxInt32, nil
	}
	return int(n), nil
}
