package wrtc

import (
	"fmt"
	"testing"

	"github.com/pion/srtp/v3"
)

// BenchmarkDecryptSpread is BenchmarkDecryptPath taken in turn by the
// demuxes of many transports, as a poll loop serving hundreds of calls
// does: each packet finds its transport's state (demux, keys, route
// table) as a whole round of other calls left the CPU caches, so how
// many cache lines the per-packet path reads shows in ns/op, which one
// transport's hot state hides. AES-128-GCM, 160-byte payload.
func BenchmarkDecryptSpread(b *testing.B) {
	for _, n := range []int{1, 500} {
		b.Run(fmt.Sprintf("transports-%d", n), func(b *testing.B) {
			feeds := make([]*decryptFeed, n)
			for i := range feeds {
				feeds[i] = newDecryptFeed(b, srtp.ProtectionProfileAeadAes128Gcm, 64)
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				f := feeds[i]
				if f.next == len(f.pkts) {
					b.StopTimer()
					f.refill(b)
					b.StartTimer()
				}
				f.k.d.handle(f.pkts[f.next])
				f.next++
				if i++; i == n {
					i = 0
				}
			}
			var in uint64
			for _, f := range feeds {
				in += f.k.c.snapshot().RTPIn
			}
			if in < uint64(b.N) {
				b.Fatalf("delivered %d of %d", in, b.N)
			}
		})
	}
}
