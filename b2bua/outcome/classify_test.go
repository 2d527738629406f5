package outcome

import (
	"maps"
	"slices"
	"testing"
)

// everyCause is every cause the SBC produces: the constants (rules) and
// one of each constructor's.
func everyCause() []Cause {
	return append(slices.Sorted(maps.Keys(rules)), PolicyCause("auth_failed"), ReinviteCause(481))
}

// TestClassifyOwnAnswer: the final response, side and disposition of a
// call each cause ends before the answer, when no code is given. These
// are the answers and CDR fields the B2BUA produced before the causes
// were typed.
func TestClassifyOwnAnswer(t *testing.T) {
	tests := []struct {
		cause       Cause
		code        int
		reason      string
		side        Side
		disposition string
	}{
		{CauseCallerBye, 487, "Request Terminated", SideA, NoAnswer},
		{CauseCalleeBye, 487, "Request Terminated", SideB, NoAnswer},
		{CauseCallerCancel, 487, "Request Terminated", SideA, Cancelled},
		{CauseNoAnswer, 408, "Request Timeout", SideB, NoAnswer},
		{CauseACKTimeout, 487, "Request Terminated", SideA, NoAnswer},
		{CausePRACKTimeout, 504, "Server Time-out", SideA, Failed},
		{CauseConnectionLost, 487, "Request Terminated", "", NoAnswer},
		{CauseNormalClearing, 0, "", SideSBC, Failed},
		{CauseTransferred, 487, "Request Terminated", "", NoAnswer},
		{CauseRejected, 0, "", SideB, Failed},
		{CauseRedirect, 480, "Temporarily Unavailable", SideB, NoAnswer},
		{CauseTrunkAuthFailed, 403, "Forbidden", SideB, Rejected},
		{CauseUpstreamUnavailable, 503, "Service Unavailable", SideB, Failed},
		{CauseUpstreamFailed, 502, "Bad Gateway", SideB, Failed},
		{CauseNoCommonCodec, 488, "Not Acceptable Here", SideB, Rejected},
		{CauseBadSDP, 488, "Not Acceptable Here", SideB, Rejected},
		{CauseBadRoute, 500, "Server Internal Error", SideB, Failed},
		{CauseNoRoute, 404, "Not Found", SideSBC, Rejected},
		{CauseNoEcho, 404, "Not Found", SideSBC, Rejected},
		{CauseNoBinding, 480, "Temporarily Unavailable", SideSBC, NoAnswer},
		{CauseAllTrunksDown, 503, "Service Unavailable", SideSBC, Failed},
		{CauseTrunkTLSFailed, 503, "Service Unavailable", SideSBC, Failed},
		{CauseMediaUnavailable, 503, "Service Unavailable", SideSBC, Failed},
		{CauseTranscodingFull, 488, "Not Acceptable Here", SideSBC, Rejected},
		{CauseBadSDPOffer, 488, "Not Acceptable Here", SideSBC, Rejected},
		{CauseBadSDPAnswer, 488, "Not Acceptable Here", SideSBC, Rejected},
		{CauseSessionTimerExpired, 487, "Request Terminated", SideSBC, NoAnswer},
		{CauseSessionRefreshFailed, 487, "Request Terminated", SideSBC, NoAnswer},
		{CauseMaxDuration, 487, "Request Terminated", SideSBC, NoAnswer},
		{CauseSBCShutdown, 487, "Request Terminated", SideSBC, NoAnswer},
		{CauseAdminHangup, 487, "Request Terminated", SideSBC, NoAnswer},
		{CauseSBCRestart, 0, "", SideSBC, Failed},
		{CauseMediaTimeout, 487, "Request Terminated", SideSBC, NoAnswer},
		{CauseICEDisconnected, 487, "Request Terminated", SideSBC, NoAnswer},
		{CauseICETimeout, 487, "Request Terminated", SideSBC, NoAnswer},
		{CauseDTLSTimeout, 487, "Request Terminated", SideSBC, NoAnswer},
		{CauseDTLSFailed, 487, "Request Terminated", SideSBC, NoAnswer},
		{CauseFingerprintMismatch, 487, "Request Terminated", SideSBC, NoAnswer},
		{PolicyCause("auth_failed"), 403, "Forbidden", SideSBC, Rejected},
		{ReinviteCause(481), 487, "Request Terminated", "", NoAnswer},
	}
	seen := map[Cause]bool{}
	for _, tt := range tests {
		seen[tt.cause] = true
		t.Run(string(tt.cause), func(t *testing.T) {
			o := Classify(tt.cause, 0, false)
			want := Outcome{Cause: tt.cause, Side: tt.side, Code: tt.code, Reason: tt.reason, Disposition: tt.disposition,
				Label: string(tt.cause), HandshakeFailed: o.HandshakeFailed}
			if o != want {
				t.Errorf("got  %+v\nwant %+v", o, want)
			}
		})
	}
	for _, c := range everyCause() {
		if !seen[c] {
			t.Errorf("%s: no case", c)
		}
	}
}

