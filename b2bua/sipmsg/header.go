package sipmsg

import (
	"math"
	"strconv"
	"strings"

	"github.com/ghettovoice/gosip/sip"
)

// Header fields into gosip's header types: the ones the SBC reads get
// their type (Via, To, From, Contact, Route, Record-Route, Call-ID, CSeq,
// Max-Forwards, Content-Length, Content-Type, Expires and a few lists);
// every other header is a *sip.GenericHeader with its value as written and
// its full name (compact forms expanded, RFC 3261 7.3.3).

// compactNames maps the compact forms (RFC 3261 7.3.3 and the IANA
// registry) to the full names.
var compactNames = map[string]string{
	"i": "Call-ID", "m": "Contact", "e": "Content-Encoding", "l": "Content-Length",
	"c": "Content-Type", "f": "From", "s": "Subject", "k": "Supported", "t": "To", "v": "Via",
	"o": "Event", "r": "Refer-To", "b": "Referred-By", "u": "Allow-Events", "x": "Session-Expires",
	"a": "Accept-Contact", "j": "Reject-Contact", "d": "Request-Disposition", "y": "Identity",
}

// canonicalName returns the full name of a header field name as written.
func canonicalName(name string) string {
	if len(name) == 1 {
		if full, ok := compactNames[strings.ToLower(name)]; ok {
			return full
		}
	}
	return name
}

// parseHeader turns one unfolded header field into headers (an address
// header with several values gives one header per value).
func parseHeader(bx *arena, name, value string, out []sip.Header) ([]sip.Header, error) {
	name = canonicalName(name)
	lower := lowerName(name) // the usual names without allocating
	switch lower {
	case "via":
		via, err := parseVia(bx, value)
		if err != nil {
			return nil, bad("Bad Via")
		}
		return append(out, via), nil
	case "to", "from", "contact", "route", "record-route":
		return appendAddresses(bx, name, lower, value, out)
	case "call-id":
		if !isCallID(value) {
			return nil, bad("Bad Call-ID")
		}
		return append(out, bx.callID(sip.CallID(value))), nil
	case "cseq":
		cseq, err := parseCSeq(bx, value)
		if err != nil {
			return nil, err
		}
		return append(out, cseq), nil
	case "max-forwards":
		n, ok := digits(value, math.MaxUint32)
		if !ok {
			return nil, bad("Bad Max-Forwards")
		}
		return append(out, bx.maxForwards(sip.MaxForwards(n))), nil
	case "content-length":
		n, ok := digits(value, math.MaxUint32)
		if !ok {
			return nil, bad("Bad Content-Length")
		}
		return append(out, bx.contentLength(sip.ContentLength(n))), nil
	}
	return append(out, simpleHeader(name, lower, value)), nil
}

// simpleHeader types the headers gosip's helpers read, and keeps any other
// as a generic one; lower is name in lower case.
func simpleHeader(name, lower, value string) sip.Header {
	switch lower {
	case "content-type":
		ct := sip.ContentType(value)
		return &ct
	case "accept":
		a := sip.Accept(value)
		return &a
	case "user-agent":
		ua := sip.UserAgentHeader(value)
		return &ua
	case "server":
		srv := sip.ServerHeader(value)
		return &srv
	case "expires":
		// delta-seconds; larger than 2^32-1 is the largest (RFC 3261
		// 20.19 for Expires in general); anything else stays generic
		// for the registrar to judge.
		if n, ok := digits(value, math.MaxUint32); ok {
			e := sip.Expires(n)
			return &e
		}
	case "allow":
		var allow sip.AllowHeader
		for _, m := range listItems(value) {
			allow = append(allow, sip.RequestMethod(m))
		}
		return allow
	case "require":
		return &sip.RequireHeader{Options: listItems(value)}
	case "supported":
		return &sip.SupportedHeader{Options: listItems(value)}
	}
	return &sip.GenericHeader{HeaderName: name, Contents: value}
}

