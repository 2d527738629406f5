package b2bua

import (
	"slices"
	"strings"

	"github.com/ghettovoice/gosip/sip"

	"github.com/sbc-project/sbc/b2bua/sipmsg"
)

// understood answers what the SBC cannot act on whatever its dialog: an
// unknown method (501, RFC 3261 8.2.1) and a Request-URI of a scheme it
// does not serve (416, RFC 3261 8.2.2.1; tel: is routed by its number).
func (s *Server) understood(req sip.Request, tx serverTx) bool {
	if !sipmsg.KnownMethod(req.Method()) {
		s.respond(tx, 501, "Not Implemented", sipmsg.Generic("Allow", allowed))
		return false
	}
	if u, ok := req.Recipient().(*sipmsg.AbsoluteURI); ok && !u.IsTel() {
		s.respond(tx, 416, "Unsupported URI Scheme")
		return false
	}
	if req.Method() == sip.CANCEL {
		return true
	}
	if unknown := unsupported(req); unknown != "" { // RFC 3261 8.2.2.3
		s.respond(tx, 420, "Bad Extension", sipmsg.Generic("Unsupported", unknown))
		return false
	}
	if (req.Method() == sip.INVITE || req.Method() == sip.UPDATE) && !sdpBody(req) { // RFC 3261 8.2.3
		s.respond(tx, 415, "Unsupported Media Type", sipmsg.Generic("Accept", "application/sdp"))
		return false
	}
	return true
}

// supported are the extensions the SBC implements (Require may name them).
var supported = []string{"timer", "100rel"}

// unsupported lists the options of req's Require the SBC does not know.
func unsupported(req sip.Request) string {
	var unknown []string
	for _, v := range sipmsg.Values(req, "Require") {
		for _, opt := range strings.Split(v, ",") {
			if opt = strings.TrimSpace(opt); opt != "" && !slices.Contains(supported, strings.ToLower(opt)) {
				unknown = append(unknown, opt)
			}
		}
	}
	return strings.Join(unknown, ", ")
}

// sdpBody reports whether req's body, if any, is SDP or a multipart body
// (which may carry one).
func sdpBody(req sip.Request) bool {
	if req.Body() == "" {
		return true
	}
	ct, _, _ := strings.Cut(strings.ToLower(sipmsg.Header(req, "Content-Type")), ";")
	ct = strings.TrimSpace(ct)
	return ct == "application/sdp" || strings.HasPrefix(ct, "multipart/")
}
