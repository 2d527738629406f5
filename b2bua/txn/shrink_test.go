package txn

import (
	"reflect"
	"testing"
)

// TestShrunkAfterBurst: a transaction map that held a burst is rebuilt
// once it falls to an eighth of that size, with its entries kept, and its
// peak starts again from there; a map that never grew past shrinkFrom,
// or that is still above an eighth of its peak, is left as it is.
func TestShrunkAfterBurst(t *testing.T) {
	m := map[int]int{}
	peak := 0
	for i := range 4096 {
		m[i] = i
		peak = max(peak, len(m))
	}
	same := func(a, b map[int]int) bool {
		return reflect.ValueOf(a).UnsafePointer() == reflect.ValueOf(b).UnsafePointer()
	}
	for i := range 4096 - 513 {
		delete(m, i)
		if got := shrunk(m, &peak); !same(got, m) {
			t.Fatalf("rebuilt at %d entries of a peak of 4096", len(m))
		}
	}
	delete(m, 4096-513)
	got := shrunk(m, &peak)
	if same(got, m) {
		t.Fatalf("not rebuilt at %d entries of a peak of 4096", len(m))
	}
	if len(got) != 512 || peak != 512 {
		t.Fatalf("rebuilt map has %d entries, peak %d; want 512 and 512", len(got), peak)
	}
	for i := 4096 - 512; i < 4096; i++ {
		if got[i] != i {
			t.Fatalf("entry %d lost in the rebuild", i)
		}
	}

	small := map[int]int{}
	speak := 0
	for i := range shrinkFrom - 1 {
		small[i] = i
		speak = max(speak, len(small))
	}
	for i := range shrinkFrom - 2 {
		delete(small, i)
	}
	if got := shrunk(small, &speak); !same(got, small) {
		t.Fatalf("a map of at most %d entries was rebuilt", shrinkFrom-1)
	}
}
