package media

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"
)

// Addresses of this file's tests (127.0.10.0/24): the SBC's media address
// and the two phones.
var (
	scopeSBC = netip.MustParseAddr("127.0.10.1")
	scopeA   = "127.0.10.2"
	scopeB   = "127.0.10.3"
)

// countingHandler counts WithAttrs calls on the handler it wraps, the
// call that makes a text or JSON handler format attributes ahead.
type countingHandler struct {
	slog.Handler
	withAttrs *atomic.Int32
}

func (h countingHandler) WithAttrs(as []slog.Attr) slog.Handler {
	h.withAttrs.Add(1)
	return countingHandler{h.Handler.WithAttrs(as), h.withAttrs}
}

// lockedBuffer is a log destination safe for the poll loops' lines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// scopeCall is setupCall on 127.0.10.x with a manager logging to out at
// level.
func scopeCall(t *testing.T, level *slog.LevelVar, out *lockedBuffer, withAttrs *atomic.Int32) *call {
	t.Helper()
	h := countingHandler{slog.NewTextHandler(out, &slog.HandlerOptions{Level: level}), withAttrs}
	return scopeSession(t, scopeManager(t, slog.New(h)), "call-scope")
}

// scopeManager is a manager on 127.0.10.1 with a fresh port range.
func scopeManager(t *testing.T, log *slog.Logger) *Manager {
	t.Helper()
	min, max := freeRange(t, 8)
	m, err := NewManager(Config{Addrs: []Addr{{Bind: scopeSBC}}, PortMin: min, PortMax: max,
		Quarantine: time.Nanosecond}, log)
	if err != nil {
		t.Fatalf("NewManager: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// scopeSession is a session of m with phones on 127.0.10.2 and .3, after
// an offer from A and an answer from B with their SDPs plus extra lines.
func scopeSession(t *testing.T, m *Manager, id string, extra ...string) *call {
	t.Helper()
	c := &call{s: m.NewSession(id), a: newPeerAt(t, scopeA, true), b: newPeerAt(t, scopeB, true)}
	t.Cleanup(c.s.Close)
	toB, err := c.s.Offer(SideA, c.a.sdp(extra...))
	if err != nil {
		t.Fatalf("Offer: %v", err)
	}
	toA, err := c.s.Answer(SideB, c.b.sdp(extra...))
	if err != nil {
		t.Fatalf("Answer: %v", err)
	}
	c.portA, c.portB = mPort(t, toA, 0), mPort(t, toB, 0)
	return c
}

// relayOne sends one RTP packet from A and waits for it at B.
func (c *call) relayOne(t *testing.T, seq uint16) {
	t.Helper()
	sendTo(t, c.a.rtp, rtpPacket(seq), netip.AddrPortFrom(scopeSBC, uint16(c.portA)))
	recv(t, c.b.rtp)
}

// A session, its stream and the sockets facing each side keep no logger
// formatted ahead: the manager's handler formats nothing until a line is
// written (a Logger.With per session, stream and side did, some 0.8 kB a
// call).
func TestSessionFormatsNoLoggerAhead(t *testing.T) {
	var level slog.LevelVar
	level.Set(slog.LevelInfo)
	var withAttrs atomic.Int32
	c := scopeCall(t, &level, &lockedBuffer{}, &withAttrs)
	c.relayOne(t, 1) // latches A's source: a line at Debug, not written
	if n := withAttrs.Load(); n != 0 {
		t.Fatalf("the manager's handler formatted attributes %d times for a call that logged nothing", n)
	}
}

// The lines a session writes carry call_id, then mline and side where
// they concern one, as the loggers made with Logger.With wrote them.
func TestSessionLinesKeepTheirScope(t *testing.T) {
	var level slog.LevelVar
	level.Set(slog.LevelDebug)
	var out lockedBuffer
	c := scopeCall(t, &level, &out, new(atomic.Int32))
	c.relayOne(t, 1)
	for _, want := range []string{
		`msg="media stream opened" call_id=call-scope mline=0 kind_a=rtp kind_b=rtp`,
		`msg="media source latched" call_id=call-scope mline=0 side=A port=`,
	} {
		waitFor(t, want, func() bool { return strings.Contains(out.String(), want) })
	}
	c.s.Stop()
	if want := `msg="media session stopped" call_id=call-scope`; !strings.Contains(out.String(), want+"\n") {
		t.Fatalf("no line %q in:\n%s", want, out.String())
	}
}

// A scope's WithAttrs (pion's loggers under a WebRTC side) keeps the
// scope's attributes before the new ones.
func TestScopeWithAttrs(t *testing.T) {
	var out bytes.Buffer
	h := slog.NewTextHandler(&out, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		}})
	sc := &scope{h: h, id: "c1", mline: -1, side: SideB}
	slog.New(sc).With("pion", "ice").Log(context.Background(), slog.LevelWarn, "x")
	if got, want := out.String(), "level=WARN msg=x call_id=c1 side=B pion=ice\n"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

// A session keeps the counters of its closed streams only once one has
// closed (most calls close none before they end), and its Stats still
// count what a stream relayed before an offer disabled it.
func TestRetiredCountersKept(t *testing.T) {
	var level slog.LevelVar
	level.Set(slog.LevelInfo)
	c := scopeCall(t, &level, &lockedBuffer{}, new(atomic.Int32))
	a2, b2 := newPeerAt(t, scopeA, true), newPeerAt(t, scopeB, true)
	second := func(port int) []byte {
		return []byte("m=audio " + strconv.Itoa(port) + " RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n")
	}
	if _, err := c.s.Offer(SideA, append(c.a.sdp(), second(portOfConn(a2.rtp))...)); err != nil {
		t.Fatalf("Offer of two streams: %v", err)
	}
	toA, err := c.s.Answer(SideB, append(c.b.sdp(), second(portOfConn(b2.rtp))...))
	if err != nil {
		t.Fatalf("Answer: %v", err)
	}
	sbc2 := netip.AddrPortFrom(scopeSBC, uint16(mPort(t, toA, 1)))
	for i := range 3 {
		sendTo(t, a2.rtp, rtpPacket(uint16(i)), sbc2)
		recv(t, b2.rtp)
	}
	c.s.mu.Lock()
	kept := c.s.retired
	c.s.mu.Unlock()
	if kept != nil {
		t.Fatalf("a session with no closed stream keeps retired counters: %+v", kept)
	}
	if _, err := c.s.Offer(SideA, append(c.a.sdp(), second(0)...)); err != nil {
		t.Fatalf("Offer disabling the second stream: %v", err)
	}
	if _, err := c.s.Answer(SideB, append(c.b.sdp(), second(0)...)); err != nil {
		t.Fatalf("Answer: %v", err)
	}
	if got := c.s.Stats().AtoB.Packets; got != 3 {
		t.Fatalf("A→B packets after the stream closed: %d, want 3", got)
	}
}

// plansOf returns the plans of the first stream's flows, A→B and B→A.
func plansOf(c *call) [2]*flowPlan {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	st := c.s.streams[0]
	return [2]*flowPlan{st.flows[SideA].plan.Load(), st.flows[SideB].plan.Load()}
}

// Calls that negotiate the same codecs share their flows' plans; a call
// that negotiates others has its own, and each relays with its plan.
func TestFlowPlansShared(t *testing.T) {
	m := scopeManager(t, slog.New(slog.DiscardHandler))
	one, two := scopeSession(t, m, "plan-1"), scopeSession(t, m, "plan-2")
	// DTMF as SIP INFO toward A: the plan B→A differs.
	other := m.NewSession("plan-3")
	t.Cleanup(other.Close)
	other.Configure(SideA, SideOptions{DTMFInfo: true})
	pa, pb := newPeerAt(t, scopeA, true), newPeerAt(t, scopeB, true)
	if _, err := other.Offer(SideA, pa.sdp()); err != nil {
		t.Fatal(err)
	}
	if _, err := other.Answer(SideB, pb.sdp()); err != nil {
		t.Fatal(err)
	}
	p1, p2, p3 := plansOf(one), plansOf(two), plansOf(&call{s: other})
	if p1 != p2 {
		t.Fatalf("two calls with the same codecs have plans %p and %p, want shared", p1, p2)
	}
	if p1[0] == initialPlan || p1[0].eventPT != 101 || p1[0].clockRate != 8000 {
		t.Fatalf("plan A→B %+v is not the negotiated one", *p1[0])
	}
	if p3[0] != p1[0] || p3[1] == p1[1] || !p3[1].toInfo || p1[1].toInfo {
		t.Fatalf("plans of the call with INFO toward A: %p %p (others %p %p)", p3[0], p3[1], p1[0], p1[1])
	}
	one.relayOne(t, 1)
	two.relayOne(t, 1)
}

// A manager keeps at most maxPlans plans to share; past it a flow gets
// a plan of its own, equal to what it asked for.
func TestPlanCacheBounded(t *testing.T) {
	var c planCache
	for i := range maxPlans + 10 {
		p := flowPlan{clockRate: uint32(i), codec: "PCMU"}
		if got := c.intern(p); *got != p {
			t.Fatalf("intern returned %+v, want %+v", *got, p)
		}
	}
	if len(c.m) != maxPlans {
		t.Fatalf("%d plans kept, want the bound %d", len(c.m), maxPlans)
	}
	if a, b := c.intern(flowPlan{clockRate: 1, codec: "PCMU"}), c.intern(flowPlan{clockRate: 1, codec: "PCMU"}); a != b {
		t.Fatal("an equal plan already kept was not shared")
	}
}

// A Session fits the 704-byte size class (872 bytes, in the 896 class,
// before the address a restored session may need went behind a pointer
// and its flags were packed together; 768 before the SDP bodies kept
// for State went apart): every call has one.
func TestSessionSizeClass(t *testing.T) {
	if got := unsafe.Sizeof(Session{}); got > 704 {
		t.Fatalf("a Session is %d bytes, more than the 704-byte size class", got)
	}
}

// A session makes the channel Stop closes only for its first playback or
// DTMF injection (most calls have neither): an answered call's session
// has none, and Stop does without it.
func TestSessionStopChannelOnDemand(t *testing.T) {
	c := scopeSession(t, scopeManager(t, slog.New(slog.DiscardHandler)), "call-stop")
	c.s.mu.Lock()
	made := c.s.stop != nil
	c.s.mu.Unlock()
	if made {
		t.Error("an answered call's session made its stop channel before any playback or digit")
	}
	c.s.Stop()
	if _, err := c.s.Play(SideA, nil); !errors.Is(err, ErrClosed) {
		t.Errorf("Play after Stop: %v, want ErrClosed", err)
	}
}

// With nobody taking its State (Config.NoState: calls not replicated),
// an answered session keeps no copy of the SDP bodies and arms no
// periodic EventState; with the zero value it keeps both, for State.
func TestNoStateKeepsNoBodiesNorTick(t *testing.T) {
	for _, noState := range []bool{false, true} {
		min, max := freeRange(t, 8)
		m, err := NewManager(Config{Addrs: []Addr{{Bind: scopeSBC}}, PortMin: min, PortMax: max,
			Quarantine: time.Nanosecond, NoState: noState}, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatalf("NewManager: %v", err)
		}
		c := scopeSession(t, m, "call-nostate")
		c.s.mu.Lock()
		bodies, tick := c.s.lastBody(SideA) != nil && c.s.lastBody(SideB) != nil, c.s.stateTick != nil
		made := c.s.bodies != nil
		c.s.mu.Unlock()
		if bodies == noState || tick == noState || made == noState {
			t.Errorf("NoState %v: bodies kept %v (made %v), state tick %v; want %v", noState, bodies, made, tick, !noState)
		}
		c.s.Close()
		m.Close()
	}
}

// The body Offer returns is the one the session keeps as sent, not a
// copy (the B2BUA keeps it as the leg's last SDP), and a later offer
// that changes it leaves the body handed out before as it was.
func TestSentBodiesShared(t *testing.T) {
	m := newTestManager(t, 4, public, nil)
	s := m.NewSession("call-shared")
	defer s.Close()
	out, err := s.Offer(SideA, sipSDP("192.0.2.10", 49170))
	if err != nil {
		t.Fatalf("Offer: %v", err)
	}
	before := string(out)
	s.mu.Lock()
	kept := s.sent[SideB].body
	s.mu.Unlock()
	if len(out) == 0 || &out[0] != &kept[0] {
		t.Fatal("Offer returned a copy of the body it keeps")
	}
	again, err := s.Offer(SideA, sipSDP("192.0.2.10", 49170, "a=sendonly"))
	if err != nil {
		t.Fatalf("re-Offer: %v", err)
	}
	if string(out) != before || string(again) == before {
		t.Fatalf("a changed re-offer changed the body handed out before (or was the same):\n%s\n%s", out, again)
	}
}

// A session's watchdog keeps no timer of its own: the manager polls
// every session on one (watchdog.go), so arming one allocates nothing
// (a time.AfterFunc and its method value were 0.15 kB a call).
func TestWatchdogArmAllocatesNothing(t *testing.T) {
	m := newTestManager(t, 2, netip.Addr{}, func(c *Config) { c.Timeout = time.Hour })
	defer m.Close()
	s := m.NewSession("watch")
	defer s.Close()
	kept := make([]*watchdog, 0, 32)
	allocs := testing.AllocsPerRun(20, func() {
		w := new(watchdog)
		s.mu.Lock()
		w.arm(s)
		s.mu.Unlock()
		kept = append(kept, w)
	})
	for _, w := range kept {
		w.stop()
	}
	// new(watchdog) is the test's own.
	if allocs > 1 {
		t.Fatalf("arming a watchdog allocates %.0f times, want none of its own", allocs)
	}
}

// sinkEnd is an endpoint that takes every packet sent through it.
type sinkEnd struct{ endpoint }

func (sinkEnd) sendRTP([]byte, out) bool { return true }

// A flow reports its milestones and the digits it takes out of the
// stream to its session, as events from its source side, and holds no
// closure for that (two a flow were 112 bytes a call); a restored
// (quiet) flow reports no milestone.
func TestFlowReportsToItsSession(t *testing.T) {
	rt := reflect.TypeOf(flow{})
	for i := range rt.NumField() {
		if f := rt.Field(i); f.Type.Kind() == reflect.Func {
			t.Errorf("a flow holds a func (%s): an allocation a flow", f.Name)
		}
	}
	s := &Session{}
	got := make(chan Event, 4)
	s.Notify(func(ev Event) { got <- ev })
	pkt := []byte{0x80, 0, 0, 1, 0, 0, 0, 160, 0, 0, 0, 7, 0xff, 0xff}
	quiet := newFlow(sinkEnd{}, 1)
	quiet.s, quiet.from, quiet.quiet = s, uint8(SideA), true
	quiet.rtp(append([]byte(nil), pkt...))
	f := newFlow(sinkEnd{}, 2)
	f.s, f.from = s, uint8(SideB)
	f.rtp(append([]byte(nil), pkt...))
	select {
	case ev := <-got:
		if ev.Kind != EventFirstRTP || ev.From != SideB {
			t.Fatalf("event %v from %v, want the first RTP from b", ev.Kind, ev.From)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no event for the flow's first RTP")
	}
	s.tasks.Wait()
	if len(got) != 0 {
		t.Fatalf("%d more events, want none from the quiet flow", len(got))
	}
}

// A socket keeps neither a logger nor a callback (a logger and its
// scope a side, two closures a side: with its 64-byte class, 0.29 kB a
// call): it reports its latches to its session itself, the RTP socket's
// as EventLatched or EventRelatched from its side, both as EventState.
func TestSockReportsToItsSession(t *testing.T) {
	rt := reflect.TypeOf(sock{})
	for i := range rt.NumField() {
		f := rt.Field(i)
		if f.Type.Kind() == reflect.Func || f.Type == reflect.TypeOf((*slog.Logger)(nil)) {
			t.Errorf("a socket keeps %s (%s)", f.Name, f.Type)
		}
	}
	if got := unsafe.Sizeof(sock{}); got > 48 {
		t.Errorf("a socket is %d bytes, more than the 48-byte size class", got)
	}
	m := newTestManager(t, 2, netip.Addr{}, nil)
	defer m.Close()
	s := m.NewSession("sock")
	defer s.Close()
	var mu sync.Mutex
	var got []Event
	s.Notify(func(ev Event) {
		mu.Lock()
		got = append(got, ev)
		mu.Unlock()
	})
	src := netip.MustParseAddrPort("127.0.10.2:4000")
	at := endAt{s: s, mline: 0, side: SideB}
	rtp, rtcp := newSock(nil, 1, netip.Addr{}, at, false), newSock(nil, 2, netip.Addr{}, at, true)
	if !rtp.latch(rtp.dst.Load(), src) || !rtcp.latch(rtcp.dst.Load(), src) {
		t.Fatal("a latch failed")
	}
	s.tasks.Wait()
	var latched, state int
	for _, ev := range got {
		switch ev.Kind {
		case EventLatched:
			latched++
			if ev.From != SideB || ev.Source != src {
				t.Errorf("latched from %v at %v, want b at %v", ev.From, ev.Source, src)
			}
		case EventState:
			state++
		}
	}
	if latched != 1 || state != 2 {
		t.Fatalf("%d latch and %d state events, want 1 and 2", latched, state)
	}
}

// A reader keeps what SDES decryption takes (a packet buffer's slice,
// an RTP and an RTCP header: 118 bytes) apart, made only for an SDES
// endpoint's (TestSDESTrunk and the other SDES tests decrypt through
// it): a plain one is 80 bytes, not 192, and a call has four.
func TestReaderSizeClass(t *testing.T) {
	if got := unsafe.Sizeof(reader{}); got > 80 {
		t.Fatalf("a reader is %d bytes, more than the 80-byte size class", got)
	}
}
