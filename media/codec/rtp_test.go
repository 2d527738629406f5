package codec

import (
	"encoding/binary"
	"testing"
)

// RTP helpers for the Transcoder tests: a sending phone and a receiving
// one, each checking what a real one would rely on.

func rtpPacket(pt uint8, marker bool, seq uint16, ts, ssrc uint32, payload []byte) []byte {
	p := make([]byte, 12, 12+len(payload))
	p[0] = 0x80
	p[1] = pt
	if marker {
		p[1] |= 0x80
	}
	binary.BigEndian.PutUint16(p[2:], seq)
	binary.BigEndian.PutUint32(p[4:], ts)
	binary.BigEndian.PutUint32(p[8:], ssrc)
	return append(p, payload...)
}

// sender encodes audio as a phone of format f would send it: ptime
// packets, the marker on the first.
type sender struct {
	f     Format
	enc   Encoder
	seq   uint16
	ts    uint32
	n     int // samples sent
	ptime int
}

func newSender(t testing.TB, f Format, ptime int) *sender {
	enc, err := NewEncoder(f)
	if err != nil {
		t.Fatal(err)
	}
	return &sender{f: f, enc: enc, seq: 1000, ts: 90000, ptime: ptime}
}

// next returns the next packet of a tone of freq Hz, amplitude amp.
func (s *sender) next(freq, amp float64) []byte {
	rate := s.enc.SampleRate()
	n := rate * s.ptime / 1000
	payload, err := s.enc.Encode(nil, sine(rate, freq, amp, s.n, n))
	if err != nil {
		panic(err)
	}
	p := rtpPacket(s.f.PT, s.n == 0, s.seq, s.ts, 0x1234, payload)
	s.seq++
	s.ts += uint32(n * s.f.ClockRate / rate)
	s.n += n
	return p
}

// receiver decodes what a Transcoder sends and checks the stream: payload
// type, SSRC, sequence numbers without gaps, timestamps advancing by the
// packets' duration (a jump only with the marker bit).
type receiver struct {
	t       testing.TB
	f       Format
	ssrc    uint32
	dec     Decoder
	pcm     []int16
	packets int
	seq     uint16
	ts      uint32
	durTS   uint32 // the last packet's duration in the To clock
	jumps   int    // timestamp jumps (with the marker)
	jumpTS  uint32 // ticks skipped by those jumps
	events  [][]byte
}

func newReceiver(t testing.TB, f Format, ssrc uint32) *receiver {
	dec, err := NewDecoder(f)
	if err != nil {
		t.Fatal(err)
	}
	return &receiver{t: t, f: f, ssrc: ssrc, dec: dec}
}

func (r *receiver) emit(p []byte) {
	r.t.Helper()
	payload, err := rtpPayload(p)
	if err != nil {
		r.t.Fatalf("sent a bad packet: %v", err)
	}
	seq, ts := binary.BigEndian.Uint16(p[2:]), binary.BigEndian.Uint32(p[4:])
	if got := binary.BigEndian.Uint32(p[8:]); got != r.ssrc {
		r.t.Fatalf("SSRC %x, want %x", got, r.ssrc)
	}
	if r.packets+len(r.events) > 0 && seq != r.seq+1 {
		r.t.Errorf("sequence %d after %d", seq, r.seq)
	}
	r.seq = seq
	if p[1]&0x7f != r.f.PT {
		r.events = append(r.events, append([]byte(nil), p...))
		return
	}
	if r.packets > 0 && ts != r.ts+r.durTS {
		if p[1]&0x80 == 0 {
			r.t.Errorf("timestamp %d after %d+%d without the marker", ts, r.ts, r.durTS)
		}
		r.jumps++
		r.jumpTS += ts - r.ts - r.durTS
	}
	n := len(r.pcm)
	r.pcm, err = r.dec.Decode(r.pcm, payload)
	if err != nil {
		r.t.Fatalf("packet %d undecodable: %v", r.packets, err)
	}
	r.durTS = uint32((len(r.pcm) - n) * r.f.ClockRate / r.dec.SampleRate())
	r.ts = ts
	r.packets++
}
