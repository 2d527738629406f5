package media

import (
	"sync/atomic"
	"testing"
)

// BenchmarkPlaySend is the cost of one packet of a playback: the RTP
// header, the stream's sequence and timestamp, and the send toward a
// plain side (on loopback, to a peer that never reads).
func BenchmarkPlaySend(b *testing.B) {
	m := newTestManager(b, 4, loopback, nil)
	s := m.NewSession("bench-play")
	defer s.Close()
	a := newPeer(b, true)
	if _, err := s.Offer(SideA, a.sdp()); err != nil {
		b.Fatal(err)
	}
	if _, err := s.AnswerLocally(SideA); err != nil {
		b.Fatal(err)
	}
	s.mu.Lock()
	_, fl, err := s.playTarget(SideA)
	stop := s.stopChan()
	s.mu.Unlock()
	if err != nil {
		b.Fatal(err)
	}
	var sent atomic.Uint64
	send := s.sender(fl, 0, &sent, stop)
	payload := make([]byte, 160)
	go drain(a.rtp)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if !send(payload, 160) {
			b.Fatal("send refused")
		}
	}
}
