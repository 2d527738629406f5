package media

import (
	"net/netip"
	"time"

	"github.com/sbc-project/sbc/media/rtpproc"
	"github.com/sbc-project/sbc/media/wrtc"
)

// SessionState is everything another process needs to continue a
// session's media where this one left it (issue 19: a node's crash keeps
// its calls): the SDP each side sent and was sent, the local address and
// port of every socket, the latched peers, the normalizers' output
// streams, the SDES keys and the WebRTC transports' ICE credentials and
// SRTP keys with their counters. It is JSON: the B2BUA stores it in Redis
// at each change (EventState), never per packet; Manager.Restore rebuilds
// the session from it on the survivor.
//
// Counters that move per packet (sequence numbers, SRTP rollover
// counters) are as of At; Restore advances them by the packets the
// stream's rate (Rate) sent since, plus a margin, so the receiver never
// sees a sequence number again.
type SessionState struct {
	Version int       `json:"v"`  // stateVersion
	ID      string    `json:"id"` // the call's ID (logs)
	At      time.Time `json:"at"` // when State was taken (wall clock)
	// Since is when the session's media was answered (wall clock), the
	// start of the rates; zero before the first Answer.
	Since   time.Time     `json:"since,omitzero"`
	Sides   [2]SideState  `json:"sides"`
	Streams []StreamState `json:"streams"` // by m-line; Relayed false: none
	// Offered: an offer from OfferFrom awaits its answer (Offer), the
	// offer's SDP is OfferSDP.
	Offered   bool   `json:"offered,omitempty"`
	OfferFrom Side   `json:"offer_from,omitempty"`
	OfferSDP  []byte `json:"offer_sdp,omitempty"`
}

// stateVersion is SessionState.Version; Restore refuses others.
const stateVersion = 1

// SideState is one side of a session.
type SideState struct {
	Kind     Kind        `json:"kind"`
	Options  SideOptions `json:"options"`
	AddrSet  bool        `json:"addr_set,omitempty"`
	Bind     netip.Addr  `json:"bind,omitzero"`   // the address the sockets facing the side are bound on
	Public   netip.Addr  `json:"public,omitzero"` // written into SDP toward the side
	CNAME    string      `json:"cname"`
	Hold     bool        `json:"hold,omitempty"`
	Codec    string      `json:"codec,omitempty"`
	LastSDP  []byte      `json:"last_sdp,omitempty"`   // the last SDP the side sent
	SentSDP  []byte      `json:"sent_sdp,omitempty"`   // the last SDP sent toward the side
	SessID   uint64      `json:"sess_id"`              // o= session id toward the side
	SDPVer   uint64      `json:"sdp_version"`          // o= version toward the side
	WebRTC   *WebRTC     `json:"webrtc,omitempty"`     // a WebRTC side's transport
	DTLSRole string      `json:"dtls_setup,omitempty"` // our a=setup toward a WebRTC side that offered
}

// WebRTC is a WebRTC side's transport: where it listens, and its
// transport state (ICE credentials, DTLS role, SRTP keys and counters).
type WebRTC struct {
	// Local is the Mux's address; Shared: it is the manager's shared
	// WebRTC port (media.webrtc_port), else the side's own port.
	Local     netip.AddrPort      `json:"local"`
	Shared    bool                `json:"shared,omitempty"`
	Transport wrtc.TransportState `json:"transport"`
}

// StreamState is one m-line: the endpoint facing each side and the flow
// of each direction (Flows[SideA] carries what A sends).
type StreamState struct {
	Relayed bool         `json:"relayed"`
	Audio   bool         `json:"audio,omitempty"`
	Ends    [2]EndState  `json:"ends"`
	Flows   [2]FlowState `json:"flows"`
}

// EndState is a plain or SDES endpoint: its RTP socket's address (RTCP
// is the port above) and what each socket knows of the side.
type EndState struct {
	WebRTC bool           `json:"webrtc,omitempty"` // a view of the side's WebRTC transport: nothing below
	Local  netip.AddrPort `json:"local,omitzero"`
	RTP    PeerState      `json:"rtp"`
	RTCP   PeerState      `json:"rtcp"`
	SDES   *SDESState     `json:"sdes,omitempty"`
}

// PeerState is what one socket knows of its side.
type PeerState struct {
	Addr    netip.AddrPort `json:"addr,omitzero"` // where media goes: latched, or from SDP
	Latched bool           `json:"latched,omitempty"`
	SDP     netip.AddrPort `json:"sdp,omitzero"` // announced in SDP
	Hold    bool           `json:"hold,omitempty"`
}

// SDESState is an SDES-SRTP endpoint's keys (RFC 4568 a=crypto values)
// and the rollover counters of the streams they protect.
type SDESState struct {
	Local  string `json:"local"`  // ours: "1 AES_CM_128_HMAC_SHA1_80 inline:..."
	Remote string `json:"remote"` // the side's, "" before it sent one
	// The output stream's SRTP rollover counter and SRTCP index (the
	// SSRC is the flow's OutSSRC); the side's stream's rollover counter.
	TxROC, TxSRTCP, RxROC uint32
}

// FlowState is one direction of a stream: the normalizer's output stream
// and what was relayed.
type FlowState struct {
	Norm    rtpproc.NormalizerState `json:"norm"`
	Packets uint64                  `json:"packets"` // relayed toward the receiver
	// InSSRC and InROC: the source's SSRC and the rollover counter of its
	// sequence numbers (the SRTP decryption of a WebRTC or SDES source
	// needs it past 65536 packets).
	InSSRC uint32 `json:"in_ssrc,omitempty"`
	InROC  uint32 `json:"in_roc,omitempty"`
}

// Rate returns the packets per second the flow relayed from since to at
// (0 when unknown).
func (f FlowState) Rate(since, at time.Time) float64 {
	d := at.Sub(since).Seconds()
	if since.IsZero() || d <= 0 {
		return 0
	}
	return float64(f.Packets) / d
}
