package b2bua

import (
	"errors"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/ghettovoice/gosip/sip"

	"github.com/sbc-project/sbc/b2bua/outcome"
	"github.com/sbc-project/sbc/b2bua/sipmsg"
)

// Step 6, transfer (continued): the Refer-To header, an attended
// transfer's Replaces resolved to a call through the SBC, and the media
// kinds a local transfer can join.

var netipZero netip.AddrPort

// parseReferTo reads the one Refer-To of a REFER: its SIP URI and the
// Replaces of an attended transfer ("" for a blind one).
func parseReferTo(req sip.Request) (sip.Uri, string, error) {
	hs := req.GetHeaders("Refer-To")
	if len(hs) != 1 {
		return nil, "", errors.New("want exactly one Refer-To")
	}
	v := strings.TrimSpace(hs[0].Value())
	if i := strings.IndexByte(v, '<'); i >= 0 {
		j := strings.IndexByte(v[i:], '>')
		if j < 0 {
			return nil, "", errors.New("Refer-To without its closing >")
		}
		v = v[i+1 : i+j]
	} else if i := strings.IndexByte(v, ';'); i >= 0 {
		v = v[:i]
	}
	uriText, headers, _ := strings.Cut(v, "?")
	lower := strings.ToLower(uriText)
	if !strings.HasPrefix(lower, "sip:") && !strings.HasPrefix(lower, "sips:") {
		return nil, "", errors.New("Refer-To is not a SIP URI")
	}
	uri, err := sipmsg.ParseURI(uriText)
	if err != nil {
		return nil, "", errors.New("Refer-To URI does not parse")
	}
	replaces := ""
	for _, h := range strings.Split(headers, "&") {
		name, val, _ := strings.Cut(h, "=")
		if !strings.EqualFold(name, "Replaces") {
			continue
		}
		if replaces, err = url.QueryUnescape(val); err != nil || replaces == "" {
			return nil, "", errors.New("Refer-To Replaces does not parse")
		}
	}
	return uri, replaces, nil
}

// replacedDialog is what a call tells another of the party its Replaces
// names: where that party is and the dialog the SBC has with it.
type replacedDialog struct {
	ok       bool
	dest     dest
	routeSet []sip.Header
	replaces string // the Replaces header toward the party
	call     *Call
}

// replacesWait bounds how long a call waits for another to describe a
// dialog (both goroutines are live; the other may be busy).
const replacesWait = 2 * time.Second

// replacedLeg is the SBC's leg in the dialog an attended transfer's
// Replaces names (call-id;to-tag;from-tag, of either of the SBC's dialogs
// with the transferor, tags in either order); nil when the SBC is in no
// such dialog.
func (s *Server) replacedLeg(replaces string) *leg {
	if replaces == "" {
		return nil
	}
	parts := strings.Split(replaces, ";")
	callID := strings.TrimSpace(parts[0])
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range parts[1:] {
		name, val, _ := strings.Cut(strings.TrimSpace(p), "=")
		if n := strings.ToLower(name); n == "to-tag" || n == "from-tag" {
			if l := s.dialogs[dialogKey{callID: callID, localTag: val}]; l != nil {
				return l
			}
		}
	}
	return nil
}

// resolveReplaces makes the party at the other leg of other's call (the
// call the attended transfer's Replaces names) the transfer's
// destination, reached with a Replaces of the SBC's own dialog with it.
// It returns a failure code and reason, or 0.
func (c *Call) resolveReplaces(x *transfer, other *leg) (int, string) {
	if other == nil || other.call == c {
		return 481, "Call/Transaction Does Not Exist"
	}
	res := make(chan replacedDialog, 1)
	y := other.call
	if !y.post(event{kind: evFunc, fn: func(y *Call) { res <- y.describeReplaced(other) }}) {
		return 481, "Call/Transaction Does Not Exist"
	}
	select {
	case r := <-res:
		if !r.ok {
			return 481, "Call/Transaction Does Not Exist"
		}
		x.dests, x.routeSet, x.replaces, x.linked = []dest{r.dest}, r.routeSet, r.replaces, r.call
		return 0, ""
	case <-time.After(replacesWait):
		return 500, "Server Internal Error"
	}
}

// describeReplaced runs on call y: the party at the other leg from l, if
// the call is up.
func (y *Call) describeReplaced(l *leg) replacedDialog {
	if y.state != stateConfirmed || (l != y.a && l != y.b) {
		return replacedDialog{}
	}
	g := y.other(l)
	if g == nil || !g.confirmed {
		return replacedDialog{}
	}
	d := dest{name: "replaces", ruri: g.remoteTarget.Clone(), to: g.dst}
	if tr, ok := y.s.routes.Load().TrunkBySource(g.dst.Addr.Addr().Unmap()); ok {
		d.trunk = tr
	}
	rs := make([]sip.Header, 0, len(g.routeSet))
	for _, h := range g.routeSet {
		rs = append(rs, h.Clone())
	}
	return replacedDialog{ok: true, dest: d, routeSet: rs, call: y,
		replaces: g.callID + ";to-tag=" + g.remoteTag + ";from-tag=" + g.localTag}
}

// linkReplaced ends the call an attended transfer replaced: its record
// goes on in record id, and both its legs get BYE (the party that took
// the Replaces may have ended its old dialog already: a 481 then).
func (c *Call) linkReplaced(y *Call, id string, side outcome.Side) {
	y.post(event{kind: evFunc, fn: func(y *Call) {
		y.rec.TransferredTo = id
		y.hangup(outcome.CauseTransferred, side)
	}})
}
