package outcome

import (
	"strconv"
	"strings"
)

// Cause says why a call attempt ended: the CDR's hangup_cause and the
// cause label of the call metrics. The SBC produces only the constants
// below and the causes PolicyCause and ReinviteCause build; the zero value
// means not ended yet. The README's "Hangup causes" table lists them all.
type Cause string

// Causes of calls that were answered, or ended by one of the parties.
const (
	CauseCallerBye    Cause = "caller_bye"    // BYE from the caller (leg A)
	CauseCalleeBye    Cause = "callee_bye"    // BYE from the callee (leg B)
	CauseCallerCancel Cause = "caller_cancel" // CANCEL (or an early BYE) from the caller before the answer
	// CauseNoAnswer: ring_timeout expired (the SBC gave up), or no trunk
	// or registered binding answered in time (side B did not answer).
	CauseNoAnswer   Cause = "no_answer"
	CauseACKTimeout Cause = "ack_timeout" // the caller never ACKed the 2xx
	// CausePRACKTimeout: the caller never PRACKed a reliable provisional
	// response in 64*T1 (RFC 3262 3): 504 to it, BYE to an answered callee.
	CausePRACKTimeout Cause = "prack_timeout"
	// CauseConnectionLost: the connection of the caller, or of the
	// answered callee, closed mid-call; the side is that leg's.
	CauseConnectionLost Cause = "connection_lost"
	CauseNormalClearing Cause = "normal_clearing" // the call ended without any other cause
	// CauseTransferred: the transferor's REFER moved the call to another
	// party; the record's TransferredTo names the record that goes on.
	CauseTransferred Cause = "transferred"
)

// Causes of failures before the answer that records count against side B:
// what the callee, or the trunks tried for it, answered, and what the
// B2BUA meets while setting up leg B (the caller's offer, the route's
// target).
const (
	CauseRejected            Cause = "rejected"             // the callee's 4xx or 6xx, relayed (forks: the best one)
	CauseRedirect            Cause = "redirect"             // the callee answered 3xx: 480 to the caller
	CauseTrunkAuthFailed     Cause = "trunk_auth_failed"    // the trunk's digest challenge could not be answered: 403
	CauseUpstreamUnavailable Cause = "upstream_unavailable" // the last trunk answered 503 or could not be reached: 503
	CauseUpstreamFailed      Cause = "upstream_failed"      // the last trunk failed otherwise (5xx): 502
	CauseNoCommonCodec       Cause = "no_common_codec"      // the caller's offer has no codec the SBC relays: 488
	CauseBadSDP              Cause = "bad_sdp"              // the caller's offer could not be used: 488
	CauseBadRoute            Cause = "bad_route"            // the route's target is none the SBC knows: 500
)

// Causes of failures the SBC records as its own.
const (
	CauseNoRoute          Cause = "no_route"          // no route matched: 404
	CauseNoEcho           Cause = "no_echo"           // the echo destination is not running: 404
	CauseNoBinding        Cause = "no_binding"        // target registered, no live registration: 480
	CauseAllTrunksDown    Cause = "all_trunks_down"   // every trunk of the route is down by OPTIONS: 503
	CauseTrunkTLSFailed   Cause = "trunk_tls_failed"  // the last trunk failed TLS verification: 503
	CauseMediaUnavailable Cause = "media_unavailable" // no media ports left: 503
	// CauseTranscodingFull: the call needs transcoding and
	// media.transcoding.max_calls calls transcode already: 488.
	CauseTranscodingFull Cause = "transcoding_capacity"
	CauseBadSDPOffer     Cause = "bad_sdp_offer"  // the callee's offer in its 2xx could not be used: 488
	CauseBadSDPAnswer    Cause = "bad_sdp_answer" // the callee's (or the caller's ACK) answer could not be used: 488
)

// Causes of calls the SBC ended.
const (
	CauseSessionTimerExpired  Cause = "session_timer_expired"  // RFC 4028: no refresh in time
	CauseSessionRefreshFailed Cause = "session_refresh_failed" // RFC 4028: the refresh got 408 or 481
	CauseMaxDuration          Cause = "max_duration"           // policy.admission.max_duration reached
	CauseSBCShutdown          Cause = "sbc_shutdown"           // still up after the drain timeout
	CauseAdminHangup          Cause = "admin_hangup"           // DELETE /api/v1/calls/{id}
	// CauseSBCRestart is recorded at start for a call that was up when
	// the previous run ended without ending it.
	CauseSBCRestart Cause = "sbc_restart"
)

// Causes the media session reports (media.Event.Cause): the call's media
// is gone.
const (
	CauseMediaTimeout    Cause = "media_timeout"    // no media from either side for media.timeout
	CauseICEDisconnected Cause = "ice_disconnected" // no STUN consent or media from a browser for its consent timeout

	// A browser's ICE or DTLS did not complete (Outcome.HandshakeFailed).
	CauseICETimeout          Cause = "ice_timeout"          // no nominated pair within the handshake timeout
	CauseDTLSTimeout         Cause = "dtls_timeout"         // ICE up, DTLS not done within the handshake timeout
	CauseDTLSFailed          Cause = "dtls_failed"          // DTLS handshake error or alert, or no SRTP profile
	CauseFingerprintMismatch Cause = "fingerprint_mismatch" // the peer's certificate matches no a=fingerprint
)

// Prefixes of the causes the constructors build.
const (
	policyPrefix   = "policy_"
	reinvitePrefix = "reinvite_"
)

// PolicyCause is the cause of a call a late policy stage refused:
// policy_<cause>, where stageCause is the stage's own cause (auth_failed,
// premium, max_calls_user, ...; policy.Decision.Cause), a bounded set.
func PolicyCause(stageCause string) Cause {
	return Cause(policyPrefix + strings.TrimPrefix(stageCause, policyPrefix))
}

// ReinviteCause is the cause of a call ended because a re-INVITE or
// UPDATE failed with code in a way that ends the dialog (408, 481):
// reinvite_<code>.
func ReinviteCause(code int) Cause {
	return Cause(reinvitePrefix + strconv.Itoa(code))
}

// Side is who ended a call: the CDR's hangup_side. The zero value means
// not ended yet.
type Side string

// The sides.
const (
	SideA   Side = "a"   // the caller (leg A)
	SideB   Side = "b"   // the callee (leg B), or the trunks and bindings tried for it
	SideSBC Side = "sbc" // the SBC itself
)
