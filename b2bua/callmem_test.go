package b2bua

import (
	"context"
	"errors"
	"log/slog"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/ghettovoice/gosip/sip"

	"github.com/sbc-project/sbc/b2bua/outcome"
	"github.com/sbc-project/sbc/b2bua/routing"
	"github.com/sbc-project/sbc/b2bua/transport"
	"github.com/sbc-project/sbc/media"
)

// legsOf returns the legs in the server's dialog index, by side name.
func legsOf(s *Server) map[string][]*leg {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string][]*leg{}
	for _, l := range s.dialogs {
		out[string(l.name())] = append(out[string(l.name())], l)
	}
	return out
}

// Legs of different calls with the same host, port and transport share
// one Contact header (it is never changed once made), which renders as
// each leg's own did.
func TestLegsShareTheirContact(t *testing.T) {
	h := newCallHarness(t, nil)
	for range 2 {
		h.call(t)
		h.txs.next(t, sip.INVITE)
	}
	legs := legsOf(h.s)
	for _, side := range []string{"a", "b"} {
		ls := legs[side]
		if len(ls) != 2 {
			t.Fatalf("%d legs %s in the dialog index, want 2", len(ls), side)
		}
		if ls[0].contact != ls[1].contact {
			t.Errorf("legs %s of two calls have Contacts %p and %p, want one shared", side, ls[0].contact, ls[1].contact)
		}
		want := ourContact(ls[0].viaHost, ls[0].viaPort, transport.UDP, false).String()
		if got := ls[0].contact.String(); got != want {
			t.Errorf("leg %s Contact %q, want %q", side, got, want)
		}
	}
}

// A server keeps at most maxContacts Contacts to share; past that a leg
// gets one of its own, still right.
func TestSharedContactsBounded(t *testing.T) {
	s := New(Config{}, Hooks{}, slog.New(slog.DiscardHandler))
	first := s.contactFor("192.0.2.1", 5060, transport.TCP, false)
	if again := s.contactFor("192.0.2.1", 5060, transport.TCP, false); again != first {
		t.Fatal("the same host, port and transport got two Contacts")
	}
	for port := range uint16(2 * maxContacts) {
		h := s.contactFor("192.0.2.1", 6000+port, transport.TCP, false)
		if want := "<sip:sbc@192.0.2.1:" + strconv.Itoa(6000+int(port)) + ";transport=tcp>"; h.String() != "Contact: "+want {
			t.Fatalf("Contact %q, want %q", h.String(), "Contact: "+want)
		}
	}
	kept := 0
	s.contacts.m.Range(func(any, any) bool { kept++; return true })
	if kept != maxContacts {
		t.Fatalf("%d Contacts kept, want the bound %d", kept, maxContacts)
	}
}

// Legs share the server's header whitelist; a trunk's own pass headers
// make a set for its leg B only, and never join the shared one.
func TestTrunkPassHeadersStayOnItsLeg(t *testing.T) {
	h := newCallHarnessWith(t, nil, routing.TrunkSpec{Name: "pbx", URI: "sip:192.0.2.20:5060",
		PassHeaders: []string{"X-Trunk-Only"}}, []string{"X-Everyone"})
	h.call(t)
	h.txs.next(t, sip.INVITE)
	legs := legsOf(h.s)
	a, b := legs["a"][0], legs["b"][0]
	if !a.pass["x-everyone"] || a.pass["x-trunk-only"] {
		t.Errorf("leg A passes %v, want x-everyone only", a.pass)
	}
	if !b.pass["x-everyone"] || !b.pass["x-trunk-only"] {
		t.Errorf("leg B passes %v, want x-everyone and x-trunk-only", b.pass)
	}
	if len(h.s.pass) != 1 || !h.s.pass["x-everyone"] {
		t.Errorf("the server's shared set is %v, want x-everyone only", h.s.pass)
	}
}

