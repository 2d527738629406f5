package app

import (
	"slices"
	"sync"
	"testing"

	"github.com/sbc-project/sbc/b2bua/outcome"
)

// seen is an observer that writes what it is handed to a shared log.
type seen struct {
	name string
	mu   *sync.Mutex
	log  *[]string
}

func (s seen) note(what string, r outcome.CallRecord) {
	s.mu.Lock()
	*s.log = append(*s.log, s.name+" "+what+" "+r.ID)
	s.mu.Unlock()
}

func (s seen) CallStarted(r outcome.CallRecord)  { s.note("started", r) }
func (s seen) CallAnswered(r outcome.CallRecord) { s.note("answered", r) }
func (s seen) CallEnded(r outcome.CallRecord)    { s.note("ended", r) }

// TestObserversInOrder: every record goes to every observer, in the order
// they were added (the CDR recorder first: durable before the others see
// it), and observers added while calls report are safe (-race).
func TestObserversInOrder(t *testing.T) {
	var os observers
	os.CallEnded(outcome.CallRecord{ID: "none"}) // no observer: nothing happens
	var mu sync.Mutex
	var log []string
	os.add(seen{"cdr", &mu, &log})
	os.add(seen{"metrics", &mu, &log})
	r := outcome.CallRecord{ID: "c1"}
	os.CallStarted(r)
	os.CallAnswered(r)
	os.CallEnded(r)
	want := []string{"cdr started c1", "metrics started c1", "cdr answered c1", "metrics answered c1",
		"cdr ended c1", "metrics ended c1"}
	if !slices.Equal(log, want) {
		t.Fatalf("observers saw\n%q\nwant\n%q", log, want)
	}

	var wg sync.WaitGroup
	var other []string
	wg.Go(func() { os.add(seen{"late", &mu, &other}) })
	for range 100 {
		os.CallEnded(outcome.CallRecord{ID: "c2"})
	}
	wg.Wait()
	os.CallEnded(outcome.CallRecord{ID: "c3"})
	if len(other) == 0 || other[len(other)-1] != "late ended c3" {
		t.Fatalf("an observer added later missed the next record: %q", other)
	}
}
