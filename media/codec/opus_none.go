//go:build !opus

package codec

import "fmt"

// opusBuilt says whether this build links libopus (build tag opus). The
// default static build (CGO_ENABLED=0) does not: Opus is then not
// transcoded, and calls needing it are refused by whoever asks Supported.
const opusBuilt = false

func newOpusDecoder(f Format) (Decoder, error) {
	return nil, fmt.Errorf("decode %s (build without the opus tag): %w", f.Name, ErrUnsupported)
}

func newOpusEncoder(f Format) (Encoder, error) {
	return nil, fmt.Errorf("encode %s (build without the opus tag): %w", f.Name, ErrUnsupported)
}
