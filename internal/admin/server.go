// Package admin is the SBC's admin HTTP server, on its own address
// (admin.addr), away from the SIP listeners: /metrics for Prometheus,
// /healthz and /readyz for probes and load balancers, and a JSON API under
// /api/v1/ to list and hang up calls, list registrations, manage bans, see
// trunk states and the running configuration, search recent CDRs, reload,
// drain and trace; and the operator console's files under /console/
// (Options.Console, internal/console), which read that API.
//
// The server knows nothing of the SBC's parts: Options hands it small
// interfaces and functions, and an endpoint whose backend is missing
// answers 501 Not Implemented with a JSON error. With Options.Token set,
// /metrics and /api/v1/ require "Authorization: Bearer <token>"; /healthz
// and /readyz never do. The server refuses to listen on an address other
// than loopback without a token.
//
// Every request passes the checks of guard.go first (Host, Origin,
// Content-Type), so that no web page a browser opens can change anything
// or read anything through the browser; admin bans may not cover the
// addresses Options.Protected names unless the request forces them.
package admin

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// CallSource lists and hangs up calls in progress.
type CallSource interface {
	Calls() []Call
	// Hangup ends the call with this id (the CDR id or either leg's
	// Call-ID) with BYE or CANCEL on both legs; false if there is none.
	Hangup(id string) bool
}

// Registrations lists registered contacts.
type Registrations interface {
	List() []Registration
}

// Bans manages banned sources.
type Bans interface {
	List() []Ban
	// Add bans b.Addr (an IP or CIDR, already checked) for d (0: until
	// removed).
	Add(addr, reason string, d time.Duration) error
	// Remove lifts a ban; false if addr was not banned.
	Remove(addr string) bool
}

// Tracer switches per-call debug tracing for users and numbers.
type Tracer interface {
	Add(target string) bool
	Remove(target string) bool
	List() []string
}

// Options wires the server to the SBC. Every field is optional: a nil
// backend makes its endpoints answer 501, except Registrations (an empty
// list: no one registered) and Trunks (an empty list).
type Options struct {
	// Token, when set, is the bearer token /metrics and /api/v1/ require.
	// Without one, Start listens on loopback addresses only.
	Token string
	// Hosts are the names (or IP addresses), without port, a request's
	// Host may give besides the server's own address and localhost: the
	// names operators and their proxies reach it by. Matched without case.
	Hosts []string
	Log   *slog.Logger // nil discards

	Metrics       http.Handler     // GET /metrics
	Ready         func() Readiness // GET /readyz; nil: ready while serving
	Calls         CallSource
	Registrations Registrations
	Bans          Bans
	Trunks        func() []Trunk
	// Config returns the running configuration with secrets redacted,
	// ready to be encoded as JSON.
	Config func() any
	// Reload loads the configuration again. Its error's text lists the
	// problems one per line.
	Reload func() (ReloadResult, error)
	// Drain starts a graceful drain (idempotent) and reports its state.
	Drain func() DrainStatus
	// Migrate hands every call over to the cluster and stops the node
	// (POST /api/v1/drain?migrate=true); its error says why it cannot.
	// nil: 501.
	Migrate func() (DrainStatus, error)
	Traces  Tracer
	// Cluster reports the cluster's nodes as this node sees them, ready
	// to be encoded as JSON; nil on a single node (404 with a reason).
	Cluster func(ctx context.Context) any
	// ClusterCalls lists the calls of every node of the cluster (GET
	// /api/v1/calls?scope=cluster); nil on a single node.
	ClusterCalls func(ctx context.Context) ([]Call, error)
	// CDRs returns the recent call records q selects, newest first,
	// ready to be encoded as a JSON array (GET /api/v1/cdrs).
	CDRs func(q CDRQuery) any
	// Console serves the operator console's files under /console/
	// (without the token: they hold no secret; the page asks for it).
	Console http.Handler
	// Protected returns the address ranges an admin ban may not overlap
	// unless the request says "force": true: the trunks and the trusted
	// sources. An error (a trunk's name does not resolve) refuses every
	// ban that is not forced. Nil: nothing is protected.
	Protected func(ctx context.Context) ([]Protected, error)
	// Timeline returns the timeline of the call in progress or recently
	// ended whose CDR id or either leg's Call-ID is id, ready to be
	// encoded as JSON (GET /api/v1/calls/{id}/timeline); false when
	// unknown or aged out. Nil: timelines are not kept (501).
	Timeline func(id string) (any, bool)
}

// Protected is an address range admin bans leave alone unless forced.
type Protected struct {
	Prefix netip.Prefix // IPv4 unmapped, masked
	Why    string       // what it is, for the refusal: `trunk "pbx"`, routes[0].trusted_sources
}

// Server is the admin HTTP server. Create it with New, then Start it.
type Server struct {
	opt     Options
	log     *slog.Logger
	hosts   []string // Options.Hosts in lower case
	mux     *http.ServeMux
	handler http.Handler // mux behind guard
	http    *http.Server
	refused atomic.Uint64

	mu    sync.Mutex
	ln    net.Listener
	bound netip.Addr // the listener's IP, for the Host check
	done  chan struct{}
}

