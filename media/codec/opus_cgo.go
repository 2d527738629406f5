//go:build opus

package codec

import (
	"fmt"
	"slices"

	"gopkg.in/hraban/opus.v2"
)

// Opus through libopus (cgo, gopkg.in/hraban/opus.v2, Debian libopus-dev),
// chosen over the pure-Go github.com/pion/opus decoder by measurement
// (BENCHMARKS.md, "Issue 21, transcoding engine") and because no pure-Go
// encoder is available.

const opusBuilt = true

const (
	opusRate     = 48000
	opusMaxFrame = opusRate * 120 / 1000 // the longest Opus packet: 120 ms
	opusMaxBytes = 1275                  // the longest frame RFC 6716 allows
	opusLossPerc = 10                    // expected loss: makes the encoder spend bits on in-band FEC
	// opusComplexity trades encoder CPU for quality: 5 costs a third of
	// libopus's default 10 for about 1 dB less SNR on a tone
	// (BENCHMARKS.md, "Issue 21, transcoding engine").
	opusComplexity = 5
)

// opusDecoder decodes to 48 kHz mono; libopus downmixes a stereo stream
// (a browser may send one) itself.
type opusDecoder struct {
	dec     *opus.Decoder
	lastDur int // samples of the last packet, for a zero-length payload
}

func newOpusDecoder(f Format) (Decoder, error) {
	dec, err := opus.NewDecoder(opusRate, 1)
	if err != nil {
		return nil, fmt.Errorf("opus decoder: %w", err)
	}
	return &opusDecoder{dec: dec, lastDur: opusRate / 50}, nil
}

func (d *opusDecoder) SampleRate() int { return opusRate }

// Decode decodes one packet; DTX packets (one or two bytes) decode to
// comfort noise or silence of their duration. An empty payload is
// concealed as if lost.
func (d *opusDecoder) Decode(pcm []int16, payload []byte) ([]int16, error) {
	if len(payload) == 0 {
		return d.Conceal(pcm, d.lastDur), nil
	}
	l := len(pcm)
	pcm = slices.Grow(pcm, opusMaxFrame)
	n, err := d.dec.Decode(payload, pcm[l:l+opusMaxFrame:l+opusMaxFrame])
	if err != nil {
		return pcm[:l], fmt.Errorf("opus decode: %w", err)
	}
	d.lastDur = n
	return pcm[:l+n], nil
}

// Conceal runs libopus's packet-loss concealment for n samples, one call
// per packet duration as libopus expects (rounded down to the 2.5 ms steps
// it works in; the rest is silence).
func (d *opusDecoder) Conceal(pcm []int16, n int) []int16 {
	l := len(pcm)
	pcm = slices.Grow(pcm, n)[:l+n]
	out := pcm[l:]
	clear(out)
	for len(out) >= opusRate/400 {
		c := min(len(out), d.lastDur, opusMaxFrame)
		c -= c % (opusRate / 400)
		if d.dec.DecodePLC(out[:c:c]) != nil {
			break
		}
		out = out[c:]
	}
	return pcm
}

// DecodeFEC recovers the n samples lost just before next from next's
// in-band FEC data (libopus falls back to concealment when next has
// none).
func (d *opusDecoder) DecodeFEC(pcm []int16, next []byte, n int) ([]int16, error) {
	n -= n % (opusRate / 400)
	if len(next) == 0 || n <= 0 || n > opusMaxFrame {
		return d.Conceal(pcm, n), nil
	}
	l := len(pcm)
	pcm = slices.Grow(pcm, n)[:l+n]
	if err := d.dec.DecodeFEC(next, pcm[l:l+n:l+n]); err != nil {
		return pcm[:l], fmt.Errorf("opus fec: %w", err)
	}
	return pcm, nil
}

// opusEncoder encodes 48 kHz mono for speech (VoIP application) with
// in-band FEC, at 32 kbit/s or the far end's maxaveragebitrate, at
// complexity 5. DTX stays off: the far end gets a packet every ptime.
type opusEncoder struct {
	enc *opus.Encoder
}

func newOpusEncoder(f Format) (Encoder, error) {
	enc, err := opus.NewEncoder(opusRate, 1, opus.AppVoIP)
	if err != nil {
		return nil, fmt.Errorf("opus encoder: %w", err)
	}
	for _, set := range []func() error{
		func() error { return enc.SetBitrate(opusFmtpBitrate(f.Fmtp)) },
		func() error { return enc.SetInBandFEC(true) },
		func() error { return enc.SetPacketLossPerc(opusLossPerc) },
		func() error { return enc.SetComplexity(opusComplexity) },
	} {
		if err := set(); err != nil {
			return nil, fmt.Errorf("opus encoder: %w", err)
		}
	}
	return &opusEncoder{enc: enc}, nil
}

func (e *opusEncoder) SampleRate() int { return opusRate }

// Encode codes one frame: pcm must hold 2.5, 5, 10, 20, 40 or 60 ms.
func (e *opusEncoder) Encode(out []byte, pcm []int16) ([]byte, error) {
	l := len(out)
	out = slices.Grow(out, opusMaxBytes)
	n, err := e.enc.Encode(pcm, out[l:l+opusMaxBytes:l+opusMaxBytes])
	if err != nil {
		return out[:l], fmt.Errorf("opus encode %d samples: %w", len(pcm), err)
	}
	return out[:l+n], nil
}
