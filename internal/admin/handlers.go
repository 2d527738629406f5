package admin

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// maxBody bounds a request body.
const maxBody = 64 << 10

// errorBody is every error answer: {"error": "...", "problems": [...]}.
type errorBody struct {
	Error    string   `json:"error"`
	Problems []string `json:"problems,omitempty"`
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v) // the client went away: nothing to do
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, errorBody{Error: msg})
}

func notImplemented(w http.ResponseWriter, what string) {
	writeError(w, http.StatusNotImplemented, what+" are not available in this build (the feature is not wired yet)")
}

// readJSON decodes a bounded JSON body into v, refusing unknown fields.
func readJSON(r *http.Request, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("request body: %w", err)
	}
	if dec.More() {
		return errors.New("request body: data after the JSON object")
	}
	return nil
}

// readNoFields accepts an empty body or an empty JSON object, for the
// endpoints that take no parameters.
func readNoFields(r *http.Request) error {
	b, err := io.ReadAll(io.LimitReader(r.Body, maxBody))
	if err != nil {
		return fmt.Errorf("request body: %w", err)
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&struct{}{}); err != nil {
		return fmt.Errorf("request body: want none or {}: %w", err)
	}
	return nil
}

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) readyz(w http.ResponseWriter, _ *http.Request) {
	rd := Readiness{Ready: true, Checks: []Check{}}
	if s.opt.Ready != nil {
		rd = s.opt.Ready()
	}
	code := http.StatusOK
	if !rd.Ready {
		code = http.StatusServiceUnavailable
	}
	writeJSON(w, code, rd)
}

func (s *Server) listCalls(w http.ResponseWriter, r *http.Request) {
	switch scope := r.URL.Query().Get("scope"); scope {
	case "", "node":
	case "cluster":
		s.listClusterCalls(w, r)
		return
	default:
		writeError(w, http.StatusBadRequest, "scope "+strconv.Quote(scope)+": want node (the default) or cluster")
		return
	}
	if s.opt.Calls == nil {
		notImplemented(w, "calls")
		return
	}
	calls := s.opt.Calls.Calls()
	if calls == nil {
		calls = []Call{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"calls": calls})
}

// listClusterCalls lists the calls of every node of the cluster.
func (s *Server) listClusterCalls(w http.ResponseWriter, r *http.Request) {
	if s.opt.ClusterCalls == nil {
		writeError(w, http.StatusNotFound, "this node is not in a cluster (no cluster section in its configuration)")
		return
	}
	calls, err := s.opt.ClusterCalls(r.Context())
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, "other nodes' calls cannot be read: "+err.Error())
		return
	}
	if calls == nil {
		calls = []Call{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"calls": calls})
}

// findCall returns the call whose id or either leg's Call-ID is id.
func findCall(calls []Call, id string) (Call, bool) {
	for _, c := range calls {
		if c.ID == id {
			return c, true
		}
		for _, l := range c.Legs {
			if l.CallID == id {
				return c, true
			}
		}
	}
	return Call{}, false
}

func (s *Server) getCall(w http.ResponseWriter, r *http.Request) {
	if s.opt.Calls == nil {
		notImplemented(w, "calls")
		return
	}
	c, ok := findCall(s.opt.Calls.Calls(), r.PathValue("id"))
	if !ok {
		writeError(w, http.StatusNotFound, "no call "+r.PathValue("id"))
		return
	}
	writeJSON(w, http.StatusOK, c)
}

func (s *Server) hangup(w http.ResponseWriter, r *http.Request) {
	if s.opt.Calls == nil {
		notImplemented(w, "calls")
		return
	}
	id := r.PathValue("id")
	if !s.opt.Calls.Hangup(id) {
		writeError(w, http.StatusNotFound, "no call "+id)
		return
	}
	s.log.Info("call hung up by the admin api", "id", id, "remote", r.RemoteAddr)
	writeJSON(w, http.StatusOK, map[string]string{"hung_up": id})
}

func (s *Server) listRegistrations(w http.ResponseWriter, _ *http.Request) {
	regs := []Registration{}
	if s.opt.Registrations != nil {
		if l := s.opt.Registrations.List(); l != nil {
			regs = l
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"registrations": regs})
}

