package b2bua

import (
	"testing"

	"github.com/ghettovoice/gosip/sip"

	"github.com/sbc-project/sbc/b2bua/timeline"
)

// BenchmarkCall runs whole calls through the call state machine, one after
// another, with the fake transaction layer and media of the call tests:
// INVITE, 200 from the callee, ACKs, BYE from the caller and its 200, the
// record. It measures what a call costs the B2BUA's core (allocations,
// CPU), without the wire:
//
//	go test -run '^$' -bench Call -benchmem ./b2bua/
func BenchmarkCall(b *testing.B) {
	h := newCallHarness(b, nil)
	b.ReportAllocs()
	for b.Loop() {
		tag, _ := h.answered(b)
		if res := h.inDialog(b, "BYE", 2, tag, "").final(b); res.StatusCode() != 200 {
			b.Fatalf("caller's BYE: %d", res.StatusCode())
		}
		h.txs.next(b, sip.BYE).answer(200, "")
		h.rec.next(b)
	}
}

// BenchmarkCallTimeline is BenchmarkCall with every call's timeline kept
// (the default of internal/app: timeline.keep 1000, max_events 200): the
// timeline's start, policy, route, end and the store's ring. The fake
// transaction layer bypasses the tap, so the SIP messages' events are
// not in it: timeline's BenchmarkStoreSIP measures one (some 20 a call).
func BenchmarkCallTimeline(b *testing.B) {
	h := newCallHarness(b, nil)
	h.s.hooks.Timelines = timeline.NewStore(timeline.Spec{Keep: timeline.DefaultKeep, MaxEvents: timeline.DefaultMaxEvents})
	b.ReportAllocs()
	for b.Loop() {
		tag, _ := h.answered(b)
		if res := h.inDialog(b, "BYE", 2, tag, "").final(b); res.StatusCode() != 200 {
			b.Fatalf("caller's BYE: %d", res.StatusCode())
		}
		h.txs.next(b, sip.BYE).answer(200, "")
		h.rec.next(b)
	}
}
