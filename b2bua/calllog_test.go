package b2bua

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/ghettovoice/gosip/sip"

	"github.com/sbc-project/sbc/b2bua/sipmsg"
)

// lockedBuffer is a log sink safe for the call's goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) lines(t *testing.T) map[string]map[string]any {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	out := map[string]map[string]any{}
	for line := range strings.Lines(b.buf.String()) {
		var r map[string]any
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		out[r["msg"].(string)] = r
	}
	return out
}

// TestCallLogLinesCarryCallState: the call's logger, which keeps no
// formatted attributes between lines (callLog), gives each line the
// call's state as it is then: both legs' Call-IDs once leg B exists, the
// CDR id and the route, as the loggers the call rebuilt at each change
// did.
func TestCallLogLinesCarryCallState(t *testing.T) {
	h := newCallHarness(t, nil)
	sink := &lockedBuffer{}
	h.s.log = slog.New(slog.NewJSONHandler(sink, nil))
	tag, b := h.answered(t)
	if res := h.inDialog(t, "BYE", 2, tag, "").final(t); res.StatusCode() != 200 {
		t.Fatalf("caller's BYE: %d", res.StatusCode())
	}
	h.txs.next(t, sip.BYE).answer(200, "")
	rec := h.rec.next(t)
	h.s.wg.Wait() // the call has logged its end
	lines := sink.lines(t)
	for _, msg := range []string{"calling", "call answered", "call ended"} {
		r, ok := lines[msg]
		switch {
		case !ok:
			t.Errorf("no %q line", msg)
		case r["call_id"] != "c1" || r["cdr_id"] != rec.ID || r["route"] != "out":
			t.Errorf("%q: call_id %v cdr_id %v route %v, want c1 %s out", msg, r["call_id"], r["cdr_id"], r["route"], rec.ID)
		case r["b_call_id"] != sipmsg.CallID(b.req):
			t.Errorf("%q: b_call_id %v, want %s", msg, r["b_call_id"], sipmsg.CallID(b.req))
		}
	}
}

// switchTracer traces user alice while on is set.
type switchTracer struct{ on atomic.Bool }

func (s *switchTracer) Active() bool { return s.on.Load() }
func (s *switchTracer) Traced(users ...string) bool {
	return s.on.Load() && slices.Contains(users, "alice")
}
func (s *switchTracer) Mark() slog.Attr { return slog.Bool("trace", true) }

// TestCallTraceDecisionKept: a call already up when its user becomes
// traced keeps the decision taken when it was set up (README, Logs), though
// its logger builds its attributes for each line; a call set up while the
// user is traced carries the mark.
func TestCallTraceDecisionKept(t *testing.T) {
	for _, tc := range []struct {
		name         string
		before, then bool // tracing on before the call, then after its answer
		want         bool // the mark on the "call ended" line
	}{
		{"traced after the answer", false, true, false},
		{"traced from the start", true, true, true},
		{"untraced after the answer", true, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newCallHarness(t, nil)
			tr := &switchTracer{}
			tr.on.Store(tc.before)
			h.s.hooks.Tracer = tr
			sink := &lockedBuffer{}
			h.s.log = slog.New(slog.NewJSONHandler(sink, nil))
			tag, _ := h.answered(t)
			settle(t, h) // the answer handled to its end
			tr.on.Store(tc.then)
			if res := h.inDialog(t, "BYE", 2, tag, "").final(t); res.StatusCode() != 200 {
				t.Fatalf("caller's BYE: %d", res.StatusCode())
			}
			h.txs.next(t, sip.BYE).answer(200, "")
			h.rec.next(t)
			h.s.wg.Wait()
			if got := sink.lines(t)["call ended"]["trace"] == true; got != tc.want {
				t.Fatalf("call ended traced %v, want %v", got, tc.want)
			}
		})
	}
}
