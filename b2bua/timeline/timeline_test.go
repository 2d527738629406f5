package timeline

import (
	"encoding/json"
	"fmt"
	"math"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
	"unsafe"
	"weak"
)

func TestEventSize(t *testing.T) {
	// The README and BENCHMARKS.md state a call's bound from this size.
	if got := unsafe.Sizeof(slot{}); got != 24 {
		t.Fatalf("an event's slot is %d bytes, documented as 24", got)
	}
	if got := unsafe.Sizeof(extra{}); got != 96 {
		t.Fatalf("an event's details are %d bytes, documented as 96", got)
	}
	if got := unsafe.Sizeof(qsample{}); got != 24 {
		t.Fatalf("a quality sample is %d bytes, documented as 24", got)
	}
	// Every call has one: the 240-byte size class, not 288.
	if got := unsafe.Sizeof(Timeline{}); got > 240 {
		t.Fatalf("a Timeline is %d bytes, more than the 240-byte size class", got)
	}
}

// Every id a timeline was found by goes with it: its own, its CDR id,
// its first callee Call-ID and the others (a transfer's legs, records),
// but not one a later call took.
func TestForgetEveryID(t *testing.T) {
	s := NewStore(Spec{Keep: 1, MaxEvents: 10})
	old := s.Start("a", "cdr", time.Now(), false)
	for _, al := range []struct {
		id  string
		leg Leg
	}{{"b", LegB}, {"b2", LegB}, {"x", LegA}, {"cdr2", LegNone}, {"b", LegB}} {
		s.Alias(old, al.id, al.leg)
	}
	if v := old.View(); v.BCallID != "b" {
		t.Fatalf("b_call_id %q, want the first callee's", v.BCallID)
	}
	s.End(old, time.Now())
	next := s.Start("a2", "cdr-next", time.Now(), false)
	s.Alias(next, "b2", LegB) // a reused Call-ID
	s.End(next, time.Now())   // evicts old
	for _, id := range []string{"a", "cdr", "b", "x", "cdr2"} {
		if _, ok := s.Find(id); ok {
			t.Errorf("%s still found after its call was evicted", id)
		}
	}
	if tl, ok := s.Find("b2"); !ok || tl != next {
		t.Errorf("b2, taken by the later call, found %v %v", tl == next, ok)
	}
	if n := len(s.ids); n != 3 {
		t.Errorf("%d ids indexed, want the later call's 3", n)
	}
}

// A name outside the table (an unusual SIP method) is shown as given,
// with and without details and a traced text; a known one with its
// details.
func TestOddNames(t *testing.T) {
	s := NewStore(Spec{Keep: 1, MaxEvents: 10})
	tl := s.Start("a", "cdr", time.Unix(0, 1000), false)
	tl.Add(Event{At: 2000, Kind: KindSIP, Leg: LegA, Dir: DirIn, What: "FROB"})
	tl.Add(Event{At: 3000, Kind: KindSIP, Leg: LegA, Dir: DirOut, Code: 501, What: "FROB", Text: "SIP/2.0 501 Not Implemented\r\n"})
	tl.Add(Event{At: 4000, Kind: KindMedia, What: "odd-thing", Shape: ShapeFrom, S: [3]string{"b"}})
	tl.Add(Event{At: 5000, Kind: KindMedia, What: "first-rtp", Shape: ShapeFrom, S: [3]string{"b"}})
	tl.Add(Event{At: 6000, Kind: KindMedia, What: "ssrc-switch", Shape: ShapeSSRC, S: [3]string{"a"}, N: [4]float64{1, 2}})
	ev := tl.View().Events
	want := []string{"FROB", "501 FROB", "odd-thing", "first-rtp", "ssrc-switch"}
	if len(ev) != len(want) {
		t.Fatalf("%d events, want %d: %+v", len(ev), len(want), ev)
	}
	for i, w := range want {
		if ev[i].What != w {
			t.Errorf("event %d: what %q, want %q", i, ev[i].What, w)
		}
	}
	if ev[0].Text != "" || ev[1].Text != "SIP/2.0 501 Not Implemented\r\n" {
		t.Errorf("texts %q %q, want none and the message", ev[0].Text, ev[1].Text)
	}
	if ev[2].Detail["from"] != "b" || ev[3].Detail["from"] != "b" || ev[4].Detail["ssrc"] != 2.0 || ev[4].Detail["from"] != "a" {
		t.Errorf("details %v %v %v", ev[2].Detail, ev[3].Detail, ev[4].Detail)
	}
}

