package rtpproc

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
	"time"
)

// A FuzzNormalizer input is a list of 9-byte records, each one packet (or
// one Next call):
//
//	flags (1): bits 0-1 pick one of 4 SSRCs, bit 2 calls Next instead,
//	           bit 3 sends the record's bytes as a raw (malformed) packet,
//	           bit 4 truncates the packet to its header
//	seq delta (2, signed), timestamp delta (4, signed), arrival delta
//	in ms (1), payload type (1)
const fuzzRecordLen = 9

type fuzzRecord struct {
	flags   byte
	seqD    int16
	tsD     int32
	arriveD byte
	pt      byte
}

func encodeRecords(recs ...fuzzRecord) []byte {
	var b []byte
	for _, r := range recs {
		b = append(b, r.flags)
		b = binary.BigEndian.AppendUint16(b, uint16(r.seqD))
		b = binary.BigEndian.AppendUint32(b, uint32(r.tsD))
		b = append(b, r.arriveD, r.pt)
	}
	return b
}

// normalizerSeeds are FuzzNormalizer seeds: a steady stream, an SSRC
// switch, a sequence jump, reordering, injections and garbage.
func normalizerSeeds() [][]byte {
	steady := fuzzRecord{seqD: 1, tsD: 160, arriveD: 20}
	var seeds [][]byte
	seeds = append(seeds, encodeRecords(steady, steady, steady))
	seeds = append(seeds, encodeRecords(steady, steady, fuzzRecord{flags: 1, seqD: 999, tsD: 1e6, arriveD: 20}, steady, steady))
	seeds = append(seeds, encodeRecords(steady, fuzzRecord{seqD: 5000, tsD: 160, arriveD: 20}, steady))
	seeds = append(seeds, encodeRecords(steady, fuzzRecord{seqD: 2, tsD: 320, arriveD: 20}, fuzzRecord{seqD: -1, tsD: -160, arriveD: 1}, fuzzRecord{seqD: 2, tsD: 320, arriveD: 20}))
	seeds = append(seeds, encodeRecords(fuzzRecord{flags: 4, arriveD: 5}, steady, fuzzRecord{flags: 4, arriveD: 5}, steady, fuzzRecord{flags: 1, seqD: 1, arriveD: 1}, steady))
	seeds = append(seeds, encodeRecords(steady, fuzzRecord{flags: 8, seqD: 1}, fuzzRecord{flags: 16, seqD: 1}, steady, fuzzRecord{seqD: 1, tsD: 1 << 30, arriveD: 20}))
	seeds = append(seeds, encodeRecords(steady, fuzzRecord{flags: 2, seqD: 1, arriveD: 1}, fuzzRecord{seqD: 1, tsD: 160, arriveD: 1}, fuzzRecord{flags: 2, seqD: 1, arriveD: 255}, steady))
	return seeds
}

// normModel is what FuzzNormalizer expects of the output.
type normModel struct {
	known   bool   // hi and off are known
	hi      uint16 // highest output sequence number
	hiTS    uint32 // its timestamp
	off     uint16 // output minus input sequence number in the segment
	inSSRC  uint32
	segment bool // a segment is open (off is valid)
}

func FuzzNormalizer(f *testing.F) {
	for _, s := range normalizerSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		const out = 0xfeedface
		ssrcs := [4]uint32{0x1111, 0x2222, 0x3333, out}
		n := NewNormalizer(out)
		var (
			m     normModel
			stats RecvStats
			dtmf  DTMFDetector
			ptmap = IdentityPTMap()
			seq   uint16
			ts    uint32
			at    int64 = 1e12
		)
		for len(data) >= fuzzRecordLen {
			rec, raw := data[:fuzzRecordLen], data[:fuzzRecordLen]
			data = data[fuzzRecordLen:]
			flags := rec[0]
			seq += binary.BigEndian.Uint16(rec[1:])
			ts += binary.BigEndian.Uint32(rec[3:])
			at += int64(rec[7]) * int64(time.Millisecond)
			if flags&4 != 0 {
				m.checkNext(t, n, at)
				continue
			}
			var p []byte
			switch {
			case flags&8 != 0:
				p = append([]byte(nil), raw...)
			case flags&16 != 0:
				p = pktPT(rec[8]&0x7f, ssrcs[flags&3], seq, ts, 0)
			default:
				p = pktPT(rec[8]&0x7f, ssrcs[flags&3], seq, ts, 4)
			}
			stats.Update(p, 8000, at)
			dtmf.Feed(p, 101, 8000)
			m.checkRewrite(t, n, p, at)
			ptmap.Apply(p)
		}
		stats.Snapshot("opus")
	})
}

func (m *normModel) checkNext(t *testing.T, n *Normalizer, at int64) {
	seq, ts := n.Next(160, at)
	if m.known && (seq != m.hi+1 || ts-m.hiTS < 160) {
		t.Fatalf("Next = %d %d after %d %d", seq, ts, m.hi, m.hiTS)
	}
	m.known, m.hi, m.hiTS = true, seq, ts
	m.off++
}

