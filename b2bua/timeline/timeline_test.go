package timeline

import (
	"encoding/json"
	"strconv"
	"testing"
	"time"
	"unsafe"
)

func TestEventSize(t *testing.T) {
	// The README and BENCHMARKS.md state a call's bound from this size.
	if got := unsafe.Sizeof(Event{}); got != 128 {
		t.Fatalf("Event is %d bytes, documented as 128", got)
	}
}

func TestStoreKeepsLastEnded(t *testing.T) {
	const keep = 3
	s := NewStore(Spec{Keep: keep, MaxEvents: 10})
	start := time.Now()
	var tls []*Timeline
	for i := range keep + 1 {
		tl := s.Start("call-"+strconv.Itoa(i), "cdr-"+strconv.Itoa(i), start, false)
		s.Alias(tl, "b-"+strconv.Itoa(i))
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

func TestViewJSON(t *testing.T) {
	s := NewStore(Spec{Keep: 1, MaxEvents: 50})
	base := time.Unix(2000, 0)
	tl := s.Start("a-call", "cdr-1", base, false)
	s.Alias(tl, "b-call")
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

func TestNilTimeline(t *testing.T) {
	var s *Store
	tl := s.Start("a", "b", time.Now(), false)
	tl.Add(Event{})
	tl.SIP(LegA, DirIn, "INVITE", 0, nil)
	tl.Add(Event{Kind: KindMedia, What: "first-rtp"})
	tl.Quality()
	s.Alias(tl, "x")
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
	s.Alias(tl, "b")
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