// A sample keeps the side it is from in its jitter's sign: a jitter of
// zero from B stays B's, and is shown as 0.
func TestSampleSides(t *testing.T) {
	for _, tc := range []struct {
		name string
		from Leg
		j    float64
	}{{"a, no jitter", LegA, 0}, {"b, no jitter", LegB, 0}, {"a", LegA, 2.5}, {"b", LegB, 2.5}} {
		q := packSample(1, tc.from, Sample{Packets: 3, JitterMs: tc.j, MOS: 4.1})
		ev := q.event()
		if ev.S[0] != tc.from.String() || ev.N[2] != tc.j || math.Signbit(ev.N[2]) || ev.N[0] != 3 || ev.N[3] != 4.1 {
			t.Errorf("%s: %+v", tc.name, ev)
		}
	}
}

func TestStoreKeepsLastEnded(t *testing.T) {
	const keep = 3
	s := NewStore(Spec{Keep: keep, MaxEvents: 10})
	start := time.Now()
	var tls []*Timeline
	for i := range keep + 1 {
		tl := s.Start("call-"+strconv.Itoa(i), "cdr-"+strconv.Itoa(i), start, false)
		s.Alias(tl, "b-"+strconv.Itoa(i), LegB)
		tls = append(tls, tl)
	}
	for i, tl := range tls {
		if _, ok := s.Find("b-" + strconv.Itoa(i)); !ok {
			t.Fatalf("live call %d not found by its callee Call-ID", i)
		}
		s.End(tl, start.Add(time.Second))
	}
	for _, id := range []string{"call-0", "cdr-0", "b-0"} {
		if _, ok := s.Find(id); ok {
			t.Errorf("%s found after %d later calls ended with keep %d", id, keep, keep)
		}
	}
	for i := 1; i <= keep; i++ {
		for _, id := range []string{"call-", "cdr-", "b-"} {
			tl, ok := s.Find(id + strconv.Itoa(i))
			if !ok {
				t.Fatalf("%s%d not kept", id, i)
			}
			if v := tl.View(); v.Live || v.Ended == "" {
				t.Errorf("%s%d: live %v ended %q, want ended", id, i, v.Live, v.Ended)
			}
		}
	}
	if n := len(s.ids); n != 3*keep {
		t.Errorf("store indexes %d ids, want %d: evicted calls leak", n, 3*keep)
	}
}

func TestStoreKeepNone(t *testing.T) {
	s := NewStore(Spec{Keep: 0, MaxEvents: 10})
	tl := s.Start("a", "cdr", time.Now(), false)
	if _, ok := s.Find("cdr"); !ok {
		t.Fatal("live call not found")
	}
	s.End(tl, time.Now())
	if _, ok := s.Find("cdr"); ok || len(s.ids) != 0 {
		t.Fatal("ended call kept with keep 0")
	}
}

func TestTimelineKeepsHeadAndNewest(t *testing.T) {
	s := NewStore(Spec{Keep: 1, MaxEvents: 6})
	base := time.Unix(1000, 0)
	tl := s.Start("a", "cdr", base, false)
	for i := range 10 {
		tl.Add(Event{At: base.Add(time.Duration(i) * time.Millisecond).UnixNano(), Kind: KindMedia, What: strconv.Itoa(i)})
	}
	v := tl.View()
	var got []string
	for _, e := range v.Events {
		got = append(got, e.What)
	}
	want := []string{"0", "1", "2", "7", "8", "9"}
	if len(got) != len(want) {
		t.Fatalf("events %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("events %v, want %v", got, want)
		}
	}
	if v.Dropped != 4 {
		t.Errorf("dropped %d, want 4", v.Dropped)
	}
}

