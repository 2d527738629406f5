package admin

import (
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"time"
)

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
	// Force bans even a range that covers a trunk or a trusted source.
	Force bool `json:"force"`
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
	p, err := banPrefix(req.Addr)
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
	if code, err := s.checkBan(r, p, req.Force); err != nil {
		writeError(w, code, err.Error())
		return
	}
	if req.Reason == "" {
		req.Reason = "admin"
	}
	addr := prefixText(p)
	if err := s.opt.Bans.Add(addr, req.Reason, d); err != nil {
		writeError(w, http.StatusInternalServerError, "ban "+addr+": "+err.Error())
		return
	}
	s.log.Info("ban added by the admin api", "addr", addr, "reason", req.Reason, "duration", d, "force", req.Force,
		"remote", r.RemoteAddr)
	writeJSON(w, http.StatusCreated, map[string]string{"banned": addr})
}

// checkBan refuses a ban of every address (422, even forced: that is
// stopping the SBC, which drain does properly) and, unless forced, a ban
// that overlaps a protected range (409) or that cannot be checked because
// the protected ranges are not known (503).
func (s *Server) checkBan(r *http.Request, p netip.Prefix, force bool) (int, error) {
	if p.Bits() == 0 {
		return http.StatusUnprocessableEntity, fmt.Errorf("addr %s would ban every source; drain or stop the SBC instead", p)
	}
	if s.opt.Protected == nil || force {
		return 0, nil
	}
	protected, err := s.opt.Protected(r.Context())
	if err != nil {
		return http.StatusServiceUnavailable, fmt.Errorf("ban %s not checked against the trunks: %w; send \"force\": true to ban anyway", prefixText(p), err)
	}
	var hits []string
	for _, pr := range protected {
		if pr.Prefix.Overlaps(p) {
			hits = append(hits, pr.Why+" ("+prefixText(pr.Prefix)+")")
		}
	}
	if len(hits) > 0 {
		return http.StatusConflict, fmt.Errorf("ban %s covers %s; send \"force\": true to ban anyway", prefixText(p), strings.Join(hits, ", "))
	}
	return 0, nil
}

// banPrefix parses an IP or CIDR as the ban store does (security.ParseBanAddr):
// IPv4-mapped IPv6 is unmapped (a mapped prefix shorter than /96 is
// refused), a prefix is masked, an IP is a full-length prefix, and zones
// are refused. The check against protected ranges must see the range the
// store will ban: ::ffff:0.0.0.0/96 is 0.0.0.0/0.
func banPrefix(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	bad := fmt.Errorf("addr %q: want an IP address or CIDR prefix", s)
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" {
			return netip.Prefix{}, bad
		}
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, bad
	}
	a, bits := p.Addr(), p.Bits()
	if a.Is4In6() {
		if bits < 96 {
			return netip.Prefix{}, fmt.Errorf("addr %q: an IPv4-mapped prefix shorter than /96", s)
		}
		a, bits = a.Unmap(), bits-96
	}
	return netip.PrefixFrom(a, bits).Masked(), nil
}

// prefixText writes a full-length prefix as its IP.
func prefixText(p netip.Prefix) string {
	if p.IsSingleIP() {
		return p.Addr().String()
	}
	return p.String()
}

func (s *Server) removeBan(w http.ResponseWriter, r *http.Request) {
	if s.opt.Bans == nil {
		notImplemented(w, "bans")
		return
	}
	p, err := banPrefix(r.PathValue("addr"))
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	addr := prefixText(p)
	if !s.opt.Bans.Remove(addr) {
		writeError(w, http.StatusNotFound, "no ban for "+addr)
		return
	}
	s.log.Info("ban removed by the admin api", "addr", addr, "remote", r.RemoteAddr)
	writeJSON(w, http.StatusOK, map[string]string{"unbanned": addr})
}