// TestClassifyGivenCode: a code given wins over the cause's own, and
// decides the disposition by the README's rules, for every cause, answered
// or not.
func TestClassifyGivenCode(t *testing.T) {
	byCode := map[int]string{
		200: Answered, 302: Rejected, 401: Rejected, 403: Rejected, 404: Rejected, 407: Rejected,
		408: NoAnswer, 420: Rejected, 480: NoAnswer, 484: Rejected, 486: Busy, 487: NoAnswer, 488: Rejected,
		500: Failed, 502: Failed, 503: Failed, 600: Busy, 603: Rejected, 604: Rejected,
	}
	for _, cause := range everyCause() {
		for code, want := range byCode {
			switch {
			case want == Answered:
			case cause == CauseCallerCancel:
				want = Cancelled
			case cause == CauseNoAnswer && want != Busy:
				want = NoAnswer
			}
			o := Classify(cause, code, false)
			if o.Code != code || o.Reason != Phrase(code) || o.Disposition != want {
				t.Errorf("%s, %d: got %d %q %s, want %d %q %s", cause, code, o.Code, o.Reason, o.Disposition,
					code, Phrase(code), want)
			}
			if a := Classify(cause, code, true); a.Code != code || a.Disposition != Answered {
				t.Errorf("%s, %d, answered: got %d %s", cause, code, a.Code, a.Disposition)
			}
		}
		if a := Classify(cause, 0, true); a.Code != 200 || a.Reason != "OK" || a.Disposition != Answered {
			t.Errorf("%s answered: got %d %q %s, want 200 OK ANSWERED", cause, a.Code, a.Reason, a.Disposition)
		}
	}
}

// TestClassifySide: the side a failure the SBC answers records. A relayed
// 404 counts as the SBC's; policy refusals are the SBC's whatever code the
// stage answers.
func TestClassifySide(t *testing.T) {
	tests := []struct {
		name  string
		cause Cause
		code  int
		want  Side
	}{
		{"rejected 486", CauseRejected, 486, SideB},
		{"rejected 603", CauseRejected, 603, SideB},
		{"rejected 404: the callee's, not the SBC's", CauseRejected, 404, SideB},
		{"no answer from the forks", CauseNoAnswer, 480, SideB},
		{"policy 407", PolicyCause("auth_required"), 407, SideSBC},
		{"policy 503", PolicyCause("max_calls"), 503, SideSBC},
		{"policy 484", PolicyCause("unreadable"), 484, SideSBC},
	}
	for _, tt := range tests {
		if got := Classify(tt.cause, tt.code, false).Side; got != tt.want {
			t.Errorf("%s: side %q, want %q", tt.name, got, tt.want)
		}
	}
}

// TestClassifyLabel: the metrics label is the cause for every cause the
// SBC produces, and OtherLabel for anything else.
func TestClassifyLabel(t *testing.T) {
	for _, c := range everyCause() {
		if got := Classify(c, 0, false).Label; got != string(c) {
			t.Errorf("%s: label %q", c, got)
		}
	}
	for _, c := range []Cause{"", "cancelled", "internal_error", "policy_", "policy_Bad-Cause", "reinvite_", "reinvite_48",
		"reinvite_700", "reinvite_x"} {
		if got := Classify(c, 0, false).Label; got != OtherLabel {
			t.Errorf("%q: label %q, want %q", c, got, OtherLabel)
		}
	}
}

// TestClassifyHandshake: exactly the causes of a browser whose ICE or
// DTLS did not complete count as handshake failures.
func TestClassifyHandshake(t *testing.T) {
	want := []Cause{CauseICETimeout, CauseDTLSTimeout, CauseDTLSFailed, CauseFingerprintMismatch}
	for _, c := range everyCause() {
		if got := Classify(c, 0, false).HandshakeFailed; got != slices.Contains(want, c) {
			t.Errorf("%s: handshake failed %v", c, got)
		}
	}
}

func TestConstructors(t *testing.T) {
	tests := []struct {
		got  Cause
		want Cause
	}{
		{PolicyCause("premium"), "policy_premium"},
		{PolicyCause("policy_premium"), "policy_premium"},
		{ReinviteCause(481), "reinvite_481"},
		{ReinviteCause(408), "reinvite_408"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}

func TestPhrase(t *testing.T) {
	tests := []struct {
		code int
		want string
	}{
		{180, "Ringing"}, {200, "OK"}, {404, "Not Found"}, {487, "Request Terminated"}, {603, "Decline"},
		{299, "Success"}, {499, "Client Error"}, {699, "Global Failure"}, {0, "Unknown"}, {700, "Unknown"},
	}
	for _, tt := range tests {
		if got := Phrase(tt.code); got != tt.want {
			t.Errorf("Phrase(%d) = %q, want %q", tt.code, got, tt.want)
		}
	}
}
