package rtpproc

import (
	"encoding/binary"
	"testing"

	"github.com/pion/rtp"
)

// pkt builds a 172-byte RTP packet (PCMU, 160 bytes of payload).
func pkt(ssrc uint32, seq uint16, ts uint32) []byte {
	return pktPT(0, ssrc, seq, ts, 160)
}

// pktPT builds an RTP packet with payload type pt and n bytes of payload.
func pktPT(pt uint8, ssrc uint32, seq uint16, ts uint32, n int) []byte {
	p := make([]byte, rtpFixedLen+n)
	p[0] = 0x80
	p[1] = pt
	binary.BigEndian.PutUint16(p[2:], seq)
	binary.BigEndian.PutUint32(p[4:], ts)
	binary.BigEndian.PutUint32(p[8:], ssrc)
	for i := range n {
		p[rtpFixedLen+i] = byte(i)
	}
	return p
}

// header parses p with pion/rtp, failing the test if it cannot.
func header(t testing.TB, p []byte) rtp.Header {
	t.Helper()
	var pk rtp.Packet
	if err := pk.Unmarshal(p); err != nil {
		t.Fatalf("pion cannot parse the packet: %v", err)
	}
	return pk.Header
}

// ms is a monotonic arrival time of n milliseconds.
func ms(n int64) int64 { return n * 1e6 }
