package media

import (
	"testing"
)

// BenchmarkSessionSetup is a signaling-only call's media: a session, an
// offer from A, an answer from B, and Close, on a range with pairs in
// quarantine as at a steady call rate.
func BenchmarkSessionSetup(b *testing.B) {
	m := newTestManager(b, 64, loopback, nil)
	offer, answer := sipSDP("127.0.0.1", 40000), sipSDP("127.0.0.1", 40100)
	b.ReportAllocs()
	for b.Loop() {
		s := m.NewSession("call-bench")
		if _, err := s.Offer(SideA, offer); err != nil {
			b.Fatalf("Offer: %v", err)
		}
		if _, err := s.Answer(SideB, answer); err != nil {
			b.Fatalf("Answer: %v", err)
		}
		s.Close()
	}
}
