package hep

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/pion/rtcp"
)

// errNoReport means an RTCP packet held no sender or receiver report.
var errNoReport = errors.New("hep: rtcp packet without a sender or receiver report")

// rtcpJSON is the report layout Homer's collectors read for HEP type 5
// (the one the heplify capture agent sends): the first SR or RR of a
// compound packet.
type rtcpJSON struct {
	SenderInfo   senderInfo    `json:"sender_information"`
	SSRC         uint32        `json:"ssrc"`
	Type         uint8         `json:"type"`
	ReportCount  uint8         `json:"report_count"`
	ReportBlocks []reportBlock `json:"report_blocks"`
}

type senderInfo struct {
	NTPSec  uint32 `json:"ntp_timestamp_sec"`
	NTPFrac uint32 `json:"ntp_timestamp_usec"`
	RTPTime uint32 `json:"rtp_timestamp"`
	Packets uint32 `json:"packets"`
	Octets  uint32 `json:"octets"`
}

type reportBlock struct {
	SourceSSRC   uint32 `json:"source_ssrc"`
	FractionLost uint8  `json:"fraction_lost"`
	PacketsLost  uint32 `json:"packets_lost"`
	HighestSeq   uint32 `json:"highest_seq_no"`
	Jitter       uint32 `json:"ia_jitter"`
	LastSR       uint32 `json:"lsr"`
	DelaySR      uint32 `json:"dlsr"`
}

// RTCPReport converts the first sender or receiver report of an RTCP
// compound packet to the JSON document Homer stores for HEP type 5. It
// fails when pkt does not parse as RTCP or holds no SR or RR.
func RTCPReport(pkt []byte) ([]byte, error) {
	packets, err := rtcp.Unmarshal(pkt)
	if err != nil {
		return nil, fmt.Errorf("hep: rtcp: %w", err)
	}
	for _, p := range packets {
		var out rtcpJSON
		switch r := p.(type) {
		case *rtcp.SenderReport:
			out = rtcpJSON{SSRC: r.SSRC, Type: uint8(rtcp.TypeSenderReport), ReportCount: uint8(len(r.Reports)),
				SenderInfo: senderInfo{NTPSec: uint32(r.NTPTime >> 32), NTPFrac: uint32(r.NTPTime),
					RTPTime: r.RTPTime, Packets: r.PacketCount, Octets: r.OctetCount},
				ReportBlocks: blocks(r.Reports)}
		case *rtcp.ReceiverReport:
			out = rtcpJSON{SSRC: r.SSRC, Type: uint8(rtcp.TypeReceiverReport), ReportCount: uint8(len(r.Reports)),
				ReportBlocks: blocks(r.Reports)}
		default:
			continue
		}
		return json.Marshal(out)
	}
	return nil, errNoReport
}

func blocks(rs []rtcp.ReceptionReport) []reportBlock {
	out := make([]reportBlock, len(rs))
	for i, r := range rs {
		out[i] = reportBlock{SourceSSRC: r.SSRC, FractionLost: r.FractionLost, PacketsLost: r.TotalLost,
			HighestSeq: r.LastSequenceNumber, Jitter: r.Jitter, LastSR: r.LastSenderReport, DelaySR: r.Delay}
	}
	return out
}

// HasReport reports whether the RTCP compound packet pkt holds a sender
// or receiver report, by its packets' headers alone: the check the media
// relay can afford for every RTCP packet. It does not allocate.
func HasReport(pkt []byte) bool {
	for off := 0; off+4 <= len(pkt); {
		if pkt[off]>>6 != 2 {
			return false
		}
		if t := rtcp.PacketType(pkt[off+1]); t == rtcp.TypeSenderReport || t == rtcp.TypeReceiverReport {
			return true
		}
		off += 4 * (int(binary.BigEndian.Uint16(pkt[off+2:])) + 1)
	}
	return false
}
