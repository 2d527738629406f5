package rtpproc

import (
	"bytes"
	"testing"

	"github.com/pion/rtcp"
)

func marshalRTCP(t testing.TB, pkts ...rtcp.Packet) []byte {
	t.Helper()
	b, err := rtcp.Marshal(pkts)
	if err != nil {
		t.Fatalf("marshal rtcp: %v", err)
	}
	return b
}

// sourceSide is everything a source-side compound may hold, for source
// SSRC src whose SR timestamp is srTS.
func sourceSide(src, srTS uint32) []rtcp.Packet {
	const other = 0x2222
	return []rtcp.Packet{
		&rtcp.SenderReport{SSRC: src, NTPTime: 1 << 40, RTPTime: srTS, PacketCount: 10, OctetCount: 1600,
			Reports: []rtcp.ReceptionReport{{SSRC: other, FractionLost: 3, LastSequenceNumber: 77}}},
		&rtcp.SourceDescription{Chunks: []rtcp.SourceDescriptionChunk{
			{Source: src, Items: []rtcp.SourceDescriptionItem{{Type: rtcp.SDESCNAME, Text: "pbx@example"}}},
			{Source: 0x3333, Items: []rtcp.SourceDescriptionItem{{Type: rtcp.SDESCNAME, Text: "x"}, {Type: rtcp.SDESTool, Text: "abc"}}},
			{Source: src, Items: []rtcp.SourceDescriptionItem{{Type: rtcp.SDESNote, Text: "1234"}}},
		}},
		&rtcp.PictureLossIndication{SenderSSRC: src, MediaSSRC: other},
		&rtcp.ExtendedReport{SenderSSRC: src, Reports: []rtcp.ReportBlock{
			&rtcp.DLRRReportBlock{Reports: []rtcp.DLRRReport{{SSRC: other, LastRR: 5, DLRR: 6}}},
		}},
		&rtcp.Goodbye{Sources: []uint32{src, 0x4444}, Reason: "transfer"},
	}
}

func TestRewriteSenderRTCP(t *testing.T) {
	const in, out = 0x1111, 0x0f0f
	n := NewNormalizer(out)
	p := pkt(in, 10, 1000)
	n.Rewrite(p, 8000, 0)
	tsOff := rtpTS(p) - 1000

	got := marshalRTCP(t, sourceSide(in, 5000)...)
	want := marshalRTCP(t, sourceSide(out, 5000+tsOff)...)
	// The SR's report block and the PLI's media SSRC are about the other
	// direction: unchanged. sourceSide(out) changes only sender fields,
	// except the SDES chunk of 0x3333 and the BYE's 0x4444.
	if !n.RewriteSenderRTCP(got) {
		t.Fatal("RewriteSenderRTCP refused a valid compound")
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("rewritten\n% x\nwant\n% x", got, want)
	}
	if _, err := rtcp.Unmarshal(got); err != nil {
		t.Fatalf("rewritten compound does not parse: %v", err)
	}
}

func TestRewriteSenderRTCPRefuses(t *testing.T) {
	const in, out = 0x1111, 0x0f0f
	fresh := NewNormalizer(out)
	started := NewNormalizer(out)
	started.Rewrite(pkt(in, 10, 1000), 8000, 0)
	rr := marshalRTCP(t, &rtcp.ReceiverReport{SSRC: 0x7777, Reports: []rtcp.ReceptionReport{{SSRC: 0x1}}})
	tests := []struct {
		name string
		n    *Normalizer
		pkt  []byte
		ok   bool
	}{
		{"stale SR", started, marshalRTCP(t, &rtcp.SenderReport{SSRC: 0x9999}), false},
		{"stale SR after an RR", started, marshalRTCP(t, &rtcp.ReceiverReport{SSRC: in}, &rtcp.SenderReport{SSRC: 0x9999}), false},
		{"SR before any RTP", fresh, marshalRTCP(t, &rtcp.SenderReport{SSRC: in}), false},
		{"RR before any RTP passes", fresh, rr, true},
		{"RR of another SSRC passes", started, rr, true},
		{"empty", started, nil, false},
		{"truncated", started, marshalRTCP(t, &rtcp.SenderReport{SSRC: in})[:20], false},
		{"trailing bytes", started, append(marshalRTCP(t, &rtcp.SenderReport{SSRC: in}), 0, 0), false},
		{"version 1", started, append([]byte{0x40}, marshalRTCP(t, &rtcp.SenderReport{SSRC: in})[1:]...), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			orig := append([]byte(nil), tc.pkt...)
			if ok := tc.n.RewriteSenderRTCP(tc.pkt); ok != tc.ok {
				t.Fatalf("RewriteSenderRTCP = %v, want %v", ok, tc.ok)
			}
			if !bytes.Equal(tc.pkt, orig) {
				t.Fatalf("packet changed:\n% x\nwas\n% x", tc.pkt, orig)
			}
		})
	}
}

