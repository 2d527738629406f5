// Package codec converts audio between the codecs the SBC transcodes:
// Opus (48 kHz), G.722 (16 kHz) and G.711 µ-law/A-law (8 kHz). A Decoder
// turns one RTP payload into 16-bit linear PCM at its codec's sample rate,
// an Encoder the reverse; a Transcoder chains decoder, resampler and
// encoder for one direction of a call and rewrites the RTP header
// (payload type, timestamp clock, sequence, packet time).
//
// This file holds the types the rest of the SBC builds on; which codecs a
// build can handle is said by Supported (Opus needs the build tag opus and
// libopus, see opus_*.go).
package codec

import (
	"errors"
	"fmt"
	"strings"
)

// ErrUnsupported is returned for a codec this build cannot decode or
// encode.
var ErrUnsupported = errors.New("codec not supported by this build")

// Format is one side's negotiated audio codec, as its SDP says it.
type Format struct {
	Name      string // rtpmap encoding name: "PCMU", "PCMA", "G722", "opus" (any case)
	PT        uint8  // payload type on that side
	ClockRate int    // RTP clock: 8000 for PCMU, PCMA and G.722 (RFC 3551), 48000 for opus
	Channels  int    // channels in the rtpmap (opus says 2 even when mono is sent)
	Fmtp      string // the a=fmtp parameters, e.g. "minptime=10;useinbandfec=1"
	Ptime     int    // milliseconds of audio per packet this side wants; 0 means 20
}

// Key returns the canonical lower-case codec name of f.
func (f Format) Key() string { return strings.ToLower(f.Name) }

// SampleRate returns the rate at which f's audio is sampled, which for
// G.722 differs from its RTP clock.
func (f Format) SampleRate() int {
	switch f.Key() {
	case "g722":
		return 16000
	case "opus":
		return 48000
	}
	if f.ClockRate > 0 {
		return f.ClockRate
	}
	return 8000
}

// Decoder turns payloads of one codec into mono 16-bit linear PCM at
// SampleRate. Not safe for concurrent use.
type Decoder interface {
	SampleRate() int
	// Decode appends the samples of payload to pcm and returns it.
	Decode(pcm []int16, payload []byte) ([]int16, error)
	// Conceal appends samples standing in for a lost packet of n
	// samples (packet-loss concealment; silence fading out where the
	// codec has none).
	Conceal(pcm []int16, n int) []int16
}

// Encoder turns mono 16-bit linear PCM at SampleRate into payloads. Not
// safe for concurrent use.
type Encoder interface {
	SampleRate() int
	// Encode appends the payload for pcm (one packet's worth of
	// samples) to out and returns it.
	Encode(out []byte, pcm []int16) ([]byte, error)
}

// Supported reports whether this build can both decode and encode the
// codec named name (rtpmap encoding name, any case).
func Supported(name string) bool {
	switch strings.ToLower(name) {
	case "pcmu", "pcma", "g722":
		return true
	case "opus":
		return opusBuilt
	}
	return false
}

// NewDecoder returns a decoder for f.
func NewDecoder(f Format) (Decoder, error) {
	switch f.Key() {
	case "pcmu":
		return newG711Decoder(false), nil
	case "pcma":
		return newG711Decoder(true), nil
	case "g722":
		return newG722Decoder(), nil
	case "opus":
		return newOpusDecoder(f)
	}
	return nil, fmt.Errorf("decode %s: %w", f.Name, ErrUnsupported)
}

// NewEncoder returns an encoder for f.
func NewEncoder(f Format) (Encoder, error) {
	switch f.Key() {
	case "pcmu":
		return g711Encoder{alaw: false}, nil
	case "pcma":
		return g711Encoder{alaw: true}, nil
	case "g722":
		return newG722Encoder(), nil
	case "opus":
		return newOpusEncoder(f)
	}
	return nil, fmt.Errorf("encode %s: %w", f.Name, ErrUnsupported)
}

// Direction describes one direction of a transcoded call.
type Direction struct {
	From, To Format
	// FromDTMF and ToDTMF are the telephone-event (RFC 4733) payload
	// types on each side, -1 when that side has none. Events keep their
	// meaning; their timestamps and durations are converted to the To
	// side's clock (FromDTMFRate, ToDTMFRate: the telephone-event
	// clock rates, 0 meaning the audio clock rate).
	FromDTMF, ToDTMF         int
	FromDTMFRate, ToDTMFRate int
	// SSRC is the synchronization source the To side sees.
	SSRC uint32
}
