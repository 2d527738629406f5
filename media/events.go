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
	// Codecs are the audio codecs the side may use, lower-case encoding
	// names in preference order (trunks[].codecs, routes[].webrtc_codecs):
	// what the SBC offers toward it and accepts from it. Empty: any.
	// When they and the other side's share none, the call is transcoded
	// (transcode.go).
	Codecs []string
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

	// Milestones: what the call's timeline shows (b2bua/timeline); a
	// call may ignore them. At says when each happened (deliveries run
	// on goroutines of their own, so they may arrive out of order).

	// EventICEConnected: the WebRTC side From's first valid connectivity
	// check, which puts its path up (the SBC, ICE-lite, selects it at
	// once); EventICENominated: its first check with USE-CANDIDATE (the
	// browser nominates, before or after DTLS is done).
	EventICEConnected
	EventICENominated
	// EventDTLSConnected: side From's DTLS handshake is done and the SRTP
	// keys derived; Role is the SBC's DTLS role (active: client, passive:
	// server), Profile the SRTP profile. At is its end; Started its start.
	EventDTLSConnected
	// EventDTLSFailed: side From's ICE or DTLS did not come up, or its
	// path died; Cause says why (the EventEnd that follows says it too).
	EventDTLSFailed
	// EventFirstRTP: the first RTP packet from side From was relayed.
	EventFirstRTP
	// EventLatched: plain or SDES media from side From latched Source;
	// EventRelatched: it moved there from another source.
	EventLatched
	EventRelatched
	// EventSSRCSwitch: side From's stream changed SSRC from PrevSSRC to
	// SSRC (the SBC normalizes it: the other side sees one stream).
	EventSSRCSwitch
	// EventDTMFRelayed: a digit from side From was relayed as RFC 4733.
	EventDTMFRelayed
	// EventHold: side From's SDP put the media on hold (sendonly,
	// inactive or a 0.0.0.0 address); EventResume: it took it off.
	EventHold
	EventResume
	// EventState: state worth replicating changed without signaling (a
	// socket latched a source, a WebRTC side's DTLS came up): take State
	// and store it. Changes made by Offer, Answer and Absorb are the
	// caller's own and are not reported.
	EventState
)

// Event is something the session tells its call.
type Event struct {
	Kind  EventKind
	Cause string // EventEnd, EventDTLSFailed
	From  Side   // EventDTMF and the milestones
	DTMF  DTMF   // EventDTMF, EventDTMFRelayed
	// At is when it happened; set when emitted.
	At time.Time
	// Started is when a milestone that lasts began (EventDTLSConnected:
	// the handshake's start).
	Started       time.Time
	Role, Profile string         // EventDTLSConnected
	SSRC          uint32         // EventSSRCSwitch: the new one
	PrevSSRC      uint32         // EventSSRCSwitch: the old one
	Source        netip.AddrPort // EventLatched, EventRelatched
}
