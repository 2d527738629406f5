// Package timeline keeps, per call, a bounded list of what happened to it:
// the SIP messages of both legs, policy and routing decisions, media
// milestones (ICE, DTLS, first RTP, latching, SSRC switches, DTMF),
// periodic quality samples and the end. A Store holds the timelines of
// the calls in progress and of the last ended ones, within fixed bounds,
// for the admin API (GET /api/v1/calls/{id}/timeline).
//
// Recording sits on every SIP message of every call, so an event is a
// small fixed struct whose strings are constants or strings the caller
// already holds: adding one costs an amortized append under the
// timeline's own lock, no formatting and no text unless the call is
// traced. Names are given to the numbers and strings only when a
// timeline is read (render.go).
package timeline

// Kind is what an event is about.
type Kind uint8

// Event kinds, as the API names them (Kind.String).
const (
	KindSIP     Kind = iota // a SIP message on one leg
	KindPolicy              // a policy decision: admit, reject
	KindRoute               // a routing attempt or a failover
	KindMedia               // a media milestone
	KindQuality             // a quality sample of one direction
	KindEnd                 // the end of the call
)

var kindNames = [...]string{"sip", "policy", "route", "media", "quality", "end"}

// String is the kind's API name.
func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "unknown"
}

// Leg is the leg of a call an event is on: none, the caller's (a) or
// the callee's (b).
type Leg uint8

// Legs.
const (
	LegNone Leg = iota
	LegA
	LegB
)

var legNames = [...]string{"", "a", "b"}

func (l Leg) String() string {
	if int(l) < len(legNames) {
		return legNames[l]
	}
	return ""
}

// Dir is whether the SBC received (in) or sent (out) a SIP message.
type Dir uint8

// Directions.
const (
	DirNone Dir = iota
	DirIn
	DirOut
)

var dirNames = [...]string{"", "in", "out"}

func (d Dir) String() string {
	if int(d) < len(dirNames) {
		return dirNames[d]
	}
	return ""
}

// Shape names an event's detail fields: which keys its three strings and
// four numbers go under in the API. A shape's unnamed fields are left
// out.
type Shape uint8

// Detail shapes.
const (
	ShapeNone     Shape = iota
	ShapeReason         // s: from, reason
	ShapeReject         // s: reason, stage; n: code
	ShapeAttempt        // s: trunk, target; n: attempt
	ShapeFailover       // s: trunk; n: code
	ShapeDTLS           // s: from, role, profile
	ShapeFrom           // s: from (the side media came from)
	ShapeLatch          // s: from, source
	ShapeSSRC           // s: from; n: old_ssrc, ssrc
	ShapeDTMF           // s: from, digit; n: duration_ms; form: rfc4733
	ShapeDTMFInfo       // s: from, digit; n: duration_ms; form: info
	ShapeSample         // s: from; n: packets, lost, jitter_ms, mos
	ShapeEnd            // s: cause, side; n: code
	ShapeTransfer       // s: target, by
	shapeCount
)

// shapeKeys are the API names of each shape's fields.
var shapeKeys = [shapeCount]struct {
	s     [3]string
	n     [4]string
	fixed [2]string // a key and its value every event of the shape has
}{
	ShapeReason:   {s: [3]string{"from", "reason"}},
	ShapeReject:   {s: [3]string{"reason", "stage"}, n: [4]string{"code"}},
	ShapeAttempt:  {s: [3]string{"trunk", "target"}, n: [4]string{"attempt"}},
	ShapeFailover: {s: [3]string{"trunk"}, n: [4]string{"code"}},
	ShapeDTLS:     {s: [3]string{"from", "role", "profile"}},
	ShapeFrom:     {s: [3]string{"from"}},
	ShapeLatch:    {s: [3]string{"from", "source"}},
	ShapeSSRC:     {s: [3]string{"from"}, n: [4]string{"old_ssrc", "ssrc"}},
	ShapeDTMF:     {s: [3]string{"from", "digit"}, n: [4]string{"duration_ms"}, fixed: [2]string{"form", "rfc4733"}},
	ShapeDTMFInfo: {s: [3]string{"from", "digit"}, n: [4]string{"duration_ms"}, fixed: [2]string{"form", "info"}},
	ShapeSample:   {s: [3]string{"from"}, n: [4]string{"packets", "lost", "jitter_ms", "mos"}},
	ShapeEnd:      {s: [3]string{"cause", "side"}, n: [4]string{"code"}},
	ShapeTransfer: {s: [3]string{"target", "by"}},
}

// Event is one thing that happened to a call. A timeline keeps it in
// 24 bytes (a slot), plus 96 for its details when it has any (strings,
// numbers, a traced message's text): most of a call's events are SIP
// messages without details.
type Event struct {
	// At is when it happened, in Unix nanoseconds; zero: when added.
	At   int64
	Kind Kind
	Leg  Leg
	Dir  Dir
	// Shape names S and N in the API.
	Shape Shape
	// Code is a SIP response's status; 0 for a request and other kinds.
	Code uint16
	// What is the short name: a SIP method (with Code, "180 INVITE"),
	// or admit, reject, attempt, ice-nominated, first-rtp, sample, end...
	What string
	S    [3]string
	N    [4]float64
	// Text is the whole SIP message, kept only for traced calls.
	Text string
}

// digits are one-character strings for DTMF digits, so recording one
// allocates nothing.
var digits = func() (d [256]string) {
	for _, c := range "0123456789*#ABCDabcd" {
		d[c] = string(c)
	}
	return d
}()

// Digit is the string of a DTMF digit, "" for a byte that is none.
func Digit(b byte) string { return digits[b] }
