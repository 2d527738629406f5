package policy

import (
	"context"
)

// Sanity causes.
const (
	causeMissingHeader = "missing_header"
	causeNoFromTag     = "no_from_tag"
	causeLoop          = "loop"
)

// sanity is the third stage: cheap checks of a request's form that protect
// the SBC and the network behind it, before any state is created. The hop
// limit (Max-Forwards) is the B2BUA's own business, checked where it
// forwards (b2bua.Server.OnRequest): it holds whatever stages run.
//
//   - Call-ID, From and To present (400): every transaction and dialog is
//     keyed on them. The parser refuses most such messages already; Request
//     is a plain struct, so this stage does not rely on it.
//   - From tag on INVITE (400): RFC 3261 8.1.1.3 makes it mandatory and a
//     dialog is identified by Call-ID and both tags (section 12). An RFC
//     2543 element (RFC 4475 3.4.1) sends none: its INVITE passes.
//   - Via loop (482 Loop Detected): a Via whose sent-by is one of the SBC's
//     own addresses means the request is one the SBC sent that came back,
//     e.g. a trunk or DNS entry pointing at the SBC itself. Refusing it
//     stops a loop that would otherwise create a call per round trip.
//     A request whose request-URI is a contact the SBC registered for a
//     browser (a registrar such as Kamailio sending a web user's call to
//     another web user back to the SBC) is spiralling, not looping (RFC
//     3261 16.3 step 4: the request-URI changed), and goes on: it ends at
//     that browser; so are in-dialog requests of such a call (they create
//     nothing: one that looped would find no dialog and get 481).
type sanity struct {
	isSelf func(sentBy string) bool   // nil: no loop check
	spiral func(ruriUser string) bool // nil: no spiral
}

// Check implements Stage.
func (s *sanity) Check(_ context.Context, r *Request) Decision {
	switch {
	case r.CallID == "" || r.From == "" || r.To == "":
		return badRequest(causeMissingHeader, "Bad Request")
	case r.Method == "INVITE" && r.FromTag == "" && !r.RFC2543:
		return badRequest(causeNoFromTag, "Missing From Tag")
	}
	if s.isSelf != nil && !s.spiralling(r) {
		for _, v := range r.Vias {
			if s.isSelf(v) {
				return Decision{Action: Answer, Code: 482, Reason: "Loop Detected", Cause: causeLoop}
			}
		}
	}
	return Pass
}

// spiralling reports whether r, should it carry one of the SBC's Vias, is
// a spiral rather than a loop.
func (s *sanity) spiralling(r *Request) bool {
	if s.spiral == nil {
		return false
	}
	return r.ToTag != "" || (r.RURIUser != "" && s.spiral(r.RURIUser))
}

func badRequest(cause, reason string) Decision {
	return Decision{Action: Answer, Code: 400, Reason: reason, Cause: cause}
}
