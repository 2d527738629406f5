package wrtc

// Class is the protocol of a packet received on an ICE path, decided by its
// first byte as RFC 7983 section 7 prescribes.
type Class uint8

// Packet classes, in the order of RFC 7983's first-byte ranges.
const (
	ClassUnknown Class = iota // empty, or a first byte in no range below
	ClassSTUN                 // 0..3
	ClassZRTP                 // 16..19
	ClassDTLS                 // 20..63
	ClassTURN                 // 64..79: TURN channel data
	ClassRTP                  // 128..191, second byte not an RTCP packet type
	ClassRTCP                 // 128..191, second byte 192..223 (RFC 5761 section 4)
)

// String returns the lower-case name of c.
func (c Class) String() string {
	switch c {
	case ClassSTUN:
		return "stun"
	case ClassZRTP:
		return "zrtp"
	case ClassDTLS:
		return "dtls"
	case ClassTURN:
		return "turn"
	case ClassRTP:
		return "rtp"
	case ClassRTCP:
		return "rtcp"
	default:
		return "unknown"
	}
}

// Classify returns the class of pkt by RFC 7983. It reads at most two bytes
// and never fails: an RTP/RTCP first byte without a second byte is
// ClassUnknown. It does not validate the rest of the packet.
func Classify(pkt []byte) Class {
	if len(pkt) == 0 {
		return ClassUnknown
	}
	switch b := pkt[0]; {
	case b <= 3:
		return ClassSTUN
	case b >= 16 && b <= 19:
		return ClassZRTP
	case b >= 20 && b <= 63:
		return ClassDTLS
	case b >= 64 && b <= 79:
		return ClassTURN
	case b >= 128 && b <= 191:
		if len(pkt) < 2 {
			return ClassUnknown
		}
		if pkt[1] >= 192 && pkt[1] <= 223 {
			return ClassRTCP
		}
		return ClassRTP
	default:
		return ClassUnknown
	}
}
