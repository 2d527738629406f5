package b2bua

import (
	"bytes"
	"context"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sbc-project/sbc/b2bua/routing"
	"github.com/sbc-project/sbc/b2bua/transport"
)

// syncBuffer is a log destination safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// feed observes n messages, spread over d from start, each having waited
// wait; it returns when the last was handled.
func feed(o *overload, start time.Time, d time.Duration, n int, wait time.Duration) time.Time {
	var now time.Time
	for i := range n {
		now = start.Add(d * time.Duration(i) / time.Duration(n))
		o.observe(now.Add(-wait), now)
	}
	return now
}

// TestOverloadDetector: the control follows the standing queue (the
// smallest wait of each 100 ms), not bursts and not a count of messages:
// a burst of long waits among short ones changes nothing; waits that stay
// above the threshold refuse a growing share of new calls, logged once;
// socket drops alone do not; once the waits fall under half the
// threshold, the share falls back to none, logged once; time without
// messages counts as time without a queue.
func TestOverloadDetector(t *testing.T) {
	var logs syncBuffer
	var drops uint64
	dropping := false // while true, the kernel drops a datagram between any two intervals
	o := newOverload(20*time.Millisecond, func() uint64 {
		if dropping {
			drops++
		}
		return drops
	}, slog.New(slog.NewTextHandler(&logs, nil)))
	t0 := time.Unix(1_000_000, 0)
	now := feed(o, t0, time.Second, 10_000, time.Millisecond) // a busy second without a queue
	for i := range 50 {                                       // a burst of 50 slow messages
		o.observe(now.Add(-200*time.Millisecond-time.Duration(i)), now)
	}
	now = feed(o, now, 200*time.Millisecond, 100, time.Millisecond)
	if st := o.shed.Load(); st != 0 {
		t.Fatalf("a burst in 10,000 messages refuses %d/1024 of new calls", st)
	}

	now = feed(o, now, 300*time.Millisecond, 30, 50*time.Millisecond) // a standing queue of 50 ms
	if st := o.shed.Load(); st < shedUp {
		t.Fatalf("three intervals of 50 ms waits refuse %d/1024, want at least %d", st, shedUp)
	}
	if got := time.Duration(o.standing.Load()); got != 50*time.Millisecond {
		t.Errorf("standing delay %v, want 50ms", got)
	}
	refused := 0
	for i := range 1000 {
		if !o.admit([]byte("call-" + string(rune('a'+i%26)) + strings.Repeat("x", i/26))) {
			refused++
		}
	}
	if refused < 100 || refused > 900 || o.refused.Load() != uint64(refused) {
		t.Errorf("refused %d of 1000 new calls (counted %d) at share %d/1024", refused, o.refused.Load(), o.shed.Load())
	}

	now = feed(o, now, 3*time.Second, 300, 15*time.Millisecond) // between low and high: held
	held := o.shed.Load()
	now = feed(o, now, 5*time.Second, 500, time.Millisecond) // drained
	if held == 0 || o.shed.Load() != 0 {
		t.Fatalf("share %d/1024 held between the marks, %d/1024 after 5 s drained", held, o.shed.Load())
	}

	dropping = true // the kernel drops datagrams in bursts, the waits stay short
	now = feed(o, now, 300*time.Millisecond, 30, time.Millisecond)
	dropping = false
	if o.shed.Load() != 0 {
		t.Fatal("socket drops without a standing queue refused calls")
	}
	now = feed(o, now, 300*time.Millisecond, 30, 50*time.Millisecond) // a standing queue again
	if o.shed.Load() == 0 {
		t.Fatal("a standing queue after the drops refused nothing")
	}
	o.observe(now.Add(10*time.Second-time.Millisecond), now.Add(10*time.Second)) // after 10 s idle
	if o.shed.Load() != 0 {
		t.Errorf("share %d/1024 after 10 s without messages", o.shed.Load())
	}
	if on, off := strings.Count(logs.String(), "overload: refusing"), strings.Count(logs.String(), "overload over"); on != 2 || off != 2 {
		t.Errorf("%d overload lines and %d over lines, want 2 each:\n%s", on, off, logs.String())
	}

	never := newOverload(-1, nil, slog.New(slog.DiscardHandler))
	feed(never, t0, time.Second, 100, time.Second)
	if !never.admit([]byte("c")) || time.Duration(never.standing.Load()) != time.Second {
		t.Error("a disabled control refused a call, or did not measure")
	}
}

// TestOverloadAdmitRemembers: an INVITE let through before the overload
// is let through again in it (its retransmissions belong to a call in
// progress), while a new one in the refused share is refused every time,
// so that its retransmissions get the same answer.
func TestOverloadAdmitRemembers(t *testing.T) {
	o := newOverload(time.Millisecond, nil, slog.New(slog.DiscardHandler))
	old := refusedCallID(t, shedUp)
	if !o.admit(old) {
		t.Fatal("refused without overload")
	}
	o.shed.Store(shedUp)
	fresh := refusedCallID(t, shedUp, old)
	for range 3 {
		if !o.admit(old) {
			t.Error("the retransmission of an admitted INVITE was refused")
		}
		if o.admit(fresh) {
			t.Error("a new INVITE in the refused share was let through")
		}
	}
}

