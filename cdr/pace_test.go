package cdr

import (
	"context"
	"testing"
	"time"
)

// Records that end while a writer waits between deliveries go in one
// delivery: one cursor save (two fsyncs) for all of them, not one each.
func TestWriterDeliversWhatCameMeanwhileAtOnce(t *testing.T) {
	cfg := fileConfig(t)
	cfg.Writers = cfg.Writers[:1]
	pacing, gate := make(chan struct{}, 1), make(chan struct{})
	cfg.pace = func(ctx context.Context, stop <-chan struct{}) {
		pacing <- struct{}{}
		select {
		case <-gate:
		case <-stop:
		case <-ctx.Done():
		}
	}
	r := mustOpen(t, cfg)
	defer r.Close()
	run := r.runners[0]

	r.CallEnded(call("pace", 0))
	select {
	case <-pacing:
	case <-time.After(10 * time.Second):
		t.Fatal("the writer did not wait after delivering a lone record")
	}
	if n := run.saves.Load(); n != 1 {
		t.Fatalf("%d cursor saves for the first record, want 1", n)
	}
	const more = 20
	for i := 1; i <= more; i++ {
		r.CallEnded(call("pace", i)) // each returns fsynced, one by one
	}
	close(gate)
	// The writer's pending count may read 0 before it has taken the new
	// records, so wait for its second save itself, then close and count.
	deadline := time.Now().Add(10 * time.Second)
	for run.saves.Load() < 2 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if n := run.saves.Load(); n != 2 {
		t.Fatalf("%d cursor saves for %d records ended one by one during the wait, want 2", n, more+1)
	}
	if ids := jsonIDs(readJSONL(t, cfg.Writers[0].Dir)); len(ids) != more+1 {
		t.Fatalf("%d records delivered, want %d", len(ids), more+1)
	}
}
