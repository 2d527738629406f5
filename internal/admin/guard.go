package admin

import (
	"errors"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// The checks in front of every endpoint. A web page can make a browser
// send requests to the admin server (on loopback too), with the user's
// network position but without reading the answers: a "simple" cross-site
// request (GET, HEAD, or POST with a text/plain, form or multipart body and
// no custom header) goes out without a CORS preflight. DNS rebinding makes
// such a page same-origin with the server: its host name now resolves to
// the server's address, so the browser sends the page's name as Host and
// lets it read the answers. The checks refuse both:
//
//   - Host must name this server: its IP address (any IP literal when it
//     listens on every address), localhost when it listens on loopback or
//     every address, or a name in Options.Hosts. A rebinding page's name
//     is none of these. A request without Host (HTTP/1.0, which no browser
//     sends) passes.
//   - A request a browser marks as coming from another page is refused: an
//     Origin other than the server's own (its only pages are the console's,
//     whose requests are same-origin, so no other origin is legitimate), or Sec-Fetch-Site cross-site or
//     same-site (the web phone on another port of the same host is
//     same-site).
//   - A request that changes state (POST, PUT, PATCH, DELETE) must carry
//     Content-Type: application/json, which a browser sends cross-site
//     only after a preflight that this server never grants. A DELETE
//     without a body may instead carry an Authorization header (the token,
//     checked by auth when one is set): another header a browser never
//     sends cross-site without a preflight.
//
// Host and Origin are checked first, on every path; the content type after
// the token, on the API. Refusals are 403 (Host, Origin) and 415
// (Content-Type) with a JSON error, counted in Refused, and logged at the
// 1st, 10th, 100th...

// checkHost reports why r's Host does not name this server, or nil.
func (s *Server) checkHost(r *http.Request) error {
	if r.Host == "" {
		return nil
	}
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.ToLower(strings.Trim(host, "[]")), ".")
	s.mu.Lock()
	bound := s.bound
	s.mu.Unlock()
	if ip, err := netip.ParseAddr(host); err == nil {
		ip = ip.Unmap()
		if ip == bound || bound.IsUnspecified() || slices.Contains(s.hosts, ip.String()) {
			return nil
		}
	} else if host == "localhost" && (bound.IsLoopback() || bound.IsUnspecified()) {
		return nil
	} else if slices.Contains(s.hosts, host) {
		return nil
	}
	return errors.New("Host " + strconv.Quote(r.Host) + " is not this admin server's address, localhost or a name in admin.hosts")
}

// checkOrigin reports why r comes from a page of another origin, or nil.
func checkOrigin(r *http.Request) error {
	if o := r.Header.Get("Origin"); o != "" {
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || !strings.EqualFold(u.Host, r.Host) || r.Host == "" {
			return errors.New("Origin " + strconv.Quote(o) + " may not use the admin server: requests from web pages are refused")
		}
	}
	switch site := r.Header.Get("Sec-Fetch-Site"); site {
	case "cross-site", "same-site":
		return errors.New("a request from a page of another site (Sec-Fetch-Site: " + site + ") is refused")
	}
	return nil
}

// changesState reports whether method is one a browser form or fetch
// could use to change something.
func changesState(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return false
	}
	return true
}

// checkJSON reports why a state-changing request lacks the JSON content
// type (or, for a DELETE without a body, an Authorization header), or nil.
func checkJSON(r *http.Request) error {
	if !changesState(r.Method) {
		return nil
	}
	ct := r.Header.Get("Content-Type")
	if mt, _, err := mime.ParseMediaType(ct); err == nil && mt == "application/json" {
		return nil
	}
	if r.Method == http.MethodDelete && r.ContentLength == 0 && r.Header.Get("Authorization") != "" {
		return nil
	}
	if ct == "" {
		ct = "none"
	}
	return errors.New(r.Method + " needs Content-Type: application/json (got " + ct + ")")
}

// guard runs the Host and Origin checks on every request before h.
func (s *Server) guard(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		err := s.checkHost(r)
		if err == nil {
			err = checkOrigin(r)
		}
		if err != nil {
			s.refuse(w, r, http.StatusForbidden, err)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// requireJSON runs the content type check before h, on the API routes
// (after the token: a client without one learns that first).
func (s *Server) requireJSON(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := checkJSON(r); err != nil {
			s.refuse(w, r, http.StatusUnsupportedMediaType, err)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// refuse answers a request the checks refused, counts it, and logs it at
// the 1st, 10th, 100th... refusal: a page looping fetches must not flood
// the log.
func (s *Server) refuse(w http.ResponseWriter, r *http.Request, code int, err error) {
	n := s.refused.Add(1)
	if isPowerOf10(n) {
		s.log.Warn("admin request refused", "reason", err.Error(), "method", r.Method, "path", r.URL.Path,
			"remote", r.RemoteAddr, "host", r.Host, "origin", r.Header.Get("Origin"), "refused_total", n)
	}
	writeError(w, code, err.Error())
}

func isPowerOf10(n uint64) bool {
	for n >= 10 && n%10 == 0 {
		n /= 10
	}
	return n == 1
}

// Refused returns how many requests the Host, Origin and Content-Type
// checks have refused since New.
func (s *Server) Refused() uint64 { return s.refused.Load() }
