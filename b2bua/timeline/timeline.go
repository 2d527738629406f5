package timeline

import (
	"sync"
	"time"
)

// firstCap is the capacity a timeline's events start with: a short call's
// setup and end fit without growing.
const firstCap = 16

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
	events  []Event
	ring    int // once full: the index, past the kept head, of the oldest in the ring
	dropped int
	sampler Sampler
	keys    []string // every id the store knows t by; guarded by Store.mu
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
		ev.At = time.Now().UnixNano()
	}
	t.mu.Lock()
	t.add(ev)
	t.mu.Unlock()
}

// add appends ev or, when full, puts it in the ring in place of the
// oldest event past the head. Called under t.mu.
func (t *Timeline) add(ev Event) {
	if len(t.events) < t.max {
		if t.events == nil {
			t.events = make([]Event, 0, min(firstCap, t.max))
		}
		t.events = append(t.events, ev)
		return
	}
	head := t.max / 2
	if t.max-head == 0 {
		t.dropped++
		return
	}
	t.events[head+t.ring] = ev
	t.ring = (t.ring + 1) % (t.max - head)
	t.dropped++
}

// Store holds the timelines of the calls in progress and of the last
// Keep ended calls; a timeline is found by its caller Call-ID, its CDR
// id or its callee Call-IDs. Safe for concurrent use.
type Store struct {
	keep, max int
	// text keeps every SIP message's text (the trace log level), not
	// only those of traced calls.
	text bool

	mu    sync.RWMutex
	ids   map[string]*Timeline // every id of every timeline held
	live  map[*Timeline]struct{}
	ended []*Timeline // a ring of the last keep ended calls
	next  int         // where the next ended call goes in ended
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
	return &Store{
		keep: max(spec.Keep, 0), max: max(spec.MaxEvents, MinMaxEvents), text: spec.Text,
		ids:   make(map[string]*Timeline),
		live:  make(map[*Timeline]struct{}),
		ended: make([]*Timeline, max(spec.Keep, 0)),
	}
}

// Start opens the timeline of a new call whose caller leg has Call-ID
// id, started at started; traced keeps its SIP texts. A nil store
// returns nil, which records nothing.
func (s *Store) Start(id, cdrID string, started time.Time, traced bool) *Timeline {
	if s == nil {
		return nil
	}
	t := &Timeline{id: id, cdrID: cdrID, started: started.UnixNano(), traced: traced || s.text, max: s.max}
	s.mu.Lock()
	s.live[t] = struct{}{}
	s.index(t, id)
	s.index(t, cdrID)
	s.mu.Unlock()
	return t
}

// Alias makes t found by another id too (a callee leg's Call-ID, the CDR
// id of a record split off by a transfer): its SIP messages are recorded
// on t (SIP) from then on. The first alias is the b_call_id shown.
func (s *Store) Alias(t *Timeline, id string) {
	if s == nil || t == nil || id == "" {
		return
	}
	t.mu.Lock()
	if t.bCallID == "" {
		t.bCallID = id
	}
	t.mu.Unlock()
	s.mu.Lock()
	s.index(t, id)
	s.mu.Unlock()
}

// index makes t found by id. Called under s.mu.
func (s *Store) index(t *Timeline, id string) {
	if id == "" {
		return
	}
	s.ids[id] = t
	t.keys = append(t.keys, id)
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
	for _, id := range t.keys {
		if s.ids[id] == t { // a later call may have taken a reused Call-ID
			delete(s.ids, id)
		}
	}
}

// Find returns the timeline known by id, live or kept.
func (s *Store) Find(id string) (*Timeline, bool) {
	if s == nil {
		return nil, false
	}
	s.mu.RLock()
	t, ok := s.ids[id]
	s.mu.RUnlock()
	return t, ok
}

// SIP records a SIP message on the call whose leg has Call-ID callID, if
// the store holds one: a request (code 0, method) or a response (code,
// the CSeq method), received or sent (dir), data the message on the
// wire (kept, copied, only for a traced call). It reports whether a call
// took it.
func (s *Store) SIP(callID string, dir Dir, method string, code int, data []byte) bool {
	t, ok := s.Find(callID)
	if !ok {
		return false
	}
	leg := LegB
	if callID == t.id {
		leg = LegA
	}
	t.SIP(leg, dir, method, code, data)
	return true
}

// SIP records a SIP message on leg; see Store.SIP.
func (t *Timeline) SIP(leg Leg, dir Dir, method string, code int, data []byte) {
	if t == nil {
		return
	}
	ev := Event{At: time.Now().UnixNano(), Kind: KindSIP, Leg: leg, Dir: dir, Code: uint16(code), What: method}
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