// receiverSide is feedback from the receiving side (SSRC 0x1) about media
// SSRC media.
func receiverSide(media uint32) []rtcp.Packet {
	const me, other = 0x1, 0x5
	return []rtcp.Packet{
		&rtcp.ReceiverReport{SSRC: me, Reports: []rtcp.ReceptionReport{
			{SSRC: media, FractionLost: 1, TotalLost: 2, LastSequenceNumber: 3, Jitter: 4},
			{SSRC: other},
		}},
		&rtcp.SenderReport{SSRC: me, RTPTime: 9, Reports: []rtcp.ReceptionReport{{SSRC: media}}},
		&rtcp.SourceDescription{Chunks: []rtcp.SourceDescriptionChunk{
			{Source: me, Items: []rtcp.SourceDescriptionItem{{Type: rtcp.SDESCNAME, Text: "browser"}}},
		}},
		&rtcp.PictureLossIndication{SenderSSRC: me, MediaSSRC: media},
		&rtcp.FullIntraRequest{SenderSSRC: me, MediaSSRC: media, FIR: []rtcp.FIREntry{{SSRC: media, SequenceNumber: 1}, {SSRC: other}}},
		&rtcp.ReceiverEstimatedMaximumBitrate{SenderSSRC: me, Bitrate: 64000, SSRCs: []uint32{other, media}},
		&rtcp.TransportLayerNack{SenderSSRC: me, MediaSSRC: media, Nacks: []rtcp.NackPair{{PacketID: 10, LostPackets: 1}}},
		&rtcp.ExtendedReport{SenderSSRC: me, Reports: []rtcp.ReportBlock{
			&rtcp.ReceiverReferenceTimeReportBlock{NTPTimestamp: 42},
			&rtcp.DLRRReportBlock{Reports: []rtcp.DLRRReport{{SSRC: other}, {SSRC: media, LastRR: 1, DLRR: 2}}},
			&rtcp.StatisticsSummaryReportBlock{SSRC: media, BeginSeq: 1, EndSeq: 9, LostPackets: 2},
			&rtcp.VoIPMetricsReportBlock{SSRC: media, LossRate: 3},
			&rtcp.LossRLEReportBlock{SSRC: media, BeginSeq: 1, EndSeq: 2, Chunks: []rtcp.Chunk{0x4006, 0}},
			&rtcp.PacketReceiptTimesReportBlock{SSRC: media, BeginSeq: 1, EndSeq: 2, ReceiptTime: []uint32{5}},
		}},
	}
}

func TestRewriteFeedbackRTCP(t *testing.T) {
	const out, in = 0xaaaa, 0xbbbb
	got := marshalRTCP(t, receiverSide(out)...)
	want := marshalRTCP(t, receiverSide(in)...)
	if !RewriteFeedbackRTCP(got, out, in) {
		t.Fatal("RewriteFeedbackRTCP refused a valid compound")
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("rewritten\n% x\nwant\n% x", got, want)
	}
	// receiverSide names SSRC 0x1 only as the sender (and in SDES), which
	// is not a media SSRC field: nothing changes.
	other := marshalRTCP(t, receiverSide(0x77)...)
	orig := append([]byte(nil), other...)
	if !RewriteFeedbackRTCP(other, 0x1, in) || !bytes.Equal(other, orig) {
		t.Fatal("a sender SSRC equal to out was rewritten")
	}
}

func TestRewriteFeedbackRTCPRefuses(t *testing.T) {
	valid := marshalRTCP(t, receiverSide(0xaaaa)...)
	for _, p := range [][]byte{nil, {0x80}, valid[:len(valid)-4], append(valid, 0x80, 201, 0, 5)} {
		orig := append([]byte(nil), p...)
		if RewriteFeedbackRTCP(p, 0xaaaa, 1) {
			t.Errorf("RewriteFeedbackRTCP(%d bytes) = true, want false", len(p))
		}
		if !bytes.Equal(p, orig) {
			t.Errorf("refused packet changed")
		}
	}
}

func TestRTCPRewritersDoNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under the race detector")
	}
	n := NewNormalizer(2)
	n.Rewrite(pkt(1, 1, 1), 8000, 0)
	src := marshalRTCP(t, sourceSide(1, 5)...)
	fb := marshalRTCP(t, receiverSide(2)...)
	allocs := testing.AllocsPerRun(1000, func() {
		n.RewriteSenderRTCP(src)
		RewriteFeedbackRTCP(fb, 2, 1)
		RewriteFeedbackRTCP(fb, 1, 2)
	})
	if allocs != 0 {
		t.Fatalf("RTCP rewriting allocates %.1f times per packet, want 0", allocs)
	}
}
