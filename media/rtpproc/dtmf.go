package rtpproc

import (
	"encoding/binary"
	"fmt"
	"time"
)

// EventInterval is how often the packets of a generated telephone event
// are sent: EventPackets' packet i goes out EventInterval*i after the
// first.
const EventInterval = 50 * time.Millisecond

// DefaultVolume is the power level of generated events when none is
// known, in -dBm0 (RFC 4733 section 2.3.4): -10 dBm0.
const DefaultVolume = 10

// maxVolume is the largest RFC 4733 volume: -63 dBm0.
const maxVolume = 63

// eventDigits maps RFC 4733 DTMF event codes 0-16 (section 3.2) to
// digits; 16 is the hook flash.
const eventDigits = "0123456789*#ABCDF"

// eventPayloadLen is the length of a telephone-event payload: event,
// E/R/volume, duration.
const eventPayloadLen = 4

// Event is one DTMF key press or hook flash.
type Event struct {
	// Digit is '0'-'9', '*', '#', 'A'-'D', or 'F' for a hook flash.
	Digit byte
	// Duration is how long the key was pressed.
	Duration time.Duration
	// Volume is the power level in -dBm0 (0-63; 10 is -10 dBm0). SIP INFO
	// carries none: ParseDTMFInfo sets DefaultVolume.
	Volume uint8
}

// eventCode returns the RFC 4733 event code of a digit; lower-case a-d and
// f are accepted.
func eventCode(digit byte) (uint8, bool) {
	if digit >= 'a' && digit <= 'f' {
		digit -= 'a' - 'A'
	}
	for i := range len(eventDigits) {
		if eventDigits[i] == digit {
			return uint8(i), true
		}
	}
	return 0, false
}

// DTMFDetector turns the RFC 4733 telephone-event packets of one stream
// into events, each reported once when it ends. Its zero value is ready;
// it is used by one goroutine, the stream's reader.
type DTMFDetector struct {
	seen  bool   // an event has been seen
	ended bool   // the event at ts has been reported
	ts    uint32 // RTP timestamp of the current event, its identity
	code  uint8
	vol   uint8
	dur   uint16 // longest duration seen, in clock units
	clock uint32
}

// Feed looks at one RTP packet of the stream. isEvent reports whether it
// is a telephone-event packet (payload type eventPT), which the caller may
// then handle apart from audio. ended is true once per event, on the
// first end packet (the three redundant end packets share the event's
// timestamp), with the event in ev; it is also reported when a new event
// starts while the previous one never saw an end packet. Events other
// than DTMF and flash (codes above 16) are ignored. clockRate is the
// event clock (0: 8000). Feed does not allocate.
func (d *DTMFDetector) Feed(pkt []byte, eventPT uint8, clockRate uint32) (ev Event, ended bool, isEvent bool) {
	h, ok := parseRTP(pkt)
	if !ok || rtpPT(pkt) != eventPT&0x7f {
		return Event{}, false, false
	}
	if h.payEnd-h.hdrLen < eventPayloadLen || pkt[h.hdrLen] >= uint8(len(eventDigits)) {
		return Event{}, false, true
	}
	if clockRate == 0 {
		clockRate = defaultClockRate
	}
	p := pkt[h.hdrLen:]
	code, end, vol, dur := p[0], p[1]&0x80 != 0, p[1]&0x3f, binary.BigEndian.Uint16(p[2:])
	ts := rtpTS(pkt)
	if d.seen && ts == d.ts {
		d.dur, d.vol = max(d.dur, dur), vol
		if d.ended || !end {
			return d.event(), false, true
		}
		d.ended = true
		return d.event(), true, true
	}
	if d.seen && int32(ts-d.ts) < 0 {
		return Event{}, false, true // a late packet of an earlier event
	}
	prev, open := d.event(), d.seen && !d.ended
	*d = DTMFDetector{seen: true, ts: ts, code: code, vol: vol, dur: dur, clock: clockRate}
	if open {
		// The previous event lost its end packets: report it now. If this
		// packet ends the new one, its repeats will report that.
		return prev, true, true
	}
	if end {
		d.ended = true
		return d.event(), true, true
	}
	return d.event(), false, true
}

func (d *DTMFDetector) event() Event {
	if d.clock == 0 {
		return Event{}
	}
	return Event{
		Digit:    eventDigits[d.code],
		Duration: time.Duration(d.dur) * time.Second / time.Duration(d.clock),
		Volume:   d.vol,
	}
}

// EventPackets returns the RFC 4733 packet train of one key press: every
// packet has SSRC ssrc, payload type pt and timestamp ts (the event's
// start), and sequence numbers from seq up. The first packet has the
// marker bit; the ones after it update the duration, growing by
// EventInterval; the last three are the end packets (E bit) with the
// final duration dur. The caller sends packet i at EventInterval*i.
//
// digit is as in Event (lower-case a-d accepted), clockRate the event
// clock (0: 8000), volume 0-63 (-dBm0). dur must be positive and fit the
// 16-bit duration field (about 8 s at 8000 Hz). It allocates.
func EventPackets(digit byte, dur time.Duration, pt uint8, ssrc uint32, seq uint16, ts uint32, clockRate uint32, volume uint8) ([][]byte, error) {
	code, ok := eventCode(digit)
	if !ok {
		return nil, fmt.Errorf("telephone event for %q: not a DTMF digit or flash", digit)
	}
	if clockRate == 0 {
		clockRate = defaultClockRate
	}
	units := clockUnits(max(dur, 0), clockRate)
	switch {
	case pt > 127:
		return nil, fmt.Errorf("telephone event for %q: payload type %d is not 0-127", digit, pt)
	case volume > maxVolume:
		return nil, fmt.Errorf("telephone event for %q: volume %d is not 0-63", digit, volume)
	case units <= 0:
		return nil, fmt.Errorf("telephone event for %q: duration %s is too short", digit, dur)
	case units > 0xffff:
		return nil, fmt.Errorf("telephone event for %q: duration %s overflows 16 bits at %d Hz", digit, dur, clockRate)
	}
	// Updates at 0, 50, 100 ms... each claiming one interval more, while
	// that stays below the full duration; always at least the first.
	updates := max(1, int((dur+EventInterval-1)/EventInterval)-1)
	const ends = 3
	buf := make([]byte, (updates+ends)*(rtpFixedLen+eventPayloadLen))
	pkts := make([][]byte, 0, updates+ends)
	for i := range updates + ends {
		last := i >= updates
		d := uint16(units)
		if !last {
			d = uint16(min(units, clockUnits(EventInterval*time.Duration(i+1), clockRate)))
		}
		p := buf[: rtpFixedLen+eventPayloadLen : rtpFixedLen+eventPayloadLen]
		buf = buf[len(p):]
		putEventPacket(p, i == 0, pt, ssrc, seq+uint16(i), ts, code, last, volume, d)
		pkts = append(pkts, p)
	}
	return pkts, nil
}

func putEventPacket(p []byte, marker bool, pt uint8, ssrc uint32, seq uint16, ts uint32, code uint8, end bool, volume uint8, dur uint16) {
	p[0] = 0x80
	p[1] = pt
	if marker {
		p[1] |= 0x80
	}
	binary.BigEndian.PutUint16(p[2:], seq)
	binary.BigEndian.PutUint32(p[4:], ts)
	binary.BigEndian.PutUint32(p[8:], ssrc)
	p[12] = code
	p[13] = volume
	if end {
		p[13] |= 0x80
	}
	binary.BigEndian.PutUint16(p[14:], dur)
}
