package timeline

import (
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// firstCap is the capacity a timeline's events start with: a short call's
// setup and end fit without growing.
const firstCap = 16

// firstExtras is the capacity a timeline's event details start with: a
// relayed call's attempt, latches and end fit (its media events that
// only name their side need none).
const firstExtras = 4

// epoch is when the process started, with its monotonic reading.
var (
	epoch     = time.Now()
	epochWall = epoch.UnixNano()
)

// now is the time in Unix nanoseconds, from the monotonic clock: half the
// cost of time.Now on a virtual machine's clock (kvm-clock), on every SIP
// message. It drifts from the wall clock only as NTP slews it.
func now() int64 { return epochWall + int64(time.Since(epoch)) }

// Timeline is the record of one call. Its methods are safe for concurrent
// use (SIP messages arrive on transport goroutines, media events on the
// media's) and do nothing on a nil *Timeline, so a call without a store
// records nothing at no cost.
//
// Once it holds max events it keeps the first max/2 (the setup) and
// the latest max-max/2 in a ring, counting the ones it let go (Dropped).
type Timeline struct {
	mu      sync.Mutex
	id      string // the caller leg's Call-ID
	cdrID   string
	bCallID string
	started int64 // Unix ns
	ended   int64 // 0 while live
	traced  bool  // SIP messages keep their text
	max     int
	events  kept[slot]
	extras  []extra // the details of the events that have some
	free    []int32 // extras let go by events the ring replaced
	samples kept[qsample]
	dropped int // events and samples let go
	sampler Sampler
	// more are the ids the store knows t by besides id, cdrID and
	// bCallID (a transfer's legs and records); guarded by Store.mu.
	more []string
}

// Traced reports whether SIP messages keep their text on this timeline.
func (t *Timeline) Traced() bool {
	if t == nil {
		return false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.traced
}

// SetTraced turns the keeping of SIP texts on or off (a call's users
// traced at run time).
func (t *Timeline) SetTraced(on bool) {
	if t == nil {
		return
	}
	t.mu.Lock()
	t.traced = on
	t.mu.Unlock()
}

// Add records ev; an ev.At of zero is now.
func (t *Timeline) Add(ev Event) {
	if t == nil {
		return
	}
	if ev.At == 0 {
		ev.At = now()
	}
	t.mu.Lock()
	t.add(ev)
	t.mu.Unlock()
}

// slot is an event as a timeline keeps it: the fields every event has,
// and its details (strings, numbers, a traced message's text) apart, in
// extras, for the events that have any. Most of a call's events are SIP
// messages without details: 24 bytes each instead of Event's 128.
// Details that are only the side media came from (S[0] "a" or "b": ICE,
// first RTP, hold) fit in the slot too (from), in bytes it had spare.
// Its name is an index in whats; a name outside it is kept in the
// details (odd, what.go).
type slot struct {
	At    int64
	x     int32  // index in extras; -1: no details in extras
	what  uint16 // index in whats, unless odd
	Code  uint16
	Kind  Kind
	Leg   Leg
	Dir   Dir
	Shape Shape
	from  Leg  // with x -1, not LegNone: the details are S[0] = from's name
	odd   bool // the name is outside whats: the extra's Text starts with it
}

// extra is an event's details.
type extra struct {
	S    [3]string
	N    [4]float64
	Text string
}

// hasDetails reports whether ev needs an extra.
func (ev *Event) hasDetails() bool {
	return ev.S != [3]string{} || ev.N != [4]float64{} || ev.Text != ""
}

// store makes ev a slot, its details in an extra (reusing one let go).
// Called under t.mu.
func (t *Timeline) store(ev *Event) slot {
	sl := slot{At: ev.At, x: -1, Code: ev.Code, Kind: ev.Kind, Leg: ev.Leg, Dir: ev.Dir, Shape: ev.Shape}
	w, known := whatIndex[ev.What]
	sl.what, sl.odd = w, !known
	if known && !ev.hasDetails() {
		return sl
	}
	if from := onlyFrom(ev); known && from != LegNone {
		sl.from = from
		return sl
	}
	x := extra{S: ev.S, N: ev.N, Text: ev.Text}
	if !known {
		x.Text = oddText(ev.What, ev.Text)
	}
	if n := len(t.free); n > 0 {
		sl.x = t.free[n-1]
		t.free = t.free[:n-1]
		t.extras[sl.x] = x
		return sl
	}
	if len(t.extras) == cap(t.extras) {
		grown := make([]extra, len(t.extras), min(max(2*cap(t.extras), firstExtras), t.max))
		copy(grown, t.extras)
		t.extras = grown
	}
	sl.x = int32(len(t.extras))
	t.extras = append(t.extras, x)
	return sl
}

// onlyFrom is the leg whose name is ev's only detail (S[0]), LegNone
// when ev has other details or S[0] names no leg.
func onlyFrom(ev *Event) Leg {
	if ev.S[1] != "" || ev.S[2] != "" || ev.N != [4]float64{} || ev.Text != "" {
		return LegNone
	}
	switch ev.S[0] {
	case "a":
		return LegA
	case "b":
		return LegB
	}
	return LegNone
}

// event is the Event sl stands for. Called under t.mu.
func (t *Timeline) event(sl slot) Event {
	ev := Event{At: sl.At, Kind: sl.Kind, Leg: sl.Leg, Dir: sl.Dir, Shape: sl.Shape, Code: sl.Code}
	switch {
	case sl.x >= 0:
		x := &t.extras[sl.x]
		ev.S, ev.N, ev.Text = x.S, x.N, x.Text
		if sl.odd {
			ev.What, ev.Text = splitOdd(x.Text)
		}
	case sl.from != LegNone:
		ev.S[0] = sl.from.String()
	}
	if !sl.odd {
		ev.What = whats[sl.what]
	}
	return ev
}

// add keeps ev (kept: when full, in place of the oldest past the head).
// Called under t.mu.
func (t *Timeline) add(ev Event) {
	p, replaced := t.events.next(t.max)
	if replaced {
		t.dropped++
	}
	if p == nil {
		return
	}
	if replaced && p.x >= 0 {
		t.extras[p.x] = extra{} // its strings go
		t.free = append(t.free, p.x)
	}
	*p = t.store(&ev)
}

// Store holds the timelines of the calls in progress and of the last
// Keep ended calls; a timeline is found by its caller Call-ID, its CDR
// id or its callee Call-IDs. Safe for concurrent use.
type Store struct {
	keep, max int
	// text keeps every SIP message's text (the trace log level), not
	// only those of traced calls, for the calls started while it is on.
	text atomic.Bool

	mu    sync.RWMutex
	ids   map[string]key // every id of every timeline held
	live  map[*Timeline]struct{}
	ended []*Timeline // a ring of the last keep ended calls
	next  int         // where the next ended call goes in ended
}

// key is what an id finds: a timeline and, for a leg's Call-ID, the leg.
type key struct {
	t   *Timeline
	leg Leg
}

// Spec is how much a Store keeps.
type Spec struct {
	// Keep is how many ended calls keep their timeline; 0: none.
	Keep int
	// MaxEvents bounds the events of one call (at least 2).
	MaxEvents int
	// Text keeps the text of every SIP message, not only traced calls'.
	Text bool
}

// Defaults an operator would pick: the last 1,000 ended calls, 200
// events each (a call's setup and end take some 20; the rest is room for
// re-INVITEs, DTMF and a quality sample per direction every few
// seconds, the newest of which are kept when a long call runs over).
const (
	DefaultKeep      = 1000
	DefaultMaxEvents = 200
	MinMaxEvents     = 2
)

// NewStore returns an empty store with the bounds of spec (MaxEvents
// raised to MinMaxEvents, a negative Keep taken as 0).
func NewStore(spec Spec) *Store {
	s := &Store{
		keep: max(spec.Keep, 0), max: max(spec.MaxEvents, MinMaxEvents),
		ids:   make(map[string]key),
		live:  make(map[*Timeline]struct{}),
		ended: make([]*Timeline, max(spec.Keep, 0)),
	}
	s.text.Store(spec.Text)
	return s
}

// SetText turns Spec.Text on or off for the calls that start from now on
// (a reload changing the log level).
func (s *Store) SetText(on bool) {
	if s != nil {
		s.text.Store(on)
	}
}

// Start opens the timeline of a new call whose caller leg has Call-ID
// id, started at started; traced keeps its SIP texts. A nil store
// returns nil, which records nothing.
func (s *Store) Start(id, cdrID string, started time.Time, traced bool) *Timeline {
	if s == nil {
		return nil
	}
	// The caller's Call-ID points into its INVITE's datagram (a parsed
	// message's strings do): a copy, so that the ended calls kept here
	// do not keep their INVITEs.
	id = strings.Clone(id)
	t := &Timeline{id: id, cdrID: cdrID, started: started.UnixNano(), traced: traced || s.text.Load(), max: s.max}
	s.mu.Lock()
	s.live[t] = struct{}{}
	s.index(t, id, LegA, true)
	s.index(t, cdrID, LegNone, true)
	s.mu.Unlock()
	return t
}

// Alias makes t found by another id too: the Call-ID of a new leg (B, a
// transfer's), whose SIP messages are recorded on t as leg's from then
// on, or (LegNone) the CDR id of a record split off by a transfer. The
// first LegB alias is the b_call_id shown.
func (s *Store) Alias(t *Timeline, id string, leg Leg) {
	if s == nil || t == nil || id == "" {
		return
	}
	id = strings.Clone(id) // as in Start
	t.mu.Lock()
	if leg == LegB && t.bCallID == "" {
		t.bCallID = id
	}
	named := id == t.id || id == t.cdrID || id == t.bCallID
	t.mu.Unlock()
	s.mu.Lock()
	s.index(t, id, leg, named)
	s.mu.Unlock()
}

// index makes t found by id; named: id is t's id, cdrID or bCallID,
// which forget finds there. Called under s.mu.
func (s *Store) index(t *Timeline, id string, leg Leg, named bool) {
	if id == "" {
		return
	}
	s.ids[id] = key{t, leg}
	if !named {
		t.more = append(t.more, id)
	}
}

// End closes t at ended and keeps it among the last Keep ended calls,
// letting the oldest of them go.
func (s *Store) End(t *Timeline, ended time.Time) {
	if s == nil || t == nil {
		return
	}
	t.mu.Lock()
	if t.ended != 0 {
		t.mu.Unlock()
		return
	}
	t.ended = ended.UnixNano()
	t.mu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.live, t)
	if s.keep == 0 {
		s.forget(t)
		return
	}
	if old := s.ended[s.next]; old != nil {
		s.forget(old)
	}
	s.ended[s.next] = t
	s.next = (s.next + 1) % s.keep
}

// forget removes every id of t that still points to it. Called under s.mu.
func (s *Store) forget(t *Timeline) {
	t.mu.Lock()
	named := [3]string{t.id, t.cdrID, t.bCallID}
	t.mu.Unlock()
	for _, ids := range [2][]string{named[:], t.more} {
		for _, id := range ids {
			if s.ids[id].t == t { // a later call may have taken a reused Call-ID
				delete(s.ids, id)
			}
		}
	}
}

// Find returns the timeline known by id, live or kept.
func (s *Store) Find(id string) (*Timeline, bool) {
	if s == nil {
		return nil, false
	}
	s.mu.RLock()
	k, ok := s.ids[id]
	s.mu.RUnlock()
	return k.t, ok
}

// SIP records a SIP message on the call whose leg has Call-ID callID, if
// the store holds one: a request (code 0, method) or a response (code,
// the CSeq method), received or sent (dir), data the message on the
// wire (kept, copied, only for a traced call). It reports whether a call
// took it.
func (s *Store) SIP(callID string, dir Dir, method string, code int, data []byte) bool {
	if s == nil {
		return false
	}
	s.mu.RLock()
	k, ok := s.ids[callID]
	s.mu.RUnlock()
	if !ok || k.leg == LegNone {
		return false // a CDR id is no Call-ID
	}
	k.t.SIP(k.leg, dir, method, code, data)
	return true
}

// SIP records a SIP message on leg; see Store.SIP.
func (t *Timeline) SIP(leg Leg, dir Dir, method string, code int, data []byte) {
	if t == nil {
		return
	}
	ev := Event{At: now(), Kind: KindSIP, Leg: leg, Dir: dir, Code: uint16(code), What: methodName(method)}
	t.mu.Lock()
	if t.ended == 0 || ev.At-t.ended < int64(lingerAfterEnd) {
		if t.traced {
			ev.Text = string(data)
		}
		t.add(ev)
	}
	t.mu.Unlock()
}

// lingerAfterEnd is how long after its end a kept call still records the
// SIP messages of its legs (the ACK of a final failure, a BYE's 200,
// retransmissions): a Call-ID reused much later is another call.
const lingerAfterEnd = 32 * time.Second

// methodName is method as a string of its own: a parsed message's method
// points into the datagram it came in (sipmsg.ParseOwned), which a
// timeline keeping it would hold for the call's life and after it (some
// 1.3 kB a call). The usual ones are constants.
func methodName(method string) string {
	switch method {
	case "INVITE":
		return "INVITE"
	case "ACK":
		return "ACK"
	case "BYE":
		return "BYE"
	case "CANCEL":
		return "CANCEL"
	case "OPTIONS":
		return "OPTIONS"
	case "UPDATE":
		return "UPDATE"
	case "PRACK":
		return "PRACK"
	case "INFO":
		return "INFO"
	case "REFER":
		return "REFER"
	case "NOTIFY":
		return "NOTIFY"
	case "MESSAGE":
		return "MESSAGE"
	case "SUBSCRIBE":
		return "SUBSCRIBE"
	case "REGISTER":
		return "REGISTER"
	}
	return strings.Clone(method)
}
