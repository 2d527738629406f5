package outcome

import (
	"strconv"
	"strings"
)

// The dispositions: the CDR's disposition, the outcome of a call attempt
// for billing. They are untyped so that they compare with a record's text
// as written (cdr.Record.Disposition).
const (
	Answered  = "ANSWERED"  // the callee answered (2xx)
	NoAnswer  = "NO ANSWER" // rang without answer: ring timeout, 408, 480, 487
	Busy      = "BUSY"      // 486 Busy Here, 600 Busy Everywhere
	Failed    = "FAILED"    // 5xx, no final response, internal failure, restart
	Cancelled = "CANCELLED" // the caller gave up (CANCEL) before an answer
	Rejected  = "REJECTED"  // any other 3xx, 4xx or 6xx
)

// OtherLabel is the metrics label of a cause the SBC does not produce.
const OtherLabel = "other"

// Outcome is a call attempt's end in every form the SBC reports it.
type Outcome struct {
	Cause Cause // the hangup_cause, as classified
	// Side is who ended the call when the cause says so: the hangup_side
	// of a call that fails before the answer. "" when it depends on the
	// leg (CauseConnectionLost, ReinviteCause): the call records the leg.
	Side Side
	// Code and Reason are the final response the caller gets: the code
	// given (a relayed failure, a policy stage's answer); else 200 once
	// answered; else the cause's own (CauseNoRoute: 404; a cause that ends
	// a call from outside before the answer: 487). Reason is Code's
	// standard phrase. 0 and "" when there is none (CauseSBCRestart).
	Code   int
	Reason string
	// Disposition is one of the dispositions (Answered ...), by the rules
	// of the README's "Disposition" table.
	Disposition string
	// Label is the cause label of the call metrics: the cause, or
	// OtherLabel for one the SBC does not produce, so that the series
	// stay bounded.
	Label string
	// HandshakeFailed: a browser's ICE or DTLS did not complete
	// (sbc_media_dtls_failures_total).
	HandshakeFailed bool
}

// Classify says how a call attempt that ended with cause is reported.
// code is the final response the caller got, or is to get; 0 when none
// was sent, which leaves the cause to decide. answered says whether the
// call was answered; a 2xx code counts as answered too. Classify is a pure
// function of its arguments.
func Classify(cause Cause, code int, answered bool) Outcome {
	r, known := ruleOf(cause)
	answered = answered || code/100 == 2
	switch {
	case code != 0:
	case answered:
		code = 200
	default:
		code = r.code
	}
	o := Outcome{Cause: cause, Side: r.side, Code: code, Label: OtherLabel, HandshakeFailed: r.handshake,
		Disposition: disposition(answered, code, cause)}
	if code != 0 {
		o.Reason = Phrase(code)
	}
	if known {
		o.Label = string(cause)
	}
	return o
}

// disposition applies the README's "Disposition" rules, in their order.
func disposition(answered bool, code int, cause Cause) string {
	switch {
	case answered:
		return Answered
	case cause == CauseCallerCancel:
		return Cancelled
	case code == 486 || code == 600:
		return Busy
	case cause == CauseNoAnswer || code == 408 || code == 480 || code == 487:
		return NoAnswer
	case code >= 300 && code < 500 || code >= 600 && code < 700:
		return Rejected
	default: // 5xx, and 0: no final response (internal failure, restart)
		return Failed
	}
}

// rule is what a cause decides on its own.
type rule struct {
	side Side // "": the leg's
	// code is the caller's final response when the cause ends the call
	// before the answer and none is given; 0: none.
	code      int
	handshake bool // Outcome.HandshakeFailed
}

// terminated answers the INVITE of a call ended before the answer by
// anything but a failure of its own: 487 Request Terminated.
const terminated = 487

// rules hold every Cause constant; the README test checks that.
var rules = map[Cause]rule{
	CauseCallerBye:      {side: SideA, code: terminated},
	CauseCalleeBye:      {side: SideB, code: terminated},
	CauseCallerCancel:   {side: SideA, code: terminated},
	CauseNoAnswer:       {side: SideB, code: 408}, // the ring timeout records SideSBC
	CauseACKTimeout:     {side: SideA, code: terminated},
	CausePRACKTimeout:   {side: SideA, code: 504},
	CauseConnectionLost: {code: terminated},
	CauseNormalClearing: {side: SideSBC},
	CauseTransferred:    {code: terminated},

	CauseRejected:            {side: SideB}, // the code is the callee's
	CauseRedirect:            {side: SideB, code: 480},
	CauseTrunkAuthFailed:     {side: SideB, code: 403},
	CauseUpstreamUnavailable: {side: SideB, code: 503},
	CauseUpstreamFailed:      {side: SideB, code: 502},
	CauseNoCommonCodec:       {side: SideB, code: 488},
	CauseBadSDP:              {side: SideB, code: 488},
	CauseBadRoute:            {side: SideB, code: 500},

	CauseNoRoute:          {side: SideSBC, code: 404},
	CauseNoEcho:           {side: SideSBC, code: 404},
	CauseNoBinding:        {side: SideSBC, code: 480},
	CauseAllTrunksDown:    {side: SideSBC, code: 503},
	CauseTrunkTLSFailed:   {side: SideSBC, code: 503},
	CauseMediaUnavailable: {side: SideSBC, code: 503},
	CauseTranscodingFull:  {side: SideSBC, code: 488},
	CauseBadSDPOffer:      {side: SideSBC, code: 488},
	CauseBadSDPAnswer:     {side: SideSBC, code: 488},

	CauseSessionTimerExpired:  {side: SideSBC, code: terminated},
	CauseSessionRefreshFailed: {side: SideSBC, code: terminated},
	CauseMaxDuration:          {side: SideSBC, code: terminated},
	CauseSBCShutdown:          {side: SideSBC, code: terminated},
	CauseAdminHangup:          {side: SideSBC, code: terminated},
	CauseSBCRestart:           {side: SideSBC},

	CauseMediaTimeout:        {side: SideSBC, code: terminated},
	CauseICEDisconnected:     {side: SideSBC, code: terminated},
	CauseICETimeout:          {side: SideSBC, code: terminated, handshake: true},
	CauseDTLSTimeout:         {side: SideSBC, code: terminated, handshake: true},
	CauseDTLSFailed:          {side: SideSBC, code: terminated, handshake: true},
	CauseFingerprintMismatch: {side: SideSBC, code: terminated, handshake: true},
}

// ruleOf returns the rule of c and whether the SBC produces c.
func ruleOf(c Cause) (rule, bool) {
	if r, ok := rules[c]; ok {
		return r, true
	}
	s := string(c)
	if rest, ok := strings.CutPrefix(s, policyPrefix); ok && isSnake(rest) {
		// A drop late in the chain still owes the caller an answer.
		return rule{side: SideSBC, code: 403}, true
	}
	if rest, ok := strings.CutPrefix(s, reinvitePrefix); ok {
		if n, err := strconv.Atoi(rest); err == nil && n >= 300 && n < 700 {
			return rule{code: terminated}, true
		}
	}
	return rule{}, false
}

// isSnake reports whether s is a non-empty snake_case word, as the policy
// stages' causes are.
func isSnake(s string) bool {
	return s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyz0123456789_") == ""
}