// A call's timers are a slice that is let go once the last one stops; a
// restarted timer keeps one slot, and a timer that fires after it was
// stopped, or restarted, is ignored.
func TestCallTimersLetGo(t *testing.T) {
	c := &Call{s: &Server{}}
	c.startTimer(timerRing, time.Hour)
	c.startTimer(timerMaxDuration, time.Hour)
	first := c.timers[0]
	c.startTimer(timerRing, time.Hour) // restarted: stops the first
	if len(c.timers) != 2 {
		t.Fatalf("%d timers after a restart, want 2", len(c.timers))
	}
	if c.s.deadlines.stop(first) {
		t.Error("the restarted timer's first run was not stopped")
	}
	c.onTimer(first) // the first run, fired before the restart: nothing to do
	if len(c.timers) != 2 {
		t.Fatalf("%d timers after the first run fired late, want 2", len(c.timers))
	}
	ring := c.timers[1]
	c.stopTimer(timerRing)
	c.onTimer(ring) // fired after it was stopped: nothing to do
	if len(c.timers) != 1 || c.timers[0].kind != timerMaxDuration {
		t.Fatalf("timers %v, want the maximum duration only", c.timers)
	}
	c.stopTimer(timerMaxDuration)
	if c.timers != nil {
		t.Fatalf("timers %v kept after the last stopped, want nil", c.timers)
	}
	if n := len(c.s.deadlines.h); n != 0 {
		t.Fatalf("the server keeps %d deadlines of stopped timers", n)
	}
}

// A call's timer is an entry in the server's deadlines, not a runtime
// timer and a closure of its own (0.18 kB an established call): starting
// one allocates the entry and the call's slice of them.
func TestCallTimerAllocatesItsEntryOnly(t *testing.T) {
	c := &Call{s: &Server{}}
	allocs := testing.AllocsPerRun(50, func() {
		c.startTimer(timerMaxDuration, time.Hour)
		c.stopTimer(timerMaxDuration)
	})
	if allocs > 2 {
		t.Fatalf("a timer's start allocates %.0f times, want 2", allocs)
	}
}

// The server's deadlines fire in deadline order, each once, and never
// before it is due; a stopped one never.
func TestDeadlinesFireInOrder(t *testing.T) {
	var ds deadlines
	got := make(chan timerKind, 4)
	c := &Call{s: &Server{}}
	c.openEvents() // the events stay in the queue: read them below
	start := time.Now()
	ds.add(c, timerRefreshB, 60*time.Millisecond)
	ds.add(c, timerRing, 20*time.Millisecond)
	stopped := ds.add(c, timerAttempt, 10*time.Millisecond)
	ds.add(c, timerMaxDuration, 40*time.Millisecond)
	ds.stop(stopped)
	go func() {
		deadline := time.Now().Add(wait)
		for n := 0; n < 3 && time.Now().Before(deadline); {
			c.qmu.Lock()
			q := c.queue
			c.queue = nil
			c.qmu.Unlock()
			for _, ev := range q {
				if ev.kind == evTimer {
					got <- ev.due.kind
					n++
				}
			}
			time.Sleep(time.Millisecond)
		}
		close(got)
	}()
	var order []timerKind
	for k := range got {
		order = append(order, k)
	}
	if want := []timerKind{timerRing, timerMaxDuration, timerRefreshB}; !slices.Equal(order, want) {
		t.Fatalf("fired %v, want %v", order, want)
	}
	if el := time.Since(start); el < 60*time.Millisecond {
		t.Fatalf("the last fired after %v, before its 60 ms", el)
	}
}

// newHaltable is a call with the context newCall gives it.
func newHaltable() *Call {
	c := &Call{}
	c.ctx, c.stop = context.WithCancelCause(context.Background())
	return c
}

// A lookup's context ends when the call is halted (a CANCEL, a hang-up),
// also when the call was halted before the lookup began; the lookup's
// own deadline does not end the call's context.
func TestLookupEndsWithTheCall(t *testing.T) {
	c := newHaltable()
	ctx, done := c.lookupCtx(time.Hour)
	c.halt(&stopped{cause: outcome.CauseCallerCancel, side: outcome.SideA})
	if !errors.Is(ctx.Err(), context.Canceled) {
		t.Fatalf("lookup context after the call was halted: %v, want canceled", ctx.Err())
	}
	done()
	if c.lookupStop != nil {
		t.Fatal("the finished lookup is still registered")
	}
	if ctx, done := c.lookupCtx(time.Hour); ctx.Err() == nil {
		t.Fatal("a lookup that began after the call was halted is not cancelled")
	} else {
		done()
	}

	c = newHaltable()
	ctx, done = c.lookupCtx(time.Nanosecond)
	<-ctx.Done()
	done()
	if !errors.Is(ctx.Err(), context.DeadlineExceeded) || c.ctx.Err() != nil {
		t.Fatalf("lookup %v, call %v: want the lookup's deadline only", ctx.Err(), c.ctx.Err())
	}
}