func (s *Server) listTrunks(w http.ResponseWriter, _ *http.Request) {
	trunks := []Trunk{}
	if s.opt.Trunks != nil {
		if l := s.opt.Trunks(); l != nil {
			trunks = l
		}
		for i := range trunks {
			if trunks[i].History == nil {
				trunks[i].History = []TrunkChange{}
			}
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"trunks": trunks})
}

func (s *Server) cluster(w http.ResponseWriter, r *http.Request) {
	if s.opt.Cluster == nil {
		writeError(w, http.StatusNotFound, "this node is not in a cluster (no cluster section in its configuration)")
		return
	}
	writeJSON(w, http.StatusOK, s.opt.Cluster(r.Context()))
}

func (s *Server) config(w http.ResponseWriter, _ *http.Request) {
	if s.opt.Config == nil {
		notImplemented(w, "config")
		return
	}
	writeJSON(w, http.StatusOK, s.opt.Config())
}

func (s *Server) reload(w http.ResponseWriter, r *http.Request) {
	if s.opt.Reload == nil {
		notImplemented(w, "reload")
		return
	}
	if err := readNoFields(r); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	s.log.Info("reload requested by the admin api", "remote", r.RemoteAddr)
	res, err := s.opt.Reload()
	if err != nil {
		writeJSON(w, http.StatusUnprocessableEntity, errorBody{
			Error:    "configuration refused; the running one stays",
			Problems: strings.Split(strings.TrimSpace(err.Error()), "\n"),
		})
		return
	}
	if res.Applied == nil {
		res.Applied = []string{}
	}
	if res.RestartRequired == nil {
		res.RestartRequired = []string{}
	}
	writeJSON(w, http.StatusOK, res)
}

func (s *Server) drain(w http.ResponseWriter, r *http.Request) {
	if s.opt.Drain == nil {
		notImplemented(w, "drain")
		return
	}
	if err := readNoFields(r); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	switch m := r.URL.Query().Get("migrate"); m {
	case "", "false":
	case "true":
		s.migrate(w, r)
		return
	default:
		writeError(w, http.StatusBadRequest, "migrate: want true or false, not "+strconv.Quote(m))
		return
	}
	s.log.Info("drain requested by the admin api", "remote", r.RemoteAddr)
	writeJSON(w, http.StatusAccepted, s.opt.Drain())
}

// migrate is a drain that hands the calls over to the cluster at once.
func (s *Server) migrate(w http.ResponseWriter, r *http.Request) {
	if s.opt.Migrate == nil {
		notImplemented(w, "drain with migration")
		return
	}
	s.log.Info("drain with migration requested by the admin api", "remote", r.RemoteAddr)
	st, err := s.opt.Migrate()
	if err != nil {
		writeError(w, http.StatusConflict, err.Error())
		return
	}
	writeJSON(w, http.StatusAccepted, st)
}

func (s *Server) listTraces(w http.ResponseWriter, _ *http.Request) {
	if s.opt.Traces == nil {
		notImplemented(w, "traces")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"targets": s.opt.Traces.List()})
}

// traceRequest is the body of POST /api/v1/trace.
type traceRequest struct {
	Target string `json:"target"` // a user name or number
}

func (s *Server) addTrace(w http.ResponseWriter, r *http.Request) {
	if s.opt.Traces == nil {
		notImplemented(w, "traces")
		return
	}
	var req traceRequest
	if err := readJSON(r, &req); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if !s.opt.Traces.Add(req.Target) {
		writeError(w, http.StatusBadRequest, "target: want a user name or number")
		return
	}
	s.log.Info("call tracing on", "target", req.Target, "remote", r.RemoteAddr)
	writeJSON(w, http.StatusCreated, map[string]any{"targets": s.opt.Traces.List()})
}

func (s *Server) removeTrace(w http.ResponseWriter, r *http.Request) {
	if s.opt.Traces == nil {
		notImplemented(w, "traces")
		return
	}
	target := r.PathValue("target")
	if !s.opt.Traces.Remove(target) {
		writeError(w, http.StatusNotFound, "no trace for "+target)
		return
	}
	s.log.Info("call tracing off", "target", target, "remote", r.RemoteAddr)
	writeJSON(w, http.StatusOK, map[string]any{"targets": s.opt.Traces.List()})
}