// Events with details and without, mixed, through the ring: each keeps
// its own details, and the details of the events the ring let go are
// reused, never more of them than events.
func TestRingKeepsEachEventsDetails(t *testing.T) {
	s := NewStore(Spec{Keep: 1, MaxEvents: 6})
	base := time.Unix(1000, 0)
	tl := s.Start("a", "cdr", base, false)
	for i := range 40 {
		ev := Event{At: base.Add(time.Duration(i) * time.Millisecond).UnixNano(), Kind: KindMedia, What: strconv.Itoa(i)}
		if i%3 != 0 {
			ev.Shape, ev.S[0], ev.N[0] = ShapeSSRC, "from-"+strconv.Itoa(i), float64(i)
		}
		tl.Add(ev)
	}
	v := tl.View()
	var got []string
	for _, e := range v.Events {
		d := ""
		if e.Detail != nil {
			d = fmt.Sprint(e.Detail["from"], "/", e.Detail["old_ssrc"])
		}
		got = append(got, e.What+":"+d)
	}
	want := "0: 1:from-1/1 2:from-2/2 37:from-37/37 38:from-38/38 39:"
	if strings.Join(got, " ") != want {
		t.Fatalf("events %q, want %q", strings.Join(got, " "), want)
	}
	tl.mu.Lock()
	defer tl.mu.Unlock()
	if n := len(tl.extras); n > 6 {
		t.Errorf("%d details kept for 6 events", n)
	}
}

func TestViewJSON(t *testing.T) {
	s := NewStore(Spec{Keep: 1, MaxEvents: 50})
	base := time.Unix(2000, 0)
	tl := s.Start("a-call", "cdr-1", base, false)
	s.Alias(tl, "b-call", LegB)
	// Added out of order: the view sorts by time.
	tl.Add(Event{At: base.Add(30 * time.Millisecond).UnixNano(), Kind: KindMedia, What: "dtmf", Shape: ShapeDTMF,
		S: [3]string{"a", Digit('5')}, N: [4]float64{120}})
	s.SIP("b-call", DirIn, "INVITE", 180, []byte("SIP/2.0 180 Ringing\r\n\r\n"))
	tl.SIP(LegA, DirIn, "INVITE", 0, nil)
	tl.Add(Event{At: base.Add(10 * time.Millisecond).UnixNano(), Kind: KindMedia, What: "ssrc-switch", Shape: ShapeSSRC,
		S: [3]string{"b"}, N: [4]float64{1, 4294967295}})
	raw, err := json.Marshal(tl)
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		ID      string `json:"id"`
		CDRID   string `json:"cdr_id"`
		ACallID string `json:"a_call_id"`
		BCallID string `json:"b_call_id"`
		Live    bool   `json:"live"`
		Events  []struct {
			Ms             float64
			Kind, Leg, Dir string
			What, Text     string
			Detail         map[string]any
		}
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	if v.ID != "cdr-1" || v.CDRID != "cdr-1" || v.ACallID != "a-call" || v.BCallID != "b-call" || !v.Live {
		t.Fatalf("header %+v", v)
	}
	if len(v.Events) != 4 {
		t.Fatalf("%d events: %s", len(v.Events), raw)
	}
	e := v.Events
	if e[0].What != "ssrc-switch" || e[0].Detail["ssrc"] != 4294967295.0 || e[0].Detail["old_ssrc"] != 1.0 || e[0].Ms != 10 {
		t.Errorf("first event %+v", e[0])
	}
	if e[1].What != "dtmf" || e[1].Detail["digit"] != "5" || e[1].Detail["from"] != "a" {
		t.Errorf("second event %+v", e[1])
	}
	if e[2].What != "180 INVITE" || e[2].Leg != "b" || e[2].Dir != "in" || e[2].Kind != "sip" || e[2].Text != "" {
		t.Errorf("third event %+v: an untraced call keeps no text", e[2])
	}
	if e[3].What != "INVITE" || e[3].Leg != "a" {
		t.Errorf("fourth event %+v", e[3])
	}
}

