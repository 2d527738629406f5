package cdr

import (
	"testing"
	"time"
	"unsafe"

	"github.com/sbc-project/sbc/b2bua/outcome"
)

// The journal keeps a call in progress in an openRecord (the 256-byte
// size class, a Record is in the 512 class) when that gives its record
// back exactly, and the whole record otherwise: a checkpoint writes the
// same frames either way.
func TestOpenCallsKeepRecordsExactly(t *testing.T) {
	if got := unsafe.Sizeof(openRecord{}); got > 256 {
		t.Errorf("an openRecord is %d bytes, more than the 256-byte size class", got)
	}
	started := answeredCall("started")
	started.Ring, started.Answer, started.End = time.Time{}, time.Time{}, time.Time{}
	started.SIPCode, started.Cause, started.Side, started.ACodec, started.BCodec = 0, "", "", "", ""
	started.Media = outcome.Media{}
	answered := answeredCall("answered")
	answered.End, answered.Cause, answered.Side, answered.Media = time.Time{}, "", "", outcome.Media{}
	answered.TransferredFrom, answered.TakenOverFrom, answered.Transcoded = "before", "node-2", true
	ended := answeredCall("ended") // not a call in progress: kept whole
	want := map[string]Record{}
	c := newOpenCalls()
	for _, call := range []outcome.CallRecord{started, answered, ended} {
		r := FromCall(call, "node-1")
		want[r.ID] = r
		c.set(&r)
	}
	if len(c.short) != 2 || len(c.whole) != 1 {
		t.Errorf("%d records kept short and %d whole, want 2 and 1", len(c.short), len(c.whole))
	}
	got := map[string]Record{}
	_ = c.each(func(r *Record) error { got[r.ID] = *r; return nil })
	if len(got) != len(want) {
		t.Fatalf("%d records given back, want %d", len(got), len(want))
	}
	for id, w := range want {
		if got[id] != w {
			t.Errorf("record %s given back as\n%+v\nwant\n%+v", id, got[id], w)
		}
	}
	c.remove("ended")
	c.remove("started")
	if len(c.short) != 1 || len(c.whole) != 0 {
		t.Errorf("after removing two: %d short, %d whole, want 1 and 0", len(c.short), len(c.whole))
	}
	// A call kept whole, then short once its record fits: not in both.
	r := FromCall(ended, "node-1")
	c.set(&r)
	r = FromCall(started, "node-1")
	r.ID = "ended"
	c.set(&r)
	if len(c.short) != 2 || len(c.whole) != 0 {
		t.Errorf("a record kept whole then short: %d short, %d whole, want 2 and 0", len(c.short), len(c.whole))
	}
}
