//go:build opus

package codec

import "testing"

// BenchmarkOpusDecoders decodes the same libopus-encoded tone with
// libopus (cgo) and pion/opus (pure Go), one 20 ms packet per operation,
// in SILK/hybrid (FEC on, as browsers send) and in CELT mode.
func BenchmarkOpusDecoders(b *testing.B) {
	for _, mode := range []struct {
		name string
		celt bool
	}{{"silk", false}, {"celt", true}} {
		ps := opusPackets(b, 1, 5, mode.celt)
		b.Run("libopus-"+mode.name, func(b *testing.B) {
			dec, _ := NewDecoder(fmtOpus)
			pcm := make([]int16, 0, 5760)
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				pcm, _ = dec.Decode(pcm[:0], ps[i%len(ps)])
			}
		})
		b.Run("pion-"+mode.name, func(b *testing.B) {
			pd := newPionDecoder(b)
			pcm := make([]int16, 0, 5760)
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				pcm = pd.decode(pcm[:0], ps[i%len(ps)])
			}
		})
	}
}