// appendAddresses parses the values of an address header; lower is name
// in lower case.
func appendAddresses(bx *arena, name, lower, value string, out []sip.Header) ([]sip.Header, error) {
	var first firstAddress
	if bx != nil && lower != "route" && lower != "record-route" {
		first = newFirstAddress(lower)
		bx.uri = first.uri // the first value's SIP URI goes into its header's block
	}
	var buf [2]nameAddr
	addrs, err := parseNameAddrs(bx, value, buf[:0])
	if err != nil {
		return nil, bad("Bad " + name)
	}
	if (lower == "to" || lower == "from") && len(addrs) != 1 {
		return nil, bad("Bad " + name)
	}
	switch lower {
	case "route", "record-route":
		uris := make([]sip.Uri, len(addrs))
		for i, a := range addrs {
			uris[i] = a.uri
		}
		if lower == "route" {
			return append(out, &sip.RouteHeader{Addresses: uris}), nil
		}
		return append(out, &sip.RecordRouteHeader{Addresses: uris}), nil
	}
	for i, a := range addrs {
		if _, wild := a.uri.(*sip.WildcardUri); wild && lower != "contact" {
			return nil, bad("Bad " + name)
		}
		if i == 0 && first.header != nil {
			out = append(out, first.fill(a))
			continue
		}
		out = append(out, addressHeader(lower, a))
	}
	return out, nil
}

// The To, From and Contact headers parsed with their SIP URI, one
// allocation where there were two.
type (
	toURIBlock struct {
		toBlock
		u uriBlock
	}
	fromURIBlock struct {
		fromBlock
		u uriBlock
	}
	contactURIBlock struct {
		contactBlock
		u uriBlock
	}
)

// firstAddress is the block made for an address header's first value
// before it is parsed: the URI block the parser fills, and the header
// with its parameters.
type firstAddress struct {
	uri    *uriBlock
	header sip.Header
	params *Params
}

func newFirstAddress(lower string) firstAddress {
	switch lower {
	case "to":
		b := &toURIBlock{}
		return firstAddress{uri: &b.u, header: &b.h, params: &b.p}
	case "from":
		b := &fromURIBlock{}
		return firstAddress{uri: &b.u, header: &b.h, params: &b.p}
	}
	b := &contactURIBlock{}
	return firstAddress{uri: &b.u, header: &b.h, params: &b.p}
}

// fill makes the header of a in f's block.
func (f firstAddress) fill(a nameAddr) sip.Header {
	*f.params = a.params
	switch h := f.header.(type) {
	case *sip.ToHeader:
		*h = sip.ToHeader{DisplayName: a.display, Address: a.uri, Params: f.params}
	case *sip.FromHeader:
		*h = sip.FromHeader{DisplayName: a.display, Address: a.uri, Params: f.params}
	case *sip.ContactHeader:
		*h = sip.ContactHeader{DisplayName: a.display, Address: a.uri, Params: f.params}
	}
	return f.header
}

// The address headers with their parameter lists, one allocation each.
type (
	toBlock struct {
		h sip.ToHeader
		p Params
	}
	fromBlock struct {
		h sip.FromHeader
		p Params
	}
	contactBlock struct {
		h sip.ContactHeader
		p Params
	}
)

// addressHeader makes the To, From or Contact header of a.
func addressHeader(lower string, a nameAddr) sip.Header {
	switch lower {
	case "to":
		b := &toBlock{p: a.params}
		b.h = sip.ToHeader{DisplayName: a.display, Address: a.uri, Params: &b.p}
		return &b.h
	case "from":
		b := &fromBlock{p: a.params}
		b.h = sip.FromHeader{DisplayName: a.display, Address: a.uri, Params: &b.p}
		return &b.h
	}
	b := &contactBlock{p: a.params}
	b.h = sip.ContactHeader{DisplayName: a.display, Address: a.uri, Params: &b.p}
	return &b.h
}

// parseCSeq reads 1*DIGIT LWS Method.
func parseCSeq(bx *arena, value string) (*sip.CSeq, error) {
	i := strings.IndexAny(value, " \t")
	if i < 0 {
		return nil, bad("Bad CSeq")
	}
	n, ok := digits(value[:i], 1<<31-1) // RFC 3261 8.1.1.5
	method := trimLWS(value[i:])
	if !ok || method == "" || tokenLen(method) != len(method) {
		return nil, bad("Bad CSeq")
	}
	return bx.newCSeq(sip.CSeq{SeqNo: uint32(n), MethodName: sip.RequestMethod(method)}), nil
}