func TestTracedKeepsText(t *testing.T) {
	s := NewStore(Spec{Keep: 1, MaxEvents: 10})
	tl := s.Start("a", "cdr", time.Now(), true)
	msg := []byte("BYE sip:x SIP/2.0\r\n\r\n")
	s.SIP("a", DirOut, "BYE", 0, msg)
	msg[0] = 'X' // the caller's buffer goes back to a pool
	if ev := tl.View().Events; len(ev) != 1 || ev[0].Text != "BYE sip:x SIP/2.0\r\n\r\n" {
		t.Fatalf("events %+v", ev)
	}
}

func TestTextForEveryCall(t *testing.T) {
	s := NewStore(Spec{Keep: 2, MaxEvents: 10, Text: true})
	s.Start("a", "cdr-a", time.Now(), false)
	s.SetText(false)
	s.Start("b", "cdr-b", time.Now(), false)
	for _, tt := range []struct {
		id   string
		text string
	}{{"a", "INVITE x"}, {"b", ""}} {
		s.SIP(tt.id, DirIn, "INVITE", 0, []byte("INVITE x"))
		tl, _ := s.Find(tt.id)
		if ev := tl.View().Events; len(ev) != 1 || ev[0].Text != tt.text {
			t.Errorf("call %s: events %+v, want text %q", tt.id, ev, tt.text)
		}
	}
}

func TestNilTimeline(t *testing.T) {
	var s *Store
	tl := s.Start("a", "b", time.Now(), false)
	tl.Add(Event{})
	tl.SIP(LegA, DirIn, "INVITE", 0, nil)
	tl.Add(Event{Kind: KindMedia, What: "first-rtp"})
	tl.Quality()
	s.Alias(tl, "x", LegB)
	s.End(tl, time.Now())
	if _, ok := s.Find("a"); ok {
		t.Fatal("nil store found a call")
	}
}

func TestQualitySamples(t *testing.T) {
	s := NewStore(Spec{Keep: 1, MaxEvents: 10})
	tl := s.Start("a", "cdr", time.Now(), false)
	tl.SetSampler(func() (Sample, Sample, bool) {
		return Sample{Packets: 50, Lost: 1, JitterMs: 2.5, MOS: 4.3}, Sample{Packets: 49}, true
	})
	tl.Quality()
	ev := tl.View().Events
	if len(ev) != 2 || ev[0].Kind != "quality" || ev[0].What != "sample" || ev[0].Detail["from"] != "a" ||
		ev[0].Detail["packets"] != 50.0 || ev[0].Detail["mos"] != 4.3 || ev[1].Detail["from"] != "b" {
		t.Fatalf("samples %+v", ev)
	}
	s.End(tl, time.Now())
	tl.Quality()
	if n := len(tl.View().Events); n != 2 {
		t.Fatalf("%d events: an ended call took a sample", n)
	}
}

func TestAddAllocs(t *testing.T) {
	if raceOn {
		t.Skip("allocation counts differ under -race")
	}
	s := NewStore(Spec{Keep: 1, MaxEvents: 64})
	tl := s.Start("a", "cdr", time.Now(), false)
	s.Alias(tl, "b", LegB)
	for range 64 { // grown to its bound: appends are amortized, the ring reuses
		s.SIP("b", DirIn, "INVITE", 200, nil)
	}
	if n := testing.AllocsPerRun(100, func() {
		s.SIP("b", DirIn, "INVITE", 200, []byte("x"))
		tl.Add(Event{Kind: KindMedia, What: "ssrc-switch", Shape: ShapeSSRC, S: [3]string{"b"}, N: [4]float64{1, 2}})
	}); n != 0 {
		t.Fatalf("recording allocates %v times", n)
	}
}

// Quality samples are bounded apart from the events: a long call keeps
// its first samples and the newest, and its setup events stay.
func TestSamplesBoundedApart(t *testing.T) {
	s := NewStore(Spec{Keep: 1, MaxEvents: 4})
	tl := s.Start("a", "cdr", time.Now(), false)
	tl.SIP(LegA, DirIn, "INVITE", 0, nil)
	n := uint64(0)
	tl.SetSampler(func() (Sample, Sample, bool) {
		n++
		return Sample{Packets: n, JitterMs: 0.42}, Sample{Packets: n}, true
	})
	for range 5 {
		tl.Quality()
	}
	v := tl.View()
	var got []string
	for _, e := range v.Events {
		if e.Kind == "quality" {
			got = append(got, fmt.Sprint(e.Detail["from"], e.Detail["packets"]))
		} else {
			got = append(got, e.What)
		}
	}
	if want := "INVITE a1 b1 a5 b5"; strings.Join(got, " ") != want {
		t.Fatalf("events %q, want %q", strings.Join(got, " "), want)
	}
	if v.Dropped != 6 {
		t.Errorf("dropped %d, want 6", v.Dropped)
	}
	if j := v.Events[1].Detail["jitter_ms"]; j != 0.42 {
		t.Errorf("jitter_ms %v, want 0.42 as given", j)
	}
}

