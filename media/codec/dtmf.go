package codec

import "encoding/binary"

// RFC 4733 telephone-events through the Transcoder.

// eventState remembers the event under way, so that all its packets
// (continuations and the three end packets) carry the same converted
// timestamp however the audio moves meanwhile.
type eventState struct {
	valid bool
	inTS  uint32 // the event's From timestamp
	outTS uint32 // the same instant in To's clock
}

// event passes on one telephone-event packet: payload type ToDTMF, the
// event's start in To's clock (where the audio of that instant goes),
// durations converted between the two event clocks. Without ToDTMF the
// events are dropped; the audio goes on.
func (t *Transcoder) event(ts uint32, marker bool, payload []byte, emit func([]byte)) error {
	if t.dir.ToDTMF < 0 || t.dir.ToDTMF > 127 {
		return nil
	}
	if len(payload) < 4 {
		return errShort
	}
	if !t.ev.valid || ts != t.ev.inTS {
		t.ev = eventState{valid: true, inTS: ts, outTS: t.mapTS(ts)}
	}
	from, to := t.dir.FromDTMFRate, t.dir.ToDTMFRate
	if from <= 0 {
		from = t.dir.From.ClockRate
	}
	if to <= 0 {
		to = t.dir.To.ClockRate
	}
	t.header(uint8(t.dir.ToDTMF), marker, t.ev.outTS)
	// Each 4-byte block: event, E/R/volume, duration (RFC 4733 2.3).
	for i := 0; i+4 <= len(payload); i += 4 {
		d := int64(binary.BigEndian.Uint16(payload[i+2:])) * int64(to) / int64(from)
		t.out = append(t.out, payload[i], payload[i+1], 0, 0)
		binary.BigEndian.PutUint16(t.out[len(t.out)-2:], uint16(min(d, 0xffff)))
	}
	emit(t.out)
	return nil
}

// mapTS converts a From timestamp to To's clock, relative to where the
// audio stands: the next audio sample decoded will be sent at the To
// timestamp of t.ts plus what is buffered.
func (t *Transcoder) mapTS(ts uint32) uint32 {
	next := t.ts + t.toTS(len(t.buf))
	if !t.in.timed {
		return next
	}
	d := int64(int32(ts - t.in.nextTS))
	return next + uint32(d*int64(t.dir.To.ClockRate)/int64(t.dir.From.ClockRate))
}
