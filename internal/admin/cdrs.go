package admin

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// CDRQuery selects recent call records (GET /api/v1/cdrs); a zero field
// selects all.
type CDRQuery struct {
	Number string    // a part of the From or To URI (user or host), without case
	CallID string    // the record's id or either leg's Call-ID, exactly
	Cause  string    // the hangup_cause or the disposition, without case
	Since  time.Time // start_time at or after
	Until  time.Time // start_time before
	Limit  int       // at most this many, newest first: 1 to MaxCDRs
}

// MaxCDRs bounds one answer of GET /api/v1/cdrs; DefaultCDRs is its
// default limit.
const (
	MaxCDRs     = 1000
	DefaultCDRs = 100
)

var cdrParams = []string{"number", "call_id", "cause", "since", "until", "limit"}

// parseCDRQuery reads the query string, naming the parameter it refuses.
func parseCDRQuery(r *http.Request) (CDRQuery, string) {
	v := r.URL.Query()
	for k := range v {
		if !slices.Contains(cdrParams, k) {
			return CDRQuery{}, "unknown parameter " + strconv.Quote(k) + ": want " + strings.Join(cdrParams, ", ")
		}
	}
	q := CDRQuery{Number: v.Get("number"), CallID: v.Get("call_id"), Cause: v.Get("cause"), Limit: DefaultCDRs}
	for _, p := range []struct {
		name string
		to   *time.Time
	}{{"since", &q.Since}, {"until", &q.Until}} {
		if s := v.Get(p.name); s != "" {
			t, err := time.Parse(time.RFC3339Nano, s)
			if err != nil {
				return CDRQuery{}, p.name + " " + strconv.Quote(s) + ": want an RFC 3339 time such as 2026-12-07T05:00:00Z"
			}
			*p.to = t
		}
	}
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > MaxCDRs {
			return CDRQuery{}, "limit " + strconv.Quote(s) + ": want 1 to " + strconv.Itoa(MaxCDRs)
		}
		q.Limit = n
	}
	return q, ""
}

func (s *Server) listCDRs(w http.ResponseWriter, r *http.Request) {
	if s.opt.CDRs == nil {
		notImplemented(w, "recent CDRs")
		return
	}
	q, bad := parseCDRQuery(r)
	if bad != "" {
		writeError(w, http.StatusBadRequest, bad)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"cdrs": s.opt.CDRs(q)})
}
