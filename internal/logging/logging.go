// Package logging builds the SBC's log/slog logger: text or JSON lines on
// a writer, a level that can change while the SBC runs (reload), and
// per-call tracing.
//
// Tracing: a logger derived with the attribute TraceKey=true (the B2BUA
// adds it to the logger of a call whose caller or callee is in a Traces
// set) writes its debug records even when the level is info or above, so
// one call among thousands can be followed without turning on debug for
// all of them.
package logging

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
)

// TraceKey is the attribute that marks a logger as traced: derive a logger
// with slog.Bool(TraceKey, true) and its debug records always pass.
const TraceKey = "trace"

// Formats of New.
const (
	FormatText = "text"
	FormatJSON = "json"
)

// New returns a logger writing format (FormatText or FormatJSON; anything
// else is text) to w, and the level it filters at, which the caller may
// change at any time (slog.LevelVar is safe for concurrent use).
func New(w io.Writer, format string, level slog.Level) (*slog.Logger, *slog.LevelVar) {
	lv := new(slog.LevelVar)
	lv.Set(level)
	// The inner handler passes everything: the wrapper decides, so that a
	// traced logger's debug records get through.
	opts := &slog.HandlerOptions{Level: slog.LevelDebug}
	var inner slog.Handler
	if format == FormatJSON {
		inner = slog.NewJSONHandler(w, opts)
	} else {
		inner = slog.NewTextHandler(w, opts)
	}
	return slog.New(&handler{inner: inner, level: lv}), lv
}

// ParseLevel turns debug, info, warn or error into a slog.Level.
func ParseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return slog.LevelInfo, fmt.Errorf("log level %q: %w", s, err)
	}
	return l, nil
}

// handler filters records by a shared level, except on a traced logger.
type handler struct {
	inner  slog.Handler
	level  slog.Leveler
	traced bool // derived with TraceKey=true
}

func (h *handler) Enabled(ctx context.Context, l slog.Level) bool {
	return (l >= h.level.Level() || h.traced) && h.inner.Enabled(ctx, l)
}

func (h *handler) Handle(ctx context.Context, r slog.Record) error {
	return h.inner.Handle(ctx, r)
}

func (h *handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	traced := h.traced
	for _, a := range attrs {
		if a.Key == TraceKey && a.Value.Kind() == slog.KindBool {
			traced = a.Value.Bool()
		}
	}
	return &handler{inner: h.inner.WithAttrs(attrs), level: h.level, traced: traced}
}

func (h *handler) WithGroup(name string) slog.Handler {
	return &handler{inner: h.inner.WithGroup(name), level: h.level, traced: h.traced}
}

// Traces is the set of users and numbers whose calls are traced. Entries
// are compared case-insensitively and without a leading '+', so "+4930123"
// traces calls to and from 4930123. The zero value is an empty set ready
// to use; it is safe for concurrent use.
type Traces struct {
	mu  sync.RWMutex
	set map[string]string // normalized -> as given
}

func normalize(s string) string {
	return strings.ToLower(strings.TrimPrefix(strings.TrimSpace(s), "+"))
}

// Add traces calls whose caller or callee is target. An empty target is
// ignored; it reports whether target was added.
func (t *Traces) Add(target string) bool {
	n := normalize(target)
	if n == "" {
		return false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.set == nil {
		t.set = make(map[string]string)
	}
	t.set[n] = strings.TrimSpace(target)
	return true
}

// Remove stops tracing target; it reports whether it was traced.
func (t *Traces) Remove(target string) bool {
	n := normalize(target)
	t.mu.Lock()
	defer t.mu.Unlock()
	_, ok := t.set[n]
	delete(t.set, n)
	return ok
}

// Set replaces the whole set (a reload of log.trace).
func (t *Traces) Set(targets []string) {
	t.mu.Lock()
	t.set = make(map[string]string, len(targets))
	t.mu.Unlock()
	for _, s := range targets {
		t.Add(s)
	}
}

// List returns the traced targets as given, sorted.
func (t *Traces) List() []string {
	t.mu.RLock()
	out := make([]string, 0, len(t.set))
	for _, v := range t.set {
		out = append(out, v)
	}
	t.mu.RUnlock()
	slices.Sort(out)
	return out
}

// Mark is the attribute that marks a traced call's logger (TraceKey=true),
// so that the handler lets its debug records through.
func (t *Traces) Mark() slog.Attr { return slog.Bool(TraceKey, true) }

// Active reports whether anything is traced at all: callers skip
// collecting a message's users when nothing is.
func (t *Traces) Active() bool {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return len(t.set) > 0
}

// Traced reports whether any of users (the user parts of a call's From,
// To and request-URI) is traced. Empty users never match.
func (t *Traces) Traced(users ...string) bool {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if len(t.set) == 0 {
		return false
	}
	for _, u := range users {
		if n := normalize(u); n != "" {
			if _, ok := t.set[n]; ok {
				return true
			}
		}
	}
	return false
}
