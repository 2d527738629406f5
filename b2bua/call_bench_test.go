package b2bua

import (
	"testing"

	"github.com/ghettovoice/gosip/sip"
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
