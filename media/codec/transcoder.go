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
// This first version handles codecs of the same sample rate, one output
// packet per input packet; the codec work extends it (resampling, packet
// time, loss concealment, telephone-events) behind the same methods.
type Transcoder struct {
	dir     Direction
	dec     Decoder
	enc     Encoder
	pcm     []int16
	out     []byte
	seq     uint16
	started bool
}

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
	if dec.SampleRate() != enc.SampleRate() {
		return nil, fmt.Errorf("%s to %s: %w", d.From.Name, d.To.Name, ErrUnsupported)
	}
	return &Transcoder{dir: d, dec: dec, enc: enc}, nil
}

// errShort is returned for a packet shorter than its RTP header.
var errShort = errors.New("rtp packet too short")

// Packet takes one plain (decrypted) RTP packet received from the From
// side and calls emit with each RTP packet to send to the To side (zero or
// more; a packet buffer valid only during the call). Packets of payload
// types other than From's audio are dropped.
func (t *Transcoder) Packet(pkt []byte, emit func(out []byte)) error {
	if len(pkt) < 12 || pkt[0]>>6 != 2 {
		return errShort
	}
	hl := 12 + 4*int(pkt[0]&0x0f)
	if pkt[0]&0x10 != 0 {
		if len(pkt) < hl+4 {
			return errShort
		}
		hl += 4 + 4*int(binary.BigEndian.Uint16(pkt[hl+2:]))
	}
	if len(pkt) < hl {
		return errShort
	}
	payload := pkt[hl:]
	if pkt[0]&0x20 != 0 && len(payload) > 0 {
		pad := int(payload[len(payload)-1])
		if pad > len(payload) {
			return errShort
		}
		payload = payload[:len(payload)-pad]
	}
	if pkt[1]&0x7f != t.dir.From.PT {
		return nil
	}
	var err error
	t.pcm, err = t.dec.Decode(t.pcm[:0], payload)
	if err != nil {
		return err
	}
	t.out = append(t.out[:0], make([]byte, 12)...)
	t.out, err = t.enc.Encode(t.out, t.pcm)
	if err != nil {
		return err
	}
	if !t.started {
		t.seq = binary.BigEndian.Uint16(pkt[2:])
		t.started = true
	}
	t.out[0] = 0x80
	t.out[1] = pkt[1]&0x80 | t.dir.To.PT
	binary.BigEndian.PutUint16(t.out[2:], t.seq)
	copy(t.out[4:8], pkt[4:8])
	binary.BigEndian.PutUint32(t.out[8:], t.dir.SSRC)
	t.seq++
	emit(t.out)
	return nil
}
