package media

import (
	"net/netip"
	"time"

	"github.com/sbc-project/sbc/media/sdpconv"
)

// Kind is what one side of a session speaks.
type Kind = sdpconv.Kind

// The side kinds.
const (
	KindRTP    = sdpconv.KindRTP    // plain RTP/AVP(F): SIP phones, PBXs, trunks
	KindSRTP   = sdpconv.KindSRTP   // SDES-SRTP: RTP/SAVP with a=crypto
	KindWebRTC = sdpconv.KindWebRTC // ICE-lite + DTLS-SRTP + rtcp-mux + BUNDLE: browsers
)

// SideOptions tell a session what a side wants before its SDP says so.
type SideOptions struct {
	// Kind is what the side speaks. The kind an SDP from the side shows
	// always wins; this one is used for SDP rendered toward the side before
	// it sent any (an offer toward a trunk, a delayed offer toward a
	// browser). Default KindRTP.
	Kind Kind
	// DTMFInfo: the side wants digits as SIP INFO, not RFC 4733. Events
	// from the other side are taken out of the RTP stream and reported as
	// EventDTMF instead of being relayed.
	DTMFInfo bool
	// Signaling is the IP address the side's SIP comes from: the source
	// of the caller's INVITE, the address of the callee's target. Plain
	// and SDES-SRTP media from it latch the side's ports at once, as from
	// the SDP address (a phone behind NAT sends RTP from its NAT's address,
	// like its SIP); media from any other address does not until
	// strangerGrace has passed. Invalid (the zero value): unknown, and
	// only the SDP address is preferred.
	Signaling netip.Addr
}

// DTMF is one digit: '0'-'9', '*', '#', 'A'-'D'.
type DTMF struct {
	Digit    byte
	Duration time.Duration
}

// EventKind says what an Event reports.
type EventKind int

// The events a session reports.
const (
	// EventEnd: the media of the call is gone; the call must end. Cause
	// says why: media_timeout, ice_timeout, dtls_timeout, dtls_failed,
	// fingerprint_mismatch, ice_disconnected.
	EventEnd EventKind = iota
	// EventDTMF: a digit arrived as RFC 4733 from side From, for a side
	// that wants SIP INFO.
	EventDTMF
	// EventState: state worth replicating changed without signaling (a
	// socket latched a source, a WebRTC side's DTLS came up): take State
	// and store it. Changes made by Offer, Answer and Absorb are the
	// caller's own and are not reported.
	EventState
)

// Event is something the session tells its call.
type Event struct {
	Kind  EventKind
	Cause string // EventEnd
	From  Side   // EventDTMF
	DTMF  DTMF   // EventDTMF
}
