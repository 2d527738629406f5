package sdpconv

import (
	"slices"
	"strings"
)

// Equivalent reports whether next, a re-offer from the side that sent
// prev, changes nothing the other side must know, so the SBC can answer
// it alone. They must have the same kind and the same m-lines: type,
// usable and enabled state, direction and hold, and codecs (payload type,
// name, rate, channels and fmtp, in order). They may differ in addresses,
// port numbers, a=rtcp, rtcp-mux, SSRCs, crypto keys, ICE credentials and
// candidates, ptime and the o= version: what only the SBC's side of the
// transport uses. A nil description is equivalent to nothing.
func Equivalent(prev, next *Description) bool {
	if prev == nil || next == nil || prev.Kind != next.Kind || len(prev.Media) != len(next.Media) {
		return false
	}
	for i := range prev.Media {
		if !sameStream(&prev.Media[i], &next.Media[i]) {
			return false
		}
	}
	return true
}

func sameStream(a, b *Media) bool {
	if a.Type != b.Type || a.Usable != b.Usable || (a.Port > 0) != (b.Port > 0) {
		return false
	}
	if a.Dir != b.Dir || a.Hold != b.Hold {
		return false
	}
	return slices.EqualFunc(a.Codecs, b.Codecs, func(x, y Codec) bool {
		return x.PT == y.PT && sameCodec(x, y) &&
			strings.EqualFold(strings.TrimSpace(x.Fmtp), strings.TrimSpace(y.Fmtp))
	})
}
