package codec

import (
	"encoding/binary"
	"fmt"
	"testing"
)

// Benchmarks: one operation is one 20 ms packet (a frame). Channels per
// core for a direction = 20 ms / (ns per frame); a transcoded call needs
// both of its directions (BENCHMARKS.md, "Issue 21, transcoding engine").
//
//	go test -tags opus -run XXX -bench . -benchmem ./media/codec

// BenchmarkTranscode runs a Transcoder on a 1 kHz tone, 20 ms in and out.
func BenchmarkTranscode(b *testing.B) {
	for _, d := range directions() {
		b.Run(d.from.Name+"-"+d.to.Name, func(b *testing.B) {
			tr, err := NewTranscoder(Direction{From: d.from, To: d.to, FromDTMF: -1, ToDTMF: -1, SSRC: 1})
			if err != nil {
				b.Fatal(err)
			}
			s := newSender(b, d.from, 20)
			ps := make([][]byte, 250)
			for i := range ps {
				ps[i] = s.next(1000, 8000)
			}
			step := uint32(d.from.ClockRate / 50)
			emit := func([]byte) {}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				// Replay the 5 s of packets with sequence numbers and
				// timestamps going on.
				p := ps[i%len(ps)]
				binary.BigEndian.PutUint16(p[2:], uint16(i))
				binary.BigEndian.PutUint32(p[4:], uint32(i)*step)
				if err := tr.Packet(p, emit); err != nil {
					b.Fatal(err)
				}
			}
			ns := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
			b.ReportMetric(20e6/ns, "directions/core")
		})
	}
}

// BenchmarkCodec runs each codec and resampling step alone on 20 ms.
func BenchmarkCodec(b *testing.B) {
	for _, f := range []Format{fmtPCMU, fmtG722, fmtOpus} {
		if !Supported(f.Name) {
			continue
		}
		enc, _ := NewEncoder(f)
		dec, _ := NewDecoder(f)
		rate := enc.SampleRate()
		pcm := sine(rate, 1000, 8000, 0, rate/50)
		var payload []byte
		b.Run(f.Name+"-encode", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				payload, _ = enc.Encode(payload[:0], pcm)
			}
		})
		out := make([]int16, 0, rate/50)
		b.Run(f.Name+"-decode", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				out, _ = dec.Decode(out[:0], payload)
			}
		})
	}
	for _, r := range [][2]int{{48000, 8000}, {8000, 48000}, {16000, 8000}, {8000, 16000}, {48000, 16000}, {16000, 48000}} {
		rs, _ := NewResampler(r[0], r[1])
		in := sine(r[0], 1000, 8000, 0, r[0]/50)
		out := make([]int16, 0, r[1]/50)
		b.Run(fmt.Sprintf("resample-%d-%d", r[0], r[1]), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				out = rs.Resample(out[:0], in)
			}
		})
	}
}

// BenchmarkNewTranscoder: the cost of setting up one direction of a
// transcoded call (time and memory kept per direction).
func BenchmarkNewTranscoder(b *testing.B) {
	for _, d := range directions() {
		b.Run(d.from.Name+"-"+d.to.Name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := NewTranscoder(Direction{From: d.from, To: d.to, FromDTMF: -1, ToDTMF: -1}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
