package console

import (
	"strings"
	"sync"
	"time"

	"github.com/sbc-project/sbc/b2bua/outcome"
	"github.com/sbc-project/sbc/cdr"
)

// DefaultRecent is how many records Recent keeps when made with 0.
const DefaultRecent = 1000

// MaxLimit bounds how many records one Search returns.
const MaxLimit = 1000

// Recent keeps the call records of the last calls this node ended, newest
// last, up to its size: the console's CDR search reads it. It implements
// outcome.Observer (only CallEnded keeps anything) and is safe for
// concurrent use. Records written before the node started are not in it:
// they are in the CDR writers' files and tables.
type Recent struct {
	node string

	mu   sync.Mutex
	ring []cdr.Record // a circular buffer of cap size
	next int          // where the next record goes once the ring is full
}

var _ outcome.Observer = (*Recent)(nil)

// NewRecent keeps up to size records (0: DefaultRecent) of node nodeID.
func NewRecent(size int, nodeID string) *Recent {
	if size <= 0 {
		size = DefaultRecent
	}
	return &Recent{node: nodeID, ring: make([]cdr.Record, 0, size)}
}

// CallStarted does nothing: only ended calls have a record.
func (r *Recent) CallStarted(outcome.CallRecord) {}

// CallAnswered does nothing: only ended calls have a record.
func (r *Recent) CallAnswered(outcome.CallRecord) {}

// CallEnded keeps the call's record, dropping the oldest when full.
func (r *Recent) CallEnded(c outcome.CallRecord) {
	rec := cdr.FromCall(c, r.node)
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.ring) < cap(r.ring) {
		r.ring = append(r.ring, rec)
		return
	}
	r.ring[r.next] = rec
	r.next = (r.next + 1) % len(r.ring)
}

// Query selects records; a zero field selects all.
type Query struct {
	// Number matches a record whose From or To URI contains it (the user
	// part and the host alike), without case.
	Number string
	// CallID matches the record's id or either leg's Call-ID exactly.
	CallID string
	// Cause matches the hangup cause or the disposition, without case.
	Cause string
	// Since and Until bound the start time: Since <= start < Until.
	Since, Until time.Time
	// Limit bounds the answer (0 or more than MaxLimit: MaxLimit).
	Limit int
}

// Search returns the records q selects, newest first.
func (r *Recent) Search(q Query) []cdr.Record {
	limit := q.Limit
	if limit <= 0 || limit > MaxLimit {
		limit = MaxLimit
	}
	q.Number = strings.ToLower(q.Number)
	out := []cdr.Record{}
	r.mu.Lock()
	defer r.mu.Unlock()
	n := len(r.ring)
	for i := 0; i < n && len(out) < limit; i++ {
		// Newest first: the one before next, backwards around the ring.
		rec := &r.ring[(r.next-1-i+2*n)%n]
		if q.matches(rec) {
			out = append(out, *rec)
		}
	}
	return out
}

func (q *Query) matches(rec *cdr.Record) bool {
	if q.Number != "" && !strings.Contains(strings.ToLower(rec.FromURI), q.Number) &&
		!strings.Contains(strings.ToLower(rec.ToURI), q.Number) {
		return false
	}
	if q.CallID != "" && q.CallID != rec.ID && q.CallID != rec.ACallID && q.CallID != rec.BCallID {
		return false
	}
	if q.Cause != "" && !strings.EqualFold(q.Cause, rec.HangupCause) && !strings.EqualFold(q.Cause, rec.Disposition) {
		return false
	}
	start := rec.StartTime.Time()
	if !q.Since.IsZero() && start.Before(q.Since) {
		return false
	}
	if !q.Until.IsZero() && !start.Before(q.Until) {
		return false
	}
	return true
}
