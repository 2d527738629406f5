package console

import (
	"strconv"
	"testing"
	"time"

	"github.com/sbc-project/sbc/b2bua/outcome"
)

func call(i int, from, to string, cause outcome.Cause, start time.Time) outcome.CallRecord {
	return outcome.CallRecord{ID: "id" + strconv.Itoa(i), ACallID: "a" + strconv.Itoa(i), BCallID: "b" + strconv.Itoa(i),
		FromURI: from, ToURI: to, Start: start, Answer: start, End: start.Add(time.Second), Cause: cause, Side: outcome.SideA, SIPCode: 200}
}

func ids(t *testing.T, r *Recent, q Query) []string {
	t.Helper()
	var out []string
	for _, rec := range r.Search(q) {
		out = append(out, rec.ID)
	}
	return out
}

// TestRecentSearch: each criterion alone and together, newest first, the
// limit, and the ring dropping the oldest once full.
func TestRecentSearch(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 5, 0, 0, 0, time.UTC)
	r := NewRecent(4, "n1")
	r.CallStarted(outcome.CallRecord{ID: "started"})
	r.CallAnswered(outcome.CallRecord{ID: "answered"})
	r.CallEnded(call(1, "sip:alice@x", "sip:1000@pbx", outcome.CauseCallerBye, t0))
	r.CallEnded(call(2, "sip:bob@x", "sip:2000@pbx", outcome.CauseCallerBye, t0.Add(time.Minute)))
	r.CallEnded(call(3, "sip:alice@x", "sip:3000@pbx", outcome.CauseCalleeBye, t0.Add(2*time.Minute)))
	for _, tc := range []struct {
		name string
		q    Query
		want string
	}{
		{"all, newest first", Query{}, "[id3 id2 id1]"},
		{"number in From", Query{Number: "ALICE"}, "[id3 id1]"},
		{"number in To", Query{Number: "2000"}, "[id2]"},
		{"call id of leg a", Query{CallID: "a2"}, "[id2]"},
		{"call id of leg b", Query{CallID: "b3"}, "[id3]"},
		{"record id", Query{CallID: "id1"}, "[id1]"},
		{"call id is exact", Query{CallID: "a"}, "[]"},
		{"cause", Query{Cause: string(outcome.CauseCalleeBye)}, "[id3]"},
		{"disposition", Query{Cause: "answered"}, "[id3 id2 id1]"},
		{"since", Query{Since: t0.Add(time.Minute)}, "[id3 id2]"},
		{"until excludes", Query{Until: t0.Add(time.Minute)}, "[id1]"},
		{"together", Query{Number: "alice", Since: t0.Add(time.Second)}, "[id3]"},
		{"limit", Query{Limit: 2}, "[id3 id2]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := ids(t, r, tc.q); fmtIDs(got) != tc.want {
				t.Errorf("got %v, want %s", got, tc.want)
			}
		})
	}
	r.CallEnded(call(4, "sip:c@x", "sip:4@pbx", outcome.CauseCallerBye, t0))
	r.CallEnded(call(5, "sip:d@x", "sip:5@pbx", outcome.CauseCallerBye, t0))
	r.CallEnded(call(6, "sip:e@x", "sip:6@pbx", outcome.CauseCallerBye, t0))
	if got := fmtIDs(ids(t, r, Query{})); got != "[id6 id5 id4 id3]" {
		t.Errorf("after wrapping: %s, want the 4 newest", got)
	}
	rec := r.Search(Query{CallID: "id6"})[0]
	if rec.NodeID != "n1" || rec.Disposition == "" || rec.HangupCause != string(outcome.CauseCallerBye) {
		t.Errorf("record not built as the CDR's: %+v", rec)
	}
}

func fmtIDs(ids []string) string {
	s := "["
	for i, id := range ids {
		if i > 0 {
			s += " "
		}
		s += id
	}
	return s + "]"
}

// TestTrunkLog: changes kept per trunk, oldest first, bounded.
func TestTrunkLog(t *testing.T) {
	var l TrunkLog
	if l.History("pbx") != nil {
		t.Fatal("history before any change")
	}
	t0 := time.Date(2026, 12, 7, 5, 0, 0, 0, time.UTC)
	for i := range HistoryLen + 5 {
		l.changedAt("pbx", i%2 == 0, t0.Add(time.Duration(i)*time.Second))
	}
	l.Changed("other", false)
	h := l.History("pbx")
	if len(h) != HistoryLen || !h[0].At.Equal(t0.Add(5*time.Second)) || h[0].Up {
		t.Fatalf("history: %d changes, first %+v; want %d from the 6th (down)", len(h), h[0], HistoryLen)
	}
	if o := l.History("other"); len(o) != 1 || o[0].Up {
		t.Errorf("other trunk: %+v", o)
	}
	h[0].Up = true
	if l.History("pbx")[0].Up {
		t.Error("History shares its slice with the log")
	}
}
