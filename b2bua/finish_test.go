package b2bua

import (
	"testing"
	"time"

	"github.com/ghettovoice/gosip/sip"

	"github.com/sbc-project/sbc/b2bua/outcome"
)

// stalledRecords is an observer whose CallEnded waits to be released, as
// a call waits for a stalled CDR disk.
type stalledRecords struct {
	entered, release chan struct{}
}

func (r *stalledRecords) CallStarted(outcome.CallRecord)  {}
func (r *stalledRecords) CallAnswered(outcome.CallRecord) {}
func (r *stalledRecords) CallEnded(outcome.CallRecord) {
	close(r.entered)
	<-r.release
}

// A request for a call whose loop has ended, while the call still waits
// for its record, is answered 481 at once: no event is queued that the
// call will never handle (the request would wait for the layer's 500).
func TestCallFinishingRefusesEvents(t *testing.T) {
	h := newCallHarness(t, nil)
	obs := &stalledRecords{entered: make(chan struct{}), release: make(chan struct{})}
	h.s.hooks.Observer = obs
	tag, _ := h.answered(t)
	if res := h.inDialog(t, "BYE", 2, tag, "").final(t); res.StatusCode() != 200 {
		t.Fatalf("caller's BYE: %d", res.StatusCode())
	}
	h.txs.next(t, sip.BYE).answer(200, "")
	select {
	case <-obs.entered:
	case <-time.After(wait):
		t.Fatal("the call did not finish")
	}
	defer close(obs.release)
	if res := h.inDialog(t, "INFO", 3, tag, "").final(t); res.StatusCode() != 481 {
		t.Fatalf("INFO to a finishing call: %d, want 481", res.StatusCode())
	}
}
