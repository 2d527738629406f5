package codec

import (
	"strconv"
	"strings"
)

// Opus settings shared by every build (the codec itself is in
// opus_cgo.go, behind the build tag opus).

// FECDecoder is a Decoder that can rebuild a lost packet from the
// redundancy carried by the packet after it (Opus in-band FEC).
type FECDecoder interface {
	// DecodeFEC appends n samples standing in for the packet lost just
	// before next, recovered from next (concealed when next carries no
	// FEC data). next is decoded normally afterwards.
	DecodeFEC(pcm []int16, next []byte, n int) ([]int16, error)
}

// opusFmtpBitrate returns the encoder bit rate for the far end's fmtp:
// its maxaveragebitrate (RFC 7587 section 6.1) when it is lower than our
// default, else the default of 32 kbit/s.
func opusFmtpBitrate(fmtp string) int {
	const def = 32000
	for _, p := range strings.Split(fmtp, ";") {
		k, v, ok := strings.Cut(strings.TrimSpace(p), "=")
		if !ok || !strings.EqualFold(k, "maxaveragebitrate") {
			continue
		}
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err == nil && n >= 6000 && n < def {
			return n
		}
	}
	return def
}

// opusPtime returns the packet time used toward an Opus side: the one
// asked for when Opus has a frame of that length (10, 20, 40, 60 ms),
// else 20 ms (a 30 ms ptime cannot be one Opus frame).
func opusPtime(ms int) int {
	switch ms {
	case 10, 20, 40, 60:
		return ms
	}
	return 20
}
