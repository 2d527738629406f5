package codec

import (
	"encoding/binary"
	"fmt"
	"testing"
)

// TestTranscodeDTMF sends a digit as RFC 4733 packets amid the audio:
// each comes out with the To side's payload type, the event's start at
// the To timestamp of the audio of that instant (the same for all its
// packets), durations in the To event clock, the marker on the first, the
// end bit and its retransmissions kept, the sequence shared with the
// audio. Without a To telephone-event type they are dropped and the audio
// goes on.
func TestTranscodeDTMF(t *testing.T) {
	type dtmfCase struct {
		from, to         Format
		fromPT, toPT     int
		fromRate, toRate int
	}
	cases := []dtmfCase{
		{fmtPCMU, fmtPCMA, 101, 96, 0, 0},
		{fmtPCMU, fmtG722, 101, 101, 8000, 8000},
		{fmtPCMU, fmtPCMA, 101, -1, 0, 0},
	}
	if Supported("opus") {
		cases = append(cases,
			dtmfCase{fmtOpus, fmtPCMU, 110, 101, 48000, 8000},
			dtmfCase{fmtPCMA, fmtOpus, 101, 110, 0, 0},
		)
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%s-%s-%d", c.from.Name, c.to.Name, c.toPT), func(t *testing.T) {
			testDTMF(t, c.from, c.to, c.fromPT, c.toPT, c.fromRate, c.toRate)
		})
	}
}

func testDTMF(t *testing.T, from, to Format, fromPT, toPT, fromRate, toRate int) {
	tr, err := NewTranscoder(Direction{From: from, To: to, FromDTMF: fromPT, ToDTMF: toPT,
		FromDTMFRate: fromRate, ToDTMFRate: toRate, SSRC: 5})
	if err != nil {
		t.Fatal(err)
	}
	s := newSender(t, from, 20)
	r := newReceiver(t, to, 5)
	step := uint32(from.ClockRate / 50) // 20 ms in the From clock
	var evTS uint32
	for i := range 30 {
		if i == 10 {
			evTS = s.ts
		}
		_ = tr.Packet(s.next(1000, 8000), r.emit)
		if i < 10 || i > 17 {
			continue
		}
		// Digit 5 from packet 10: five updates, then the end three times.
		k := min(i-9, 5)
		end := byte(0)
		if i >= 15 {
			end = 0x80
		}
		payload := []byte{5, end | 10, 0, 0}
		binary.BigEndian.PutUint16(payload[2:], uint16(uint32(k)*step))
		_ = tr.Packet(rtpPacket(uint8(fromPT), i == 10, s.seq, evTS, 0x1234, payload), r.emit)
		s.seq++
	}
	if toPT < 0 {
		if len(r.events) != 0 || r.packets < 29 {
			t.Errorf("%d events passed without a To type, %d audio packets", len(r.events), r.packets)
		}
		return
	}
	if len(r.events) != 8 {
		t.Fatalf("%d event packets, want 8", len(r.events))
	}
	// The audio packet of the same instant: packet 10, at the To stream's
	// start plus 10 packets.
	wantTS := uint32(int64(90000)*int64(to.ClockRate)/int64(from.ClockRate)) + 10*uint32(to.ClockRate/50)
	toStep := to.ClockRate / 50
	if toRate > 0 {
		toStep = toRate / 50
	}
	for i, p := range r.events {
		ts := binary.BigEndian.Uint32(p[4:])
		d := int(binary.BigEndian.Uint16(p[14:]))
		if int(p[1]&0x7f) != toPT || (p[1]&0x80 != 0) != (i == 0) {
			t.Errorf("event %d: payload type %d marker %v", i, p[1]&0x7f, p[1]&0x80 != 0)
		}
		if ts != wantTS {
			t.Errorf("event %d at %d, want %d", i, ts, wantTS)
		}
		if want := min(i+1, 5) * toStep; d != want {
			t.Errorf("event %d duration %d, want %d", i, d, want)
		}
		if p[12] != 5 || (p[13]&0x80 != 0) != (i >= 5) || p[13]&0x3f != 10 {
			t.Errorf("event %d: %x", i, p[12:16])
		}
	}
}
