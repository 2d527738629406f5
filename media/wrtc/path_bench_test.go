//go:build unix

package wrtc

import (
	"context"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/srtp/v3"
)

// BenchmarkICEPathReceive: SRTP from a real pion/ice peer, over loopback,
// through the transport's whole receive path (the Mux, and whatever of
// pion's ICE it crosses) to a Sink. The transport is keyed by hand (no
// DTLS). The peer's send cost is in the figure too; it is the same for
// every version of this package, so the differences are the receive
// path's. At most 32 packets are in flight, so nothing is dropped.
// cpu-ns/op is the process's CPU time (user and system) per packet: with
// two cores, goroutine hand-offs overlap and hide in ns/op.
func BenchmarkICEPathReceive(b *testing.B) {
	m := newTestMux(b, false)
	tr := newTestTransport(b, m, func(c *Config) { c.HandshakeTimeout = time.Hour })
	peer, err := ice.NewAgentWithOptions(
		ice.WithNetworkTypes([]ice.NetworkType{ice.NetworkTypeUDP4}),
		ice.WithCandidateTypes([]ice.CandidateType{ice.CandidateTypeHost}),
		ice.WithMulticastDNSMode(ice.MulticastDNSModeDisabled),
		ice.WithIncludeLoopback(),
		ice.WithIPFilter(func(ip net.IP) bool { return ip.IsLoopback() }),
	)
	if err != nil {
		b.Fatal(err)
	}
	defer peer.GracefulClose()
	gathered := make(chan struct{})
	if err := peer.OnCandidate(func(c ice.Candidate) {
		if c == nil {
			close(gathered)
		}
	}); err != nil {
		b.Fatal(err)
	}
	if err := peer.GatherCandidates(); err != nil {
		b.Fatal(err)
	}
	<-gathered
	ufrag, pwd, err := peer.GetLocalUserCredentials()
	if err != nil {
		b.Fatal(err)
	}
	if _, err := tr.SetRemote(Remote{Ufrag: ufrag, Pwd: pwd, Fingerprints: []string{someFingerprint}, Setup: "active"}, false); err != nil {
		b.Fatal(err)
	}
	for _, raw := range tr.Local().Candidates {
		c, err := ice.UnmarshalCandidate(raw)
		if err != nil {
			b.Fatal(err)
		}
		if err := peer.AddRemoteCandidate(c); err != nil {
			b.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	local := tr.Local()
	conn, err := peer.Dial(ctx, local.Ufrag, local.Pwd)
	if err != nil {
		b.Fatal(err)
	}

	f := newDecryptFeed(b, srtp.ProtectionProfileAeadAes128Gcm, 4096)
	tr.d.rx.Store(f.k.d.rx.Load())
	const window = 32
	sink := newAtomicSink(window)
	tr.SetRoutes([]Route{{SSRCs: []uint32{testSSRC}, Sink: sink}})
	// Until the path carries a packet (pion may still be settling).
	for sink.rtp.Load() == 0 && ctx.Err() == nil {
		f.refill(b)
		for _, p := range f.pkts[:8] {
			_, _ = conn.Write(p)
		}
		time.Sleep(time.Millisecond)
	}
	f.refill(b)
	sink.drain(b, window) // the warm-up's tokens come back, extra ones are not kept
	for range window {
		sink.tokens <- struct{}{}
	}
	start := sink.rtp.Load()
	cpu0 := processCPU(b)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		<-sink.tokens
		if f.next == len(f.pkts) {
			b.StopTimer()
			f.refill(b)
			b.StartTimer()
		}
		if _, err := conn.Write(f.pkts[f.next]); err != nil {
			b.Fatal(err)
		}
		f.next++
	}
	sink.drain(b, window)
	b.StopTimer()
	b.ReportMetric(float64(processCPU(b)-cpu0)/float64(b.N), "cpu-ns/op")
	if got := sink.rtp.Load() - start; got < uint64(b.N) { // more: the warm-up's stragglers
		b.Fatalf("delivered %d of %d", got, b.N)
	}
}

// processCPU is the process's user and system CPU time so far, in ns.
func processCPU(tb testing.TB) int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