// A call's done channel is made only for whoever waits on it, and is
// closed once the call is done, whether made before or after.
func TestCallDoneChanOnDemand(t *testing.T) {
	c := &Call{}
	if c.done != nil {
		t.Fatal("a new call has a done channel")
	}
	before := c.doneChan()
	select {
	case <-before:
		t.Fatal("done before the call is")
	default:
	}
	c.markDone()
	for _, ch := range []<-chan struct{}{before, c.doneChan()} {
		select {
		case <-ch:
		default:
			t.Fatal("not done after markDone")
		}
	}
	late := &Call{}
	late.markDone()
	select {
	case <-late.doneChan():
	default:
		t.Fatal("a channel made after the call was done is not closed")
	}
}

// A media state change (a latch, DTLS up) is noted for the next
// replication only when calls are replicated: without replication a call
// keeps no replica state (0.5 kB each).
func TestNoReplicaStateWithoutReplication(t *testing.T) {
	c := &Call{s: &Server{}}
	c.onMediaEvent(media.Event{Kind: media.EventState})
	if c.repl != nil {
		t.Fatalf("replica state %+v kept without replication", c.repl)
	}
	c.s.hooks.Replicate = countingReplicator{}
	c.onMediaEvent(media.Event{Kind: media.EventState})
	if c.repl == nil || c.repl.mediaGen != 1 {
		t.Fatalf("with replication: replica state %+v, want the change noted", c.repl)
	}
}

type countingReplicator struct{}

func (countingReplicator) Save(string, []byte) {}
func (countingReplicator) Forget(string)       {}

// A Call fits the 896-byte size class (1,256 bytes, in the 1,280
// class, before its 100rel state went behind a pointer, made only for
// calls with reliable provisionals, and its flags were packed together;
// 1,152 before its record left the media counters to the ended record;
// 992, in the 1,024 class, before what only its setup needs went into a
// callSetup let go when answered: TestAnsweredCallLetsSetupGo).
func TestCallSizeClass(t *testing.T) {
	if got := unsafe.Sizeof(Call{}); got > 896 {
		t.Fatalf("a Call is %d bytes, more than the 896-byte size class", got)
	}
}

// An answered call keeps nothing of its search for the callee: the
// callSetup, with the caller's media options, destinations left and the
// number dialed, is let go.
func TestAnsweredCallLetsSetupGo(t *testing.T) {
	h := newCallHarness(t, nil)
	h.answered(t)
	legs := legsOf(h.s)
	got := make(chan bool, 1)
	legs["a"][0].call.post(event{kind: evFunc, fn: func(c *Call) { got <- c.setup == nil }})
	select {
	case gone := <-got:
		if !gone {
			t.Error("the answered call keeps its setup")
		}
	case <-time.After(wait):
		t.Fatal("the call did not run the check")
	}
}

// A leg fits the 384-byte size class (408 bytes, in the 416 class, with
// its name a field of its own beside its side and its flags apart):
// every call has two.
func TestLegSizeClass(t *testing.T) {
	if got := unsafe.Sizeof(leg{}); got > 384 {
		t.Fatalf("a leg is %d bytes, more than the 384-byte size class", got)
	}
}

// A call's record has every field of the outcome's but the media
// counters, in the same order and of the same types, and gives them
// back: a field added to outcome.CallRecord fails here until the call
// keeps it too (record.go).
func TestCallRecordMirrorsOutcome(t *testing.T) {
	want := reflect.TypeOf(outcome.CallRecord{})
	got := reflect.TypeOf(callRecord{})
	var names []string
	for i := range want.NumField() {
		if f := want.Field(i); f.Name != "Media" {
			names = append(names, f.Name)
		}
	}
	if got.NumField() != len(names) {
		t.Fatalf("callRecord has %d fields, outcome.CallRecord %d besides Media", got.NumField(), len(names))
	}
	for i, name := range names {
		g, _ := want.FieldByName(name)
		if f := got.Field(i); f.Name != name || f.Type != g.Type {
			t.Errorf("field %d: %s %s, want %s %s", i, f.Name, f.Type, name, g.Type)
		}
	}
	// Every field set, so that a field full or ownRecord forgets shows.
	var rec outcome.CallRecord
	v := reflect.ValueOf(&rec).Elem()
	for i := range v.NumField() {
		switch f := v.Field(i); f.Kind() {
		case reflect.String:
			f.SetString(want.Field(i).Name)
		case reflect.Int:
			f.SetInt(int64(i))
		case reflect.Bool:
			f.SetBool(true)
		case reflect.Struct:
			if f.Type() == reflect.TypeOf(time.Time{}) {
				f.Set(reflect.ValueOf(time.Unix(int64(i), 0).UTC()))
			}
		}
	}
	rec.Media.AtoB.Packets = 7
	own := ownRecord(rec)
	back := own.withMedia(rec.Media)
	if back != rec {
		t.Errorf("given back as\n%+v\nwant\n%+v", back, rec)
	}
	rec.Media = outcome.Media{}
	if full := own.full(); full != rec {
		t.Errorf("full:\n%+v\nwant\n%+v", full, rec)
	}
}