func (m *normModel) checkRewrite(t *testing.T, n *Normalizer, p []byte, at int64) {
	orig := append([]byte(nil), p...)
	if !n.Rewrite(p, 8000, at) {
		if !bytes.Equal(p, orig) {
			t.Fatal("a refused packet was changed")
		}
		return
	}
	inSeq, inSSRC := rtpSeq(orig), rtpSSRC(orig)
	outSeq, outTS := rtpSeq(p), rtpTS(p)
	if rtpSSRC(p) != n.OutSSRC() || n.InSSRC() != inSSRC {
		t.Fatalf("ssrc %#x (in %#x), want %#x (in %#x)", rtpSSRC(p), n.InSSRC(), n.OutSSRC(), inSSRC)
	}
	if !bytes.Equal(p[12:], orig[12:]) || p[0] != orig[0] || p[1]&0x7f != orig[1]&0x7f {
		t.Fatal("Rewrite changed more than seq, ts, ssrc and marker")
	}
	fresh := rtpMarker(p) && !rtpMarker(orig)
	switch {
	case !m.segment && !fresh:
		t.Fatal("first packet not marked as a new segment")
	case fresh:
		if m.known && (outSeq != m.hi+1 || outTS-m.hiTS < 160 || outTS-m.hiTS > 3600*8000) {
			t.Fatalf("new segment at %d %d after %d %d", outSeq, outTS, m.hi, m.hiTS)
		}
		m.known, m.segment, m.hi, m.hiTS = true, true, outSeq, outTS
		m.off, m.inSSRC = outSeq-inSeq, inSSRC
	default:
		if inSSRC != m.inSSRC || outSeq != inSeq+m.off {
			t.Fatalf("in-segment packet %d -> %d, want offset %d", inSeq, outSeq, m.off)
		}
		d := int16(outSeq - m.hi)
		if d > maxDropout || d < -maxMisorder-1 {
			t.Fatalf("output sequence jumps by %d", d)
		}
		if d > 0 {
			m.hi, m.hiTS = outSeq, outTS
		}
	}
}

func FuzzRTCP(f *testing.F) {
	for _, s := range rtcpSeeds(f) {
		f.Add(s, uint32(0xaaaa), uint32(0xbbbb))
	}
	f.Fuzz(func(t *testing.T, data []byte, out, in uint32) {
		n := NewNormalizer(out)
		n.Rewrite(pkt(in, 1, 1), 8000, 0)

		p := append([]byte(nil), data...)
		if ok := n.RewriteSenderRTCP(p); !ok && !bytes.Equal(p, data) {
			t.Fatal("RewriteSenderRTCP changed a refused packet")
		}
		if len(p) != len(data) || validRTCP(p) != validRTCP(data) {
			t.Fatal("RewriteSenderRTCP changed the packet's length or structure")
		}

		q := append([]byte(nil), data...)
		ok := RewriteFeedbackRTCP(q, out, in)
		if ok != validRTCP(data) || (!ok && !bytes.Equal(q, data)) {
			t.Fatalf("RewriteFeedbackRTCP = %v on a packet validRTCP says %v", ok, validRTCP(data))
		}
		if len(q) != len(data) || validRTCP(q) != ok {
			t.Fatal("RewriteFeedbackRTCP changed the packet's length or structure")
		}
		// Where `in` appeared nowhere, mapping back restores the packet.
		inBytes := binary.BigEndian.AppendUint32(nil, in)
		if ok && !bytes.Contains(data, inBytes) {
			RewriteFeedbackRTCP(q, in, out)
			if !bytes.Equal(q, data) {
				t.Fatal("mapping back did not restore the packet")
			}
		}
	})
}

func rtcpSeeds(tb testing.TB) [][]byte {
	return [][]byte{
		marshalRTCP(tb, sourceSide(0xbbbb, 5000)...),
		marshalRTCP(tb, receiverSide(0xaaaa)...),
		{0x80, 201, 0, 1, 0, 0, 0, 1},
		{0x81, 202, 0, 2, 0, 0, 0xbb, 0xbb, 1, 0, 0, 0},
	}
}

func FuzzDTMFInfo(f *testing.F) {
	for _, s := range dtmfInfoSeeds() {
		f.Add(s[0], []byte(s[1]))
	}
	f.Fuzz(func(t *testing.T, contentType string, body []byte) {
		ev, err := ParseDTMFInfo(contentType, body)
		if err != nil {
			if !errors.Is(err, ErrBadDTMF) && !errors.Is(err, ErrDTMFContentType) {
				t.Fatalf("error %v wraps neither sentinel", err)
			}
			return
		}
		if _, ok := eventCode(ev.Digit); !ok || ev.Digit >= 'a' || ev.Duration <= 0 || ev.Duration > maxInfoDuration {
			t.Fatalf("accepted event %+v", ev)
		}
		ct, b := FormatDTMFRelay(ev)
		back, err := ParseDTMFInfo(ct, b)
		if err != nil || back != ev {
			t.Fatalf("%+v -> %q -> %+v, %v", ev, b, back, err)
		}
	})
}

