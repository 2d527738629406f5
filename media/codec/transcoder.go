package codec

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Transcoder converts the RTP packets of one direction of a call from
// Direction.From to Direction.To. One goroutine feeds it (the direction's
// reader); it is not safe for concurrent use.
//
// Audio is decoded, resampled to the To codec's rate and cut into packets
// of To.Ptime (so 20 ms in may leave as 30 ms out, and the reverse). The
// To side sees one continuous stream: SSRC Direction.SSRC, its own
// sequence numbers without gaps, timestamps in To's RTP clock that follow
// the From side's timing (a silence the sender left out stays a jump in
// time, with the marker bit on the packet after it). Lost packets (a
// sequence gap) are concealed, late and duplicated ones dropped, and
// RFC 4733 telephone-events are passed on with their times and durations
// converted. In steady state Packet allocates nothing.
type Transcoder struct {
	dir   Direction
	dec   Decoder
	enc   Encoder
	rs    *Resampler
	frame int // samples per To packet at the encoder's rate

	dpcm []int16 // one packet decoded, at the decoder's rate
	buf  []int16 // audio at the encoder's rate not yet sent
	out  []byte  // the packet being emitted

	in  inState
	seq uint16 // next To sequence number
	ts  uint32 // To timestamp of buf[0]
	// marker asks for the marker bit on the next audio packet sent.
	marker  bool
	started bool // seq and ts are set

	ev eventState
}

// inState is what the Transcoder knows of the From stream.
type inState struct {
	started bool
	ssrc    uint32
	seq     uint16 // highest sequence number seen
	nextTS  uint32 // From timestamp the next audio packet should carry
	timed   bool   // nextTS is known
	lastDur int    // decoder samples in the last audio packet
}

// maxConceal bounds loss concealment to 120 ms: a longer gap is mostly
// silence anyway, and sent as a jump in time.
const maxConcealMs = 120

// NewTranscoder returns a transcoder for d, or an error wrapping
// ErrUnsupported when this build cannot handle one of its codecs.
func NewTranscoder(d Direction) (*Transcoder, error) {
	dec, err := NewDecoder(d.From)
	if err != nil {
		return nil, err
	}
	enc, err := NewEncoder(d.To)
	if err != nil {
		return nil, err
	}
	rs, err := NewResampler(dec.SampleRate(), enc.SampleRate())
	if err != nil {
		return nil, fmt.Errorf("%s to %s: %w", d.From.Name, d.To.Name, err)
	}
	if d.From.ClockRate <= 0 || d.To.ClockRate <= 0 {
		return nil, fmt.Errorf("%s to %s: clock rates %d and %d: need both", d.From.Name, d.To.Name, d.From.ClockRate, d.To.ClockRate)
	}
	ms := packetTime(d.To)
	frame := enc.SampleRate() * ms / 1000
	t := &Transcoder{
		dir: d, dec: dec, enc: enc, rs: rs, frame: frame,
		// 20 ms decoded and two packets waiting: enough for the usual
		// stream; longer packets grow them once.
		dpcm: make([]int16, 0, dec.SampleRate()/50),
		buf:  make([]int16, 0, 2*frame),
		out:  make([]byte, 12, 1500),
	}
	t.in.lastDur = dec.SampleRate() / 50
	return t, nil
}

// packetTime returns the milliseconds of audio per packet sent to f: its
// Ptime (0 meaning 20) where the codec can do it, else 20. G.711 and
// G.722 take multiples of 10 up to 60; Opus 10, 20, 40 or 60.
func packetTime(f Format) int {
	ms := f.Ptime
	if f.Key() == "opus" {
		return opusPtime(ms)
	}
	if ms < 10 || ms > 60 || ms%10 != 0 {
		return 20
	}
	return ms
}

// PacketTime returns the milliseconds of audio in each packet the
// Transcoder sends.
func (t *Transcoder) PacketTime() int { return packetTime(t.dir.To) }

// errShort is returned for a packet shorter than its RTP header.
var errShort = errors.New("rtp packet too short")

// Packet takes one plain (decrypted) RTP packet received from the From
// side and calls emit with each RTP packet to send to the To side (zero or
// more; a packet buffer valid only during the call). Packets of payload
// types other than From's audio and telephone-events are dropped. An error
// means the packet was malformed or undecodable; the stream goes on.
func (t *Transcoder) Packet(pkt []byte, emit func(out []byte)) error {
	payload, err := rtpPayload(pkt)
	if err != nil {
		return err
	}
	pt := pkt[1] & 0x7f
	dtmf := t.dir.FromDTMF >= 0 && int(pt) == t.dir.FromDTMF
	if !dtmf && pt != t.dir.From.PT {
		return nil
	}
	seq := binary.BigEndian.Uint16(pkt[2:])
	ts := binary.BigEndian.Uint32(pkt[4:])
	lost, ok := t.sequence(binary.BigEndian.Uint32(pkt[8:]), seq)
	if !ok {
		return nil
	}
	t.start(seq, ts)
	marker := pkt[1]&0x80 != 0
	if dtmf {
		return t.event(ts, marker, payload, emit)
	}
	return t.audio(lost, ts, marker, payload, emit)
}

// rtpPayload returns pkt's payload without header, extension and padding.
func rtpPayload(pkt []byte) ([]byte, error) {
	if len(pkt) < 12 || pkt[0]>>6 != 2 {
		return nil, errShort
	}
	hl := 12 + 4*int(pkt[0]&0x0f)
	if pkt[0]&0x10 != 0 {
		if len(pkt) < hl+4 {
			return nil, errShort
		}
		hl += 4 + 4*int(binary.BigEndian.Uint16(pkt[hl+2:]))
	}
	if len(pkt) < hl {
		return nil, errShort
	}
	payload := pkt[hl:]
	if pkt[0]&0x20 != 0 && len(payload) > 0 {
		pad := int(payload[len(payload)-1])
		if pad > len(payload) {
			return nil, errShort
		}
		payload = payload[:len(payload)-pad]
	}
	return payload, nil
}

// sequence tracks the From stream's sequence numbers: it returns how many
// packets were lost before this one, and false for a late or duplicated
// packet. A new SSRC or a jump of more than 1000 is a new stream.
func (t *Transcoder) sequence(ssrc uint32, seq uint16) (lost int, ok bool) {
	in := &t.in
	d := int16(seq - in.seq)
	if !in.started || ssrc != in.ssrc || d > 1000 || d < -1000 {
		*in = inState{started: true, ssrc: ssrc, seq: seq, lastDur: in.lastDur}
		t.marker = true
		return 0, true
	}
	if d <= 0 {
		return 0, false
	}
	in.seq = seq
	return int(d) - 1, true
}

// start sets the To stream's first sequence number and timestamp from
// the first packet: the From ones, the timestamp in To's clock.
func (t *Transcoder) start(seq uint16, ts uint32) {
	if t.started {
		return
	}
	t.started = true
	t.seq = seq
	t.ts = uint32(int64(ts) * int64(t.dir.To.ClockRate) / int64(t.dir.From.ClockRate))
}

// header writes an RTP header for the To side into t.out and advances the
// sequence number.
func (t *Transcoder) header(pt uint8, marker bool, ts uint32) {
	t.out = t.out[:12]
	t.out[0] = 0x80
	t.out[1] = pt
	if marker {
		t.out[1] |= 0x80
	}
	binary.BigEndian.PutUint16(t.out[2:], t.seq)
	binary.BigEndian.PutUint32(t.out[4:], ts)
	binary.BigEndian.PutUint32(t.out[8:], t.dir.SSRC)
	t.seq++
}