// refusedCallID finds a Call-ID the control refuses at share shed, other
// than those given.
func refusedCallID(t *testing.T, shed int32, not ...[]byte) []byte {
	t.Helper()
	for i := range 100_000 {
		id := []byte("refused-" + strings.Repeat("i", i%50) + string(rune('A'+i/50%26)) + string(rune('a'+i/1300)))
		if int32((hash64(id)|1)>>32)&(shedScale-1) < shed && !containsBytes(not, id) {
			return id
		}
	}
	t.Fatal("no Call-ID in the refused share")
	return nil
}

func containsBytes(set [][]byte, b []byte) bool {
	for _, s := range set {
		if bytes.Equal(s, b) {
			return true
		}
	}
	return false
}

// TestOverloadObserveAllocatesNothing: the control's work per message and
// per new INVITE costs no allocation.
func TestOverloadObserveAllocatesNothing(t *testing.T) {
	o := newOverload(20*time.Millisecond, func() uint64 { return 0 }, slog.New(slog.DiscardHandler))
	msg := []byte("INVITE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nTo: <sip:a@b>\r\nCall-ID: abc@host\r\n\r\n")
	now := time.Now()
	allocs := testing.AllocsPerRun(1000, func() {
		now = now.Add(time.Millisecond)
		o.observe(now.Add(-time.Millisecond), now)
		h := scanHeaders(msg)
		if toTag(h.to) != nil || !o.admit(h.callID) {
			t.Fatal("refused")
		}
	})
	if allocs != 0 {
		t.Errorf("%.1f allocations per message", allocs)
	}
}

// BenchmarkOverloadObserve: the control's cost per message, from every
// worker at once.
func BenchmarkOverloadObserve(b *testing.B) {
	o := newOverload(20*time.Millisecond, func() uint64 { return 0 }, slog.New(slog.DiscardHandler))
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			now := time.Now()
			o.observe(now.Add(-time.Millisecond), now)
		}
	})
}

// TestRefusal: the stateless 503 carries every Via in order, From, To
// with our tag (the same for each copy of the request), Call-ID, CSeq and
// Retry-After, in full or compact header forms; a request lacking one of
// them gets none.
func TestRefusal(t *testing.T) {
	inv := "INVITE sip:b@x SIP/2.0\r\nv: SIP/2.0/UDP p1;branch=z9hG4bKa\r\nVia: SIP/2.0/UDP c;branch=z9hG4bKb;rport\r\n" +
		"f: <sip:a@c>;tag=1\r\nt: <sip:b@x;tag=uri-param>\r\ni: call-1\r\nCSeq: 7 INVITE\r\nContent-Length: 0\r\n\r\n"
	h := scanHeaders([]byte(inv))
	if toTag(h.to) != nil || string(h.callID) != "call-1" {
		t.Fatalf("To %q (tag %q), Call-ID %q", h.to, toTag(h.to), h.callID)
	}
	res := string(refusal([]byte(inv), h, "sbc"))
	want := "SIP/2.0 503 Service Unavailable\r\nv: SIP/2.0/UDP p1;branch=z9hG4bKa\r\nVia: SIP/2.0/UDP c;branch=z9hG4bKb;rport\r\n" +
		"f: <sip:a@c>;tag=1\r\nt: <sip:b@x;tag=uri-param>;tag=ovl"
	if !strings.HasPrefix(res, want) || !strings.Contains(res, "\r\ni: call-1\r\nCSeq: 7 INVITE\r\nRetry-After: 5\r\nServer: sbc\r\nContent-Length: 0\r\n\r\n") {
		t.Errorf("503:\n%s", res)
	}
	if again := string(refusal([]byte(inv), h, "sbc")); again != res {
		t.Errorf("the retransmission's 503 differs:\n%s", again)
	}
	for name, msg := range map[string]string{
		"no Via":  "INVITE sip:b@x SIP/2.0\r\nFrom: <sip:a@c>;tag=1\r\nTo: <sip:b@x>\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\n\r\n",
		"no CSeq": "INVITE sip:b@x SIP/2.0\r\nVia: SIP/2.0/UDP c\r\nFrom: <sip:a@c>;tag=1\r\nTo: <sip:b@x>\r\nCall-ID: c\r\n\r\n",
	} {
		if res := refusal([]byte(msg), scanHeaders([]byte(msg)), "sbc"); res != nil {
			t.Errorf("%s: answered %q", name, res)
		}
	}
	for v, want := range map[string]string{
		"<sip:b@x>;tag=abc":          "abc",
		"<sip:b@x> ; TAG = abc;x=1":  "abc",
		"sip:b@x;tag=q":              "q",
		"<sip:b@x;tag=in-uri>":       "",
		"\"B\" <sip:b@x>;other=1":    "",
		"<sip:b@x>;tag=ovl123;foo=2": "ovl123",
	} {
		if got := string(toTag([]byte(v))); got != want {
			t.Errorf("toTag(%q) = %q, want %q", v, got, want)
		}
	}
}