func dtmfInfoSeeds() [][2]string {
	return [][2]string{
		{"application/dtmf-relay", "Signal=5\r\nDuration=160\r\n"},
		{"application/dtmf-relay; charset=utf-8", "signal=#\nduration=100\n"},
		{"application/dtmf-relay", "Signal=11\r\n"},
		{"application/dtmf-relay", "Signal=!\r\nDuration=0\r\n"},
		{"application/dtmf", "5\r\n"},
		{"application/dtmf", "*"},
		{"text/plain", "5"},
		{"application/dtmf-relay", "Signal=\r\nDuration=x"},
	}
}

func FuzzCrypto(f *testing.F) {
	for _, s := range cryptoSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, attr string) {
		c, err := ParseCrypto(attr)
		if err != nil {
			if !errors.Is(err, ErrBadCrypto) {
				t.Fatalf("error %v does not wrap ErrBadCrypto", err)
			}
			return
		}
		back, err := ParseCrypto(c.String())
		if err != nil || back.String() != c.String() || back.Tag != c.Tag || back.Suite != c.Suite ||
			!bytes.Equal(back.Key, c.Key) || !bytes.Equal(back.Salt, c.Salt) {
			t.Fatalf("%q -> %q does not round-trip: %v", attr, c.String(), err)
		}
		if c.Profile() == 0 {
			t.Fatalf("accepted suite %q has no profile", c.Suite)
		}
		if _, err := c.Context(); err != nil {
			t.Fatalf("accepted %q but Context fails: %v", attr, err)
		}
	})
}

func cryptoSeeds() []string {
	return []string{
		"1 AES_CM_128_HMAC_SHA1_80 inline:" + rfcKey,
		"2 AES_CM_128_HMAC_SHA1_32 inline:" + rfcKey + "|2^20",
		"a=crypto:3 AEAD_AES_128_GCM inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaQ==",
		"1 AES_CM_128_HMAC_SHA1_80 inline:" + rfcKey + "|2^20|1:4",
		"1 AES_CM_128_HMAC_SHA1_80 inline:" + rfcKey + " WSH=64",
		"1 AES_CM_128_HMAC_SHA1_80 inline:" + rfcKey + " UNENCRYPTED_SRTP",
		"99 F8_128_HMAC_SHA1_80 inline:" + rfcKey,
	}
}

// FuzzReplaceSDES: for any input, ReplaceSDES refuses what is not a
// compound RTCP packet, and otherwise leaves a valid compound whose only
// SDES packet, if any, is the SBC's, with every other packet kept in
// order.
func FuzzReplaceSDES(f *testing.F) {
	for _, s := range rtcpSeeds(f) {
		f.Add(s, uint8(64))
	}
	f.Add([]byte{0x80, 201, 0, 1, 0, 0, 0, 1, 0x80, 202, 0, 0}, uint8(0))
	f.Fuzz(func(t *testing.T, data []byte, spare uint8) {
		ours, err := SDESPacket(0x0f0f, "sbc-fuzz")
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, len(data), len(data)+int(spare))
		copy(buf, data)
		out, ok := ReplaceSDES(buf, ours)
		if ok != validRTCP(data) {
			t.Fatalf("ReplaceSDES ok = %v on a packet validRTCP says %v", ok, validRTCP(data))
		}
		if !ok {
			if !bytes.Equal(out, data) {
				t.Fatal("ReplaceSDES changed a refused packet")
			}
			return
		}
		if len(out) > 0 && !validRTCP(out) {
			t.Fatalf("result %x is not a compound", out)
		}
		var kept, sdes, want [][]byte
		for _, p := range splitRTCP(out) {
			if p[1] == rtcpSDES {
				sdes = append(sdes, p)
			} else {
				kept = append(kept, p)
			}
		}
		hadSDES := false
		for _, p := range splitRTCP(data) {
			if p[1] == rtcpSDES {
				hadSDES = true
			} else {
				want = append(want, p)
			}
		}
		if len(sdes) > 1 || (len(sdes) == 1 && !bytes.Equal(sdes[0], ours)) || (len(sdes) == 1) != (hadSDES && int(spare) >= len(ours)-(len(data)-totalLen(want))) {
			t.Fatalf("SDES packets %x from %x (spare %d)", sdes, data, spare)
		}
		if len(kept) != len(want) {
			t.Fatalf("kept %d packets, want %d", len(kept), len(want))
		}
		for i := range kept {
			if !bytes.Equal(kept[i], want[i]) {
				t.Fatalf("packet %d changed: %x, want %x", i, kept[i], want[i])
			}
		}
	})
}

// splitRTCP returns the packets of a compound validRTCP accepts, or of
// an empty one.
func splitRTCP(b []byte) [][]byte {
	var out [][]byte
	for len(b) > 0 {
		var p []byte
		p, b = nextRTCP(b)
		out = append(out, p)
	}
	return out
}

func totalLen(pkts [][]byte) int {
	n := 0
	for _, p := range pkts {
		n += len(p)
	}
	return n
}
