package admin

import "net/http"

// timeline answers GET /api/v1/calls/{id}/timeline: the per-call
// timeline of a call in progress or of one of the last ended ones, by
// CDR id or either leg's Call-ID; 404 once it has aged out.
func (s *Server) timeline(w http.ResponseWriter, r *http.Request) {
	if s.opt.Timeline == nil {
		notImplemented(w, "timelines")
		return
	}
	id := r.PathValue("id")
	t, ok := s.opt.Timeline(id)
	if !ok {
		writeError(w, http.StatusNotFound, "no timeline for call "+id)
		return
	}
	writeJSON(w, http.StatusOK, t)
}
