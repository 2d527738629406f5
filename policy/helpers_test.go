package policy

import (
	"context"
	"log/slog"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/sbc-project/sbc/security"
)

// clock is a settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)} }

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// records counts log records by message.
type records struct {
	mu    sync.Mutex
	attrs []map[string]any
	msgs  []string
}

func (r *records) Enabled(context.Context, slog.Level) bool { return true }
func (r *records) WithAttrs([]slog.Attr) slog.Handler       { return r }
func (r *records) WithGroup(string) slog.Handler            { return r }
func (r *records) Handle(_ context.Context, rec slog.Record) error {
	m := map[string]any{}
	rec.Attrs(func(a slog.Attr) bool { m[a.Key] = a.Value.Any(); return true })
	r.mu.Lock()
	r.msgs = append(r.msgs, rec.Message)
	r.attrs = append(r.attrs, m)
	r.mu.Unlock()
	return nil
}

func (r *records) count(msg string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, m := range r.msgs {
		if m == msg {
			n++
		}
	}
	return n
}

func memBans(t *testing.T) *security.Bans {
	t.Helper()
	b, err := security.OpenBans("", nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// req returns a plausible request from src.
func req(src, method string) *Request {
	return &Request{
		Src: netip.AddrPortFrom(netip.MustParseAddr(src), 5060), Transport: "udp", Method: method,
		CallID: "c1@host", RURI: "sip:bob@sbc.example", From: "sip:alice@example.com", FromTag: "ft",
		To: "sip:bob@sbc.example", UserAgent: "TestPhone/1.0", Vias: []string{src + ":5060"},
	}
}

func testPolicy() Spec { return DefaultSpec() }

func ip(s string) netip.Addr { return netip.MustParseAddr(s) }