// New builds the server and its routes; it does not listen yet.
func New(opt Options) *Server {
	log := opt.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{opt: opt, log: log, mux: http.NewServeMux()}
	for _, h := range opt.Hosts {
		s.hosts = append(s.hosts, strings.TrimSuffix(strings.ToLower(strings.Trim(h, "[]")), "."))
	}
	s.routes()
	s.handler = s.guard(s.mux)
	s.http = &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	return s
}

func (s *Server) routes() {
	m := s.mux
	m.HandleFunc("GET /healthz", s.healthz)
	m.HandleFunc("GET /readyz", s.readyz)
	m.Handle("GET /metrics", s.auth(s.metrics()))
	api := func(pattern string, h http.HandlerFunc) { m.Handle(pattern, s.auth(s.requireJSON(h))) }
	api("GET /api/v1/calls", s.listCalls)
	api("GET /api/v1/calls/{id}", s.getCall)
	api("DELETE /api/v1/calls/{id}", s.hangup)
	api("GET /api/v1/calls/{id}/timeline", s.timeline)
	api("GET /api/v1/registrations", s.listRegistrations)
	api("GET /api/v1/bans", s.listBans)
	api("POST /api/v1/bans", s.addBan)
	api("DELETE /api/v1/bans/{addr...}", s.removeBan)
	api("GET /api/v1/trunks", s.listTrunks)
	api("GET /api/v1/cdrs", s.listCDRs)
	api("GET /api/v1/config", s.config)
	api("POST /api/v1/reload", s.reload)
	api("POST /api/v1/drain", s.drain)
	api("GET /api/v1/cluster", s.cluster)
	api("GET /api/v1/trace", s.listTraces)
	api("POST /api/v1/trace", s.addTrace)
	api("DELETE /api/v1/trace/{target}", s.removeTrace)
	if s.opt.Console != nil {
		m.Handle("GET /console/", s.opt.Console)
		m.Handle("GET /console", http.RedirectHandler("/console/", http.StatusMovedPermanently))
	}
	// Go's profiler, for an operator chasing CPU or memory on a live
	// node: behind the token like the API; reading it costs nothing until
	// a profile is asked for.
	m.Handle("GET /debug/pprof/", s.auth(http.HandlerFunc(pprof.Index)))
	m.Handle("GET /debug/pprof/cmdline", s.auth(http.HandlerFunc(pprof.Cmdline)))
	m.Handle("GET /debug/pprof/profile", s.auth(http.HandlerFunc(pprof.Profile)))
	m.Handle("GET /debug/pprof/symbol", s.auth(http.HandlerFunc(pprof.Symbol)))
	m.Handle("GET /debug/pprof/trace", s.auth(http.HandlerFunc(pprof.Trace)))
	api("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such endpoint: "+r.Method+" "+r.URL.Path)
	})
}

// ServeHTTP runs the checks of guard.go, then serves the admin routes; an
// unknown path or method gets a JSON error.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	s.handler.ServeHTTP(w, r)
}

// auth requires the bearer token when one is configured. Tokens are
// compared by their SHA-256 in constant time, so neither content nor
// length leaks.
func (s *Server) auth(h http.Handler) http.Handler {
	if s.opt.Token == "" {
		return h
	}
	want := sha256.Sum256([]byte(s.opt.Token))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		sum := sha256.Sum256([]byte(strings.TrimSpace(got)))
		if !ok || subtle.ConstantTimeCompare(sum[:], want[:]) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="sbc-admin"`)
			writeError(w, http.StatusUnauthorized, "missing or wrong bearer token")
			return
		}
		h.ServeHTTP(w, r)
	})
}

func (s *Server) metrics() http.Handler {
	if s.opt.Metrics == nil {
		return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			notImplemented(w, "metrics")
		})
	}
	return s.opt.Metrics
}

// ErrNoToken is Start's error for an address other than loopback without
// Options.Token: anyone who reaches it could ban, drain and hang up.
var ErrNoToken = errors.New("the admin server listens beyond loopback only with a token (admin.token)")

// Start listens on addr (ip:port; port 0 picks one) and serves until
// Close. It returns the bound address. Without a token, an address that is
// not loopback is refused with ErrNoToken.
func (s *Server) Start(addr string) (net.Addr, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("admin listen %s: %w", addr, err)
	}
	bound := ln.Addr().(*net.TCPAddr).AddrPort().Addr().Unmap()
	if !bound.IsLoopback() && s.opt.Token == "" {
		ln.Close()
		return nil, fmt.Errorf("admin listen %s: %w", addr, ErrNoToken)
	}
	s.mu.Lock()
	s.ln = ln
	s.bound = bound
	s.done = make(chan struct{})
	s.mu.Unlock()
	go func() {
		defer close(s.done)
		if err := s.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("admin server stopped", "err", err)
		}
	}()
	return ln.Addr(), nil
}

// Close stops the server: requests in progress get until ctx is done to
// finish, then their connections are closed. Safe to call more than once
// and without Start.
func (s *Server) Close(ctx context.Context) error {
	s.mu.Lock()
	done := s.done
	s.mu.Unlock()
	err := s.http.Shutdown(ctx)
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		err = s.http.Close()
	}
	if done != nil {
		<-done
	}
	return err
}