// digits reads 1*DIGIT no larger than max; larger values are refused.
func digits(s string, max uint64) (uint64, bool) {
	if s == "" || len(s) > 20 {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseUint(s, 10, 64)
	return n, err == nil && n <= max
}

// isCallID: word [ "@" word ] (RFC 3261 25.1).
func isCallID(s string) bool {
	left, right, found := strings.Cut(s, "@")
	return isWord(left) && (!found || isWord(right))
}

func isWord(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !isTokenChar(rune(c)) && !strings.ContainsRune(`()<>:\"/[]?{}`, rune(c)) {
			return false
		}
	}
	return true
}

// listItems splits a comma-separated list of tokens.
func listItems(s string) []string {
	var out []string
	for _, item := range strings.Split(s, ",") {
		if item = trimLWS(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// parseVia reads one Via field: via-parm *( COMMA via-parm ), via-parm =
// sent-protocol LWS sent-by *( SEMI via-params ); SLASH and COLON may
// carry white space (RFC 3261 25.1).
func parseVia(bx *arena, s string) (sip.ViaHeader, error) {
	var via sip.ViaHeader
	for {
		blk, rest, err := parseViaHop(bx, s)
		if err != nil {
			return nil, err
		}
		if via == nil && rest == "" {
			via = blk.via[:0:1] // one hop: the header's slice is in its block
		}
		via = append(via, &blk.hop)
		if rest == "" {
			return via, nil
		}
		s = rest[1:] // a ','
	}
}

// hopBlock is a parsed Via hop with its port and parameters, in one
// allocation instead of three, and, when the Via has no other hop, the
// header's slice: four in one.
type hopBlock struct {
	hop    sip.ViaHop
	port   sip.Port
	params Params
	via    [1]*sip.ViaHop
}

func parseViaHop(bx *arena, s string) (*hopBlock, string, error) {
	blk := &hopBlock{}
	hop := &blk.hop
	var parts [3]string
	for i := range parts {
		s = trimLWS(s)
		n := tokenLen(s)
		if n == 0 {
			return nil, "", errAddr
		}
		parts[i], s = s[:n], trimLWS(s[n:])
		if i < 2 {
			if !strings.HasPrefix(s, "/") {
				return nil, "", errAddr
			}
			s = s[1:]
		}
	}
	hop.ProtocolName, hop.ProtocolVersion, hop.Transport = parts[0], parts[1], parts[2]
	host, rest, err := cutSentBy(s)
	if err != nil {
		return nil, "", err
	}
	var hasPort bool
	if hop.Host, blk.port, hasPort, _, err = parseHostPort(host); err != nil {
		return nil, "", err
	}
	if hasPort {
		hop.Port = &blk.port
	}
	if rest, err = parseHeaderParams(bx, &blk.params, rest, 1); err != nil {
		return nil, "", err
	}
	hop.Params = &blk.params
	return blk, rest, nil
}

// cutSentBy returns host[:port] with the white space around its colon
// removed, and what follows it.
func cutSentBy(s string) (sentBy, rest string, err error) {
	s = trimLWS(s)
	end := strings.IndexAny(s, ";,")
	if end < 0 {
		end = len(s)
	}
	sentBy, rest = trimLWS(s[:end]), s[end:]
	if host, port, ok := strings.Cut(sentBy, ":"); ok && !strings.HasPrefix(sentBy, "[") {
		if h, p := trimLWS(host), trimLWS(port); len(h) != len(host) || len(p) != len(port) {
			sentBy = h + ":" + p // white space around the colon, rare
		}
	} else if i := strings.LastIndex(sentBy, "]"); ok && i >= 0 {
		if tail := trimLWS(sentBy[i+1:]); strings.HasPrefix(tail, ":") {
			sentBy = sentBy[:i+1] + ":" + trimLWS(tail[1:])
		}
	}
	if sentBy == "" || strings.ContainsAny(sentBy, " \t") {
		return "", "", errAddr
	}
	return sentBy, rest, nil
}
