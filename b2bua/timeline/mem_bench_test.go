package timeline

import (
	"runtime"
	"strconv"
	"testing"
	"time"
)

// typicalCall records what a one-minute WebRTC call to a trunk leaves on
// its timeline: the SIP of both legs (INVITE, 100, 180, 200, ACK, BYE,
// 200 on each), the policy decision and the route, ICE, DTLS, latching,
// first RTP each way, a digit, a quality sample per direction every 5 s,
// and the end. With maxEvents below that, the timeline runs over.
func typicalCall(s *Store, i int) *Timeline {
	id := "a-" + strconv.Itoa(i) + "@example.com"
	t := s.Start(id, "cdr-"+strconv.Itoa(i), time.Now(), false)
	s.Alias(t, "b-"+strconv.Itoa(i), LegB)
	for _, m := range []struct {
		leg    Leg
		dir    Dir
		method string
		code   int
	}{
		{LegA, DirIn, "INVITE", 0}, {LegA, DirOut, "INVITE", 100},
		{LegB, DirOut, "INVITE", 0}, {LegB, DirIn, "INVITE", 100}, {LegB, DirIn, "INVITE", 180},
		{LegA, DirOut, "INVITE", 180}, {LegB, DirIn, "INVITE", 200}, {LegB, DirOut, "ACK", 0},
		{LegA, DirOut, "INVITE", 200}, {LegA, DirIn, "ACK", 0},
	} {
		t.SIP(m.leg, m.dir, m.method, m.code, nil)
	}
	t.Add(Event{Kind: KindPolicy, What: "admit"})
	t.Add(Event{Kind: KindRoute, What: "attempt", Shape: ShapeAttempt, S: [3]string{"pbx", "sip:1000@10.0.0.1"}, N: [4]float64{1}})
	for _, what := range []string{"ice-nominated", "dtls-start", "dtls-connected", "latched", "first-rtp", "first-rtp"} {
		t.Add(Event{Kind: KindMedia, What: what, Shape: ShapeDTLS, S: [3]string{"a", "passive", "SRTP_AEAD_AES_256_GCM"}})
	}
	t.Add(Event{Kind: KindMedia, What: "dtmf", Shape: ShapeDTMF, S: [3]string{"a", Digit('5')}, N: [4]float64{120}})
	t.SetSampler(func() (Sample, Sample, bool) { return Sample{Packets: 3000}, Sample{Packets: 3000}, true })
	for range 12 {
		t.Quality()
	}
	t.SIP(LegA, DirIn, "BYE", 0, nil)
	t.SIP(LegA, DirOut, "BYE", 200, nil)
	t.SIP(LegB, DirOut, "BYE", 0, nil)
	t.SIP(LegB, DirIn, "BYE", 200, nil)
	t.SetSampler(nil)
	t.Add(Event{Kind: KindEnd, What: "end", Shape: ShapeEnd, S: [3]string{"caller_bye", "a"}, N: [4]float64{200}})
	return t
}

// heapOf returns the live heap after a GC.
func heapOf() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// BenchmarkTimelines1000 measures the heap the timelines of 1,000 ended
// calls hold in a store that keeps 1,000 (bytes/call), for a typical
// one-minute WebRTC call (51 events and samples) and for calls that ran
// their timeline full at the default max_events (200 events, all with
// details, and 200 quality samples). BENCHMARKS.md and the
// README state the bound from it.
func BenchmarkTimelines1000(b *testing.B) {
	const calls = 1000
	for _, tt := range []struct {
		name   string
		events int // quality samples more than typical: fills the timeline
	}{{"typical", 0}, {"full", DefaultMaxEvents}} {
		b.Run(tt.name, func(b *testing.B) {
			var perCall, events float64
			for b.Loop() {
				before := heapOf()
				s := NewStore(Spec{Keep: calls, MaxEvents: DefaultMaxEvents})
				for i := range calls {
					t := typicalCall(s, i)
					if tt.events > 0 {
						// The worst case: every event with details, and
						// as many quality samples, kept apart.
						t.SetSampler(func() (Sample, Sample, bool) { return Sample{Packets: 3000}, Sample{Packets: 3000}, true })
						for range tt.events {
							t.Add(Event{Kind: KindMedia, What: "relatched", Shape: ShapeLatch, S: [3]string{"a", "192.0.2.1:4000"}})
							t.Quality()
						}
					}
					s.End(t, time.Now())
				}
				after := heapOf()
				perCall = float64(after-before) / calls
				events = float64(len(s.ended[0].events.items) + len(s.ended[0].samples.items))
				runtime.KeepAlive(s)
			}
			b.ReportMetric(perCall, "bytes/call")
			b.ReportMetric(events, "events/call")
		})
	}
}

// BenchmarkStoreSIP is the cost the tap adds to every SIP message of a
// call: the call found by Call-ID, one event appended.
func BenchmarkStoreSIP(b *testing.B) {
	s := NewStore(Spec{Keep: 1000, MaxEvents: DefaultMaxEvents})
	for i := range 1000 {
		s.Start("a-"+strconv.Itoa(i), "cdr-"+strconv.Itoa(i), time.Now(), false)
	}
	b.ReportAllocs()
	for b.Loop() {
		s.SIP("a-500", DirIn, "INVITE", 200, nil)
	}
}