// TestRefuseEarly: in overload the gate refuses only new INVITEs (no To
// tag) in the refused share, and absorbs the ACKs of its own 503s; every
// other message, an INVITE already taken included, goes on to the parser.
func TestRefuseEarly(t *testing.T) {
	table, err := routing.New(routing.TableSpec{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := New(Config{}, Hooks{Routes: table}, slog.New(slog.DiscardHandler))
	defer func() { _ = s.Close(context.Background()) }()
	taken := refusedCallID(t, 1)
	if !s.load.admit(taken) {
		t.Fatal("refused without overload")
	}
	s.load.shed.Store(shedMax)
	fresh := string(refusedCallID(t, 1, taken))
	msg := func(start, to, callID string) []byte {
		return []byte(start + " sip:b@x SIP/2.0\r\nVia: SIP/2.0/UDP c;branch=z9hG4bK1\r\nFrom: <sip:a@c>;tag=1\r\n" +
			"To: " + to + "\r\nCall-ID: " + callID + "\r\nCSeq: 1 " + start + "\r\n\r\n")
	}
	for _, tc := range []struct {
		name string
		data []byte
		want bool
	}{
		{"new INVITE", msg("INVITE", "<sip:b@x>", fresh), true},
		{"its retransmission", msg("INVITE", "<sip:b@x>", fresh), true},
		{"re-INVITE", msg("INVITE", "<sip:b@x>;tag=9", fresh), false},
		{"INVITE already taken", msg("INVITE", "<sip:b@x>", string(taken)), false},
		{"ACK of our 503", msg("ACK", "<sip:b@x>;tag=ovl12", fresh), true},
		{"ACK of a call", msg("ACK", "<sip:b@x>;tag=c1", fresh), false},
		{"BYE", msg("BYE", "<sip:b@x>;tag=c1", fresh), false},
		{"CANCEL", msg("CANCEL", "<sip:b@x>", fresh), false},
		{"response", []byte("SIP/2.0 200 OK\r\nTo: <sip:b@x>\r\nCall-ID: " + fresh + "\r\n\r\n"), false},
	} {
		p := transport.Packet{Data: tc.data, Src: netip.MustParseAddrPort("127.0.0.1:9"), Kind: transport.UDP}
		if got := s.refuseEarly(p, p.Source()); got != tc.want {
			t.Errorf("%s: refused/absorbed %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestOverloadHold: two short queues 1.5 s apart are one overload
// (logged once), although no call is refused between them; the state ends
// once no queue has stood for overloadHold.
func TestOverloadHold(t *testing.T) {
	var logs syncBuffer
	o := newOverload(20*time.Millisecond, nil, slog.New(slog.NewTextHandler(&logs, nil)))
	now := feed(o, time.Unix(1_000_000, 0), 300*time.Millisecond, 30, 50*time.Millisecond)
	now = feed(o, now, 1500*time.Millisecond, 150, time.Millisecond)
	if o.shed.Load() != 0 || !o.on.Load() {
		t.Fatalf("between two queues: share %d/1024 (want 0), overloaded %v (want true)", o.shed.Load(), o.on.Load())
	}
	now = feed(o, now, 300*time.Millisecond, 30, 50*time.Millisecond)
	feed(o, now, 3*time.Second, 300, time.Millisecond)
	if on, off := strings.Count(logs.String(), "overload: refusing"), strings.Count(logs.String(), "overload over"); on != 1 || off != 1 || o.on.Load() {
		t.Errorf("%d overload lines and %d over lines (want 1 each), overloaded %v:\n%s", on, off, o.on.Load(), logs.String())
	}
}

// TestOverloadOneStall: one interval with a standing queue (the whole
// process stalled: a scheduler hiccup, a GC pause) refuses nothing and is
// no overload; the second in a row is.
func TestOverloadOneStall(t *testing.T) {
	o := newOverload(20*time.Millisecond, nil, slog.New(slog.DiscardHandler))
	now := feed(o, time.Unix(1_000_000, 0), time.Second, 100, time.Millisecond)
	now = feed(o, now, 180*time.Millisecond, 18, 50*time.Millisecond) // one whole interval stalled
	now = feed(o, now, time.Second, 100, time.Millisecond)
	if o.shed.Load() != 0 || o.on.Load() {
		t.Fatalf("one stalled interval: share %d/1024, overloaded %v", o.shed.Load(), o.on.Load())
	}
	feed(o, now, 300*time.Millisecond, 30, 50*time.Millisecond)
	if o.shed.Load() == 0 || !o.on.Load() {
		t.Errorf("three stalled intervals: share %d/1024, overloaded %v", o.shed.Load(), o.on.Load())
	}
}
