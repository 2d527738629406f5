package codec

import (
	"encoding/binary"
	"fmt"
	"testing"
)

var (
	fmtPCMU = Format{Name: "PCMU", PT: 0, ClockRate: 8000, Channels: 1}
	fmtPCMA = Format{Name: "PCMA", PT: 8, ClockRate: 8000, Channels: 1}
	fmtG722 = Format{Name: "G722", PT: 9, ClockRate: 8000, Channels: 1}
	fmtOpus = Format{Name: "opus", PT: 111, ClockRate: 48000, Channels: 2, Fmtp: "minptime=10;useinbandfec=1"}
)

// directions lists every transcoding direction this build supports,
// with the SNR a 1 kHz tone keeps through it (the far end decoding).
func directions() []struct {
	from, to Format
	minSNR   float64
} {
	type dir = struct {
		from, to Format
		minSNR   float64
	}
	ds := []dir{
		{fmtPCMU, fmtPCMA, 30}, {fmtPCMA, fmtPCMU, 30},
		{fmtPCMU, fmtG722, 28}, {fmtG722, fmtPCMU, 28},
		{fmtPCMA, fmtG722, 28}, {fmtG722, fmtPCMA, 28},
	}
	if Supported("opus") {
		ds = append(ds,
			dir{fmtPCMU, fmtOpus, 25}, dir{fmtOpus, fmtPCMU, 25},
			dir{fmtPCMA, fmtOpus, 25}, dir{fmtOpus, fmtPCMA, 25},
			dir{fmtG722, fmtOpus, 25}, dir{fmtOpus, fmtG722, 25},
		)
	}
	return ds
}

// TestTranscodeTone sends a 1 kHz tone through every direction for a
// second and decodes what comes out as the far end would: a clean 1 kHz
// tone at its level, a stream without gaps.
func TestTranscodeTone(t *testing.T) {
	for _, d := range directions() {
		t.Run(d.from.Name+"-"+d.to.Name, func(t *testing.T) {
			tr, err := NewTranscoder(Direction{From: d.from, To: d.to, FromDTMF: -1, ToDTMF: -1, SSRC: 0xabc})
			if err != nil {
				t.Fatal(err)
			}
			s := newSender(t, d.from, 20)
			r := newReceiver(t, d.to, 0xabc)
			for range 50 {
				if err := tr.Packet(s.next(1000, 8000), r.emit); err != nil {
					t.Fatal(err)
				}
			}
			if r.packets < 48 {
				t.Fatalf("%d packets out for 50 in", r.packets)
			}
			rate := r.dec.SampleRate()
			checkTone(t, "received", r.pcm[rate/5:], rate, 1000, 8000, d.minSNR)
		})
	}
}

// TestTranscodePtime: packets leave with the To side's packet time,
// whatever the From side's: 20→30, 10→20, 30→20 ms, G.722's 8 kHz clock,
// and Opus, which cannot do 30 ms, at 20.
func TestTranscodePtime(t *testing.T) {
	cases := []ptimeCase{
		{fmtPCMU, withPtime(fmtPCMA, 30), 20, 30, 240, 240},
		{fmtPCMU, withPtime(fmtPCMA, 20), 10, 20, 160, 160},
		{fmtPCMA, withPtime(fmtPCMU, 20), 30, 20, 160, 160},
		{fmtPCMU, withPtime(fmtG722, 30), 20, 30, 240, 240},
		{fmtG722, withPtime(fmtPCMU, 10), 20, 10, 80, 80},
	}
	if Supported("opus") {
		cases = append(cases,
			ptimeCase{fmtPCMU, withPtime(fmtOpus, 30), 20, 20, 960, -1},
			ptimeCase{fmtOpus, withPtime(fmtPCMU, 20), 10, 20, 160, 160},
			ptimeCase{fmtOpus, withPtime(fmtPCMA, 20), 60, 20, 160, 160},
			ptimeCase{fmtOpus, withPtime(fmtG722, 30), 40, 30, 240, 240},
			ptimeCase{fmtPCMU, withPtime(fmtOpus, 60), 20, 60, 2880, -1},
		)
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%s%d-%s%d", c.from.Name, c.inMs, c.to.Name, c.to.Ptime), func(t *testing.T) {
			tr, err := NewTranscoder(Direction{From: c.from, To: c.to, FromDTMF: -1, ToDTMF: -1, SSRC: 7})
			if err != nil {
				t.Fatal(err)
			}
			if tr.PacketTime() != c.wantMs {
				t.Errorf("PacketTime %d, want %d", tr.PacketTime(), c.wantMs)
			}
			s := newSender(t, c.from, c.inMs)
			r := newReceiver(t, c.to, 7)
			var sizes []int
			in := 1200 / c.inMs // 1.2 s
			for range in {
				_ = tr.Packet(s.next(1000, 8000), func(p []byte) {
					sizes = append(sizes, len(p)-12)
					r.emit(p)
				})
			}
			if want := 1200 / c.wantMs; r.packets < want-1 || r.packets > want {
				t.Errorf("%d packets of %d ms for %d of %d ms", r.packets, c.wantMs, in, c.inMs)
			}
			if r.durTS != uint32(c.wantTS) {
				t.Errorf("packets of %d ticks, want %d", r.durTS, c.wantTS)
			}
			if c.wantLen > 0 && sizes[0] != c.wantLen {
				t.Errorf("payload %d bytes, want %d", sizes[0], c.wantLen)
			}
			rate := r.dec.SampleRate()
			checkTone(t, "received", r.pcm[rate/5:], rate, 1000, 8000, 20)
		})
	}
}

// ptimeCase: from at inMs per packet to to, expecting packets of wantMs,
// wantTS ticks and wantLen payload bytes (-1: any).
type ptimeCase struct {
	from, to        Format
	inMs, wantMs    int
	wantTS, wantLen int
}

func withPtime(f Format, ms int) Format {
	f.Ptime = ms
	return f
}

// TestTranscodeNewSSRC: when the From side starts a new stream (another
// SSRC, sequence numbers and timestamps: a transfer, a re-INVITE), the To
// side's stream goes on without a gap, the marker on its first packet.
func TestTranscodeNewSSRC(t *testing.T) {
	tr, _ := NewTranscoder(Direction{From: fmtPCMU, To: fmtG722, FromDTMF: -1, ToDTMF: -1, SSRC: 3})
	s := newSender(t, fmtPCMU, 20)
	r := newReceiver(t, fmtG722, 3)
	markers := 0
	emit := func(p []byte) {
		if p[1]&0x80 != 0 {
			markers++
		}
		r.emit(p)
	}
	for i := range 40 {
		p := s.next(1000, 8000)
		if i >= 20 {
			binary.BigEndian.PutUint32(p[8:], 0x5678)
			binary.BigEndian.PutUint16(p[2:], uint16(40000+i))
			binary.BigEndian.PutUint32(p[4:], uint32(7777777+i*160))
		}
		_ = tr.Packet(p, emit)
	}
	if r.packets != 40 || r.jumps != 0 || markers != 2 {
		t.Errorf("%d packets (want 40), %d jumps (want 0), %d markers (want 2)", r.packets, r.jumps, markers)
	}
}
