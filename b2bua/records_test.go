package b2bua

import (
	"testing"
	"time"

	"github.com/ghettovoice/gosip/sip"

	"github.com/sbc-project/sbc/b2bua/sipmsg"
)

// closingMedia is a media session that reports its Close.
type closingMedia struct {
	fakeMedia
	closed chan struct{}
}

func (m closingMedia) Close() { close(m.closed) }

// A call gives its media ports back once its media has stopped, before
// its record is durable: a record waiting for a slow fsync no longer
// holds two port pairs (records.go).
func TestPortsBackBeforeRecordIsDurable(t *testing.T) {
	h := newCallHarness(t, nil)
	closed := make(chan struct{})
	h.s.hooks.Media = func(string) (MediaSession, error) { return closingMedia{closed: closed}, nil }
	obs := &stalledRecords{entered: make(chan struct{}), release: make(chan struct{})}
	h.s.hooks.Observer = obs
	defer close(obs.release)
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
	select {
	case <-closed:
	default:
		t.Fatal("the media session is still open while the call waits for its record")
	}
}

// While more ended calls wait for their records than the bound allows, a
// new INVITE gets 503 with Retry-After at once; once the records are
// durable, calls are taken again (records before resources, records.go).
func TestRefusedWhileRecordsPending(t *testing.T) {
	h := newCallHarness(t, nil)
	h.s.maxPending = 1
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
	res := h.call(t).final(t)
	if res.StatusCode() != 503 {
		t.Fatalf("new call while a record waits: %d, want 503", res.StatusCode())
	}
	if ra, ok := sipmsg.HeaderInt(res, "Retry-After"); !ok || ra < 1 {
		t.Fatalf("503 without Retry-After: %q", res.String())
	}
	close(obs.release)
	// The record is durable once CallEnded returns; the count falls right
	// after it, so wait for the refusal to stop (bounded).
	deadline := time.Now().Add(wait)
	for h.s.pending.n.Load() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the call never left the waiting records")
		}
		time.Sleep(time.Millisecond)
	}
	h.s.hooks.Observer = h.rec
	h.call(t)
	h.txs.next(t, sip.INVITE) // routed to the trunk: taken
}
