package cdr

import (
	"testing"
	"time"

	"github.com/sbc-project/sbc/b2bua/outcome"
)

// TestTakenOverLeftovers (issue 19): of the calls a node left up when it
// died, those another node took over (and records) get no sbc_restart
// record at its restart, and do not come back at the next one; the
// others get theirs, once.
func TestTakenOverLeftovers(t *testing.T) {
	cfg := fileConfig(t)
	r := mustOpen(t, cfg)
	for _, id := range []string{"taken", "kept"} {
		up := answeredCall(id)
		up.Start, up.Ring, up.Answer = time.Now().Add(-10*time.Second), time.Now().Add(-9*time.Second), time.Now().Add(-8*time.Second)
		up.End, up.Cause, up.Side = time.Time{}, "", ""
		r.CallStarted(up)
		r.CallAnswered(up)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	asked := 0
	cfg.TakenOver = func() (map[string]bool, error) { asked++; return map[string]bool{"taken": true}, nil }
	for range 2 { // the second restart must find neither call open
		r = mustOpen(t, cfg)
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if asked != 1 {
		t.Errorf("TakenOver asked %d times, want once (no call was left up the second time)", asked)
	}
	recs := readJSONL(t, cfg.Writers[0].Dir)
	if len(recs) != 1 || recs[0].ID != "kept" || recs[0].HangupCause != string(outcome.CauseSBCRestart) {
		t.Fatalf("records %+v, want kept's sbc_restart only", recs)
	}
}