// A SIP event's method does not hold the datagram it came in: a parsed
// message's strings point into it (sipmsg.ParseOwned), and a timeline
// lives as long as its call and after.
func TestSIPEventLetsDatagramGo(t *testing.T) {
	s := NewStore(Spec{Keep: 1, MaxEvents: 10})
	invite := []byte("INVITE sip:bob@example.com SIP/2.0\r\nCall-ID: call-1@example.com\r\n")
	heldInvite := weak.Make(&invite[0])
	at := len("INVITE sip:bob@example.com SIP/2.0\r\nCall-ID: ")
	tl := s.Start(unsafe.String(&invite[at], len("call-1@example.com")), "cdr", time.Now(), false)
	invite = nil
	for _, method := range []string{"INVITE", "X-OWN"} {
		data := []byte(method + " sip:bob@example.com SIP/2.0\r\n" + strings.Repeat("x", 600))
		held := weak.Make(&data[0])
		tl.SIP(LegA, DirIn, unsafe.String(&data[0], len(method)), 0, data)
		data = nil
		for range 3 {
			runtime.GC()
		}
		if held.Value() != nil {
			t.Fatalf("%s: the datagram is still reachable from the timeline", method)
		}
	}
	s.End(tl, time.Now())
	if heldInvite.Value() != nil {
		t.Fatal("the INVITE's datagram is still reachable from the store through its Call-ID")
	}
	runtime.GC()
	if got, ok := s.Find("call-1@example.com"); !ok || got != tl {
		t.Fatal("the ended call is not found by its Call-ID")
	}
	var got []string
	for _, e := range tl.View().Events {
		got = append(got, e.What)
	}
	if strings.Join(got, " ") != "INVITE X-OWN" {
		t.Fatalf("events %v", got)
	}
}

// Events whose only detail is the side media came from (first RTP, ICE,
// hold: S[0] "a" or "b") keep it in their slot: no details kept apart,
// and the view shows the same "from" as for details kept apart.
func TestFromOnlyEventsKeepNoDetails(t *testing.T) {
	s := NewStore(Spec{Keep: 1, MaxEvents: 20})
	base := time.Unix(3000, 0)
	tl := s.Start("a-from", "cdr-from", base, false)
	add := func(ms int, what string, sh Shape, str [3]string) {
		tl.Add(Event{At: base.Add(time.Duration(ms) * time.Millisecond).UnixNano(), Kind: KindMedia, What: what, Shape: sh, S: str})
	}
	add(1, "first-rtp", ShapeFrom, [3]string{"a"})
	add(2, "first-rtp", ShapeFrom, [3]string{"b"})
	add(3, "hold", ShapeFrom, [3]string{"b"})
	add(4, "latched", ShapeLatch, [3]string{"a", "192.0.2.1:4000"})
	add(5, "odd", ShapeFrom, [3]string{"c"})
	tl.mu.Lock()
	kept := len(tl.extras)
	tl.mu.Unlock()
	if kept != 2 {
		t.Errorf("%d events' details kept apart, want 2 (latched, and a from naming no leg)", kept)
	}
	var got []string
	for _, e := range tl.View().Events {
		got = append(got, fmt.Sprint(e.What, ":", e.Detail["from"], "/", e.Detail["source"]))
	}
	want := "first-rtp:a/<nil> first-rtp:b/<nil> hold:b/<nil> latched:a/192.0.2.1:4000 odd:c/<nil>"
	if strings.Join(got, " ") != want {
		t.Fatalf("events %q, want %q", strings.Join(got, " "), want)
	}
}
