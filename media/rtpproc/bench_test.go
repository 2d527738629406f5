package rtpproc

import (
	"testing"
	"time"

	"github.com/pion/rtp"
)

// BenchmarkNormalizer rewrites one 172-byte PCMU packet per op: steady
// packets of one source, and a new source every 500 packets.
func BenchmarkNormalizer(b *testing.B) {
	for _, bc := range []struct {
		name  string
		every int // packets per source
	}{{"steady", 1 << 30}, {"switching", 500}} {
		b.Run(bc.name, func(b *testing.B) {
			n := NewNormalizer(1)
			p := pkt(2, 0, 0)
			b.ReportAllocs()
			b.SetBytes(int64(len(p)))
			i := 0
			for b.Loop() {
				i++
				setRTPSeq(p, uint16(i))
				setRTPTS(p, uint32(i)*160)
				p[8] = byte(i / bc.every)
				p[1] = 0
				if !n.Rewrite(p, 8000, int64(i)*int64(20*time.Millisecond)) {
					b.Fatal("packet refused")
				}
			}
		})
	}
}

// BenchmarkRecvStats counts one packet per op.
func BenchmarkRecvStats(b *testing.B) {
	var r RecvStats
	p := pkt(1, 0, 0)
	b.ReportAllocs()
	b.SetBytes(int64(len(p)))
	i := 0
	for b.Loop() {
		i++
		setRTPSeq(p, uint16(i))
		setRTPTS(p, uint32(i)*160)
		r.Update(p, 8000, int64(i)*int64(20*time.Millisecond))
	}
	if s := r.Snapshot("PCMU"); s.Packets == 0 {
		b.Fatal("nothing counted")
	}
}

// BenchmarkPTMap rewrites the payload type of one packet per op.
func BenchmarkPTMap(b *testing.B) {
	m := IdentityPTMap()
	m[0], m[8] = 8, 0
	p := pkt(1, 0, 0)
	b.ReportAllocs()
	b.SetBytes(int64(len(p)))
	for b.Loop() {
		if !m.Apply(p) {
			b.Fatal("packet dropped")
		}
	}
}

// BenchmarkDTMFDetector feeds one telephone-event packet per op.
func BenchmarkDTMFDetector(b *testing.B) {
	pkts, err := EventPackets('5', 2*time.Second, 101, 1, 0, 0, 8000, 10)
	if err != nil {
		b.Fatal(err)
	}
	var d DTMFDetector
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		d.Feed(pkts[i%len(pkts)], 101, 8000)
		i++
	}
}

// BenchmarkRTCP rewrites one compound packet per op: a source-side one
// (SR, SDES, PLI, XR, BYE) and a receiver-side one (RR, SR, SDES, PLI,
// FIR, REMB, NACK, XR).
func BenchmarkRTCP(b *testing.B) {
	b.Run("sender", func(b *testing.B) {
		n := NewNormalizer(2)
		n.Rewrite(pkt(1, 1, 1), 8000, 0)
		p := marshalRTCP(b, sourceSide(1, 5)...)
		b.ReportAllocs()
		b.SetBytes(int64(len(p)))
		for b.Loop() {
			n.RewriteSenderRTCP(p)
			n.RewriteSenderRTCP(p) // no-op on the second pass: SSRC is out now
		}
	})
	b.Run("feedback", func(b *testing.B) {
		p := marshalRTCP(b, receiverSide(2)...)
		b.ReportAllocs()
		b.SetBytes(int64(len(p)))
		for b.Loop() {
			RewriteFeedbackRTCP(p, 2, 1)
			RewriteFeedbackRTCP(p, 1, 2)
		}
	})
}

// BenchmarkSDES protects one 172-byte RTP packet (160 bytes of payload)
// per op with a pion/srtp Context keyed by a Crypto, reusing the output
// buffer and the rtp.Header: "encrypt" alone, and "roundtrip" (encrypt,
// then decrypt in the far end's context with replay protection).
func BenchmarkSDES(b *testing.B) {
	for _, suite := range []string{SuiteAES128HMACSHA1_80, SuiteAEADAES128GCM} {
		c, err := NewCrypto(1, suite)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(suite+"/encrypt", func(b *testing.B) {
			enc, _ := c.Context()
			plain := pkt(1, 0, 0)
			dst := make([]byte, 0, 1500)
			var h rtp.Header
			b.ReportAllocs()
			b.SetBytes(int64(len(plain)))
			i := 0
			for b.Loop() {
				i++
				setRTPSeq(plain, uint16(i))
				out, err := enc.EncryptRTP(dst, plain, &h)
				if err != nil || len(out) <= len(plain) {
					b.Fatalf("EncryptRTP: %v", err)
				}
			}
		})
		b.Run(suite+"/roundtrip", func(b *testing.B) {
			enc, _ := c.Context()
			dec, _ := c.Context()
			plain := pkt(1, 0, 0)
			sealed, opened := make([]byte, 0, 1500), make([]byte, 0, 1500)
			var he, hd rtp.Header
			b.ReportAllocs()
			b.SetBytes(int64(len(plain)))
			i := 0
			for b.Loop() {
				i++
				setRTPSeq(plain, uint16(i))
				s, err := enc.EncryptRTP(sealed, plain, &he)
				if err != nil {
					b.Fatalf("EncryptRTP: %v", err)
				}
				o, err := dec.DecryptRTP(opened, s, &hd)
				if err != nil || len(o) != len(plain) {
					b.Fatalf("DecryptRTP: %v", err)
				}
			}
		})
	}
}
