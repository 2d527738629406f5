package admin

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"strings"
	"time"
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

func (s *Server) listCalls(w http.ResponseWriter, _ *http.Request) {
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

func (s *Server) listBans(w http.ResponseWriter, _ *http.Request) {
	if s.opt.Bans == nil {
		notImplemented(w, "bans")
		return
	}
	bans := s.opt.Bans.List()
	if bans == nil {
		bans = []Ban{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"bans": bans})
}

// banRequest is the body of POST /api/v1/bans.
type banRequest struct {
	Addr     string `json:"addr"`     // IP or CIDR
	Reason   string `json:"reason"`   // default "admin"
	Duration string `json:"duration"` // Go duration, e.g. "1h"; "" or "0s": until removed
}

func (s *Server) addBan(w http.ResponseWriter, r *http.Request) {
	if s.opt.Bans == nil {
		notImplemented(w, "bans")
		return
	}
	var req banRequest
	if err := readJSON(r, &req); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	addr, err := canonicalAddr(req.Addr)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	var d time.Duration
	if req.Duration != "" {
		if d, err = time.ParseDuration(req.Duration); err != nil || d < 0 {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("duration %q: want a non-negative duration such as 30m or 24h", req.Duration))
			return
		}
	}
	if req.Reason == "" {
		req.Reason = "admin"
	}
	if err := s.opt.Bans.Add(addr, req.Reason, d); err != nil {
		writeError(w, http.StatusInternalServerError, "ban "+addr+": "+err.Error())
		return
	}
	s.log.Info("ban added by the admin api", "addr", addr, "reason", req.Reason, "duration", d, "remote", r.RemoteAddr)
	writeJSON(w, http.StatusCreated, map[string]string{"banned": addr})
}

// canonicalAddr checks an IP or CIDR and returns it in canonical form.
func canonicalAddr(s string) (string, error) {
	s = strings.TrimSpace(s)
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Masked().String(), nil
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap().String(), nil
	}
	return "", fmt.Errorf("addr %q: want an IP address or CIDR prefix", s)
}

func (s *Server) removeBan(w http.ResponseWriter, r *http.Request) {
	if s.opt.Bans == nil {
		notImplemented(w, "bans")
		return
	}
	addr, err := canonicalAddr(r.PathValue("addr"))
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if !s.opt.Bans.Remove(addr) {
		writeError(w, http.StatusNotFound, "no ban for "+addr)
		return
	}
	s.log.Info("ban removed by the admin api", "addr", addr, "remote", r.RemoteAddr)
	writeJSON(w, http.StatusOK, map[string]string{"unbanned": addr})
}

func (s *Server) listTrunks(w http.ResponseWriter, _ *http.Request) {
	trunks := []Trunk{}
	if s.opt.Trunks != nil {
		if l := s.opt.Trunks(); l != nil {
			trunks = l
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"trunks": trunks})
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
	s.log.Info("drain requested by the admin api", "remote", r.RemoteAddr)
	writeJSON(w, http.StatusAccepted, s.opt.Drain())
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