// sharingMedia returns bodies of its own, which the test finds again in
// the legs.
type sharingMedia struct {
	fakeMedia
	offer, answer []byte
}

func (m *sharingMedia) Offer(media.Side, []byte) ([]byte, error)  { return m.offer, nil }
func (m *sharingMedia) Answer(media.Side, []byte) ([]byte, error) { return m.answer, nil }

// The SDP a leg last sent is the media session's body itself, not a copy
// of it (a second copy of each side's SDP for the call's life).
func TestLegsKeepTheMediaBodies(t *testing.T) {
	h := newCallHarness(t, nil)
	m := &sharingMedia{offer: []byte(callerSDP), answer: []byte(strings.Replace(callerSDP, "192.0.2.10", "192.0.2.11", 2))}
	h.s.hooks.Media = func(string) (MediaSession, error) { return m, nil }
	h.answered(t)
	legs := legsOf(h.s)
	got := make(chan [2]string, 1)
	legs["a"][0].call.post(event{kind: evFunc, fn: func(c *Call) { got <- [2]string{c.a.lastSDPOut, c.b.lastSDPOut} }})
	var out [2]string
	select {
	case out = <-got:
	case <-time.After(wait):
		t.Fatal("the call did not run the check")
	}
	if out[0] != string(m.answer) || unsafe.StringData(out[0]) != &m.answer[0] {
		t.Errorf("leg A's last SDP %q is not the media's answer itself", out[0])
	}
	if out[1] != string(m.offer) || unsafe.StringData(out[1]) != &m.offer[0] {
		t.Errorf("leg B's last SDP %q is not the media's offer itself", out[1])
	}
}

// A call's response handlers are a slice, not the two maps they were
// (one entry each kept 0.22 kB a call for 64*T1 after the answer): found
// by transaction, final or not, and let go with the last.
func TestTxHandlersLetGo(t *testing.T) {
	var hs txHandlers
	a, b := &hereTx{n: 1}, &hereTx{n: 2}
	hs = append(hs, txHandler{tx: a, f: func(sip.Response) {}}, txHandler{tx: b, f: func(sip.Response) {}, final: true})
	if hs.index(a) != 0 || hs.index(b) != 1 || hs.index(&hereTx{n: 1}) != -1 {
		t.Fatalf("index a %d, b %d", hs.index(a), hs.index(b))
	}
	if !hs.any(true) || !hs.any(false) {
		t.Fatal("a final and a waiting handler not both seen")
	}
	hs.drop(hs.index(b))
	if hs.any(true) || len(hs) != 1 {
		t.Fatalf("after dropping the final one: %d left, a final one %v", len(hs), hs.any(true))
	}
	hs.drop(hs.index(a))
	if hs != nil {
		t.Fatal("the emptied handlers are kept")
	}
	if got := unsafe.Sizeof(txHandler{}); got > 32 {
		t.Fatalf("a handler is %d bytes, more than 32", got)
	}
}

// An attempt that had its final response keeps neither its INVITE nor
// its destination's URIs, which its handler keeps for 64*T1 after the
// answer; the destination's name stays (logs, records).
func TestSettledAttemptLetsURIsGo(t *testing.T) {
	u := &sip.SipUri{FHost: "pbx.example.com"}
	at := &attempt{dest: dest{name: "pbx", ruri: u, aor: u}, req: sip.NewRequest("", sip.INVITE, u, "SIP/2.0", nil, "", nil)}
	at.settle()
	if at.req != nil || at.dest.ruri != nil || at.dest.aor != nil {
		t.Fatalf("a settled attempt keeps request %v, ruri %v, aor %v", at.req != nil, at.dest.ruri, at.dest.aor)
	}
	if at.dest.name != "pbx" {
		t.Fatalf("destination name %q, want pbx", at.dest.name)
	}
}
