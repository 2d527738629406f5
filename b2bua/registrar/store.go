package registrar

import (
	"context"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sbc-project/sbc/b2bua/sipmsg"
	"github.com/sbc-project/sbc/b2bua/transport"
)

// Defaults of Config.
const (
	DefaultMinExpires        = 60 * time.Second
	DefaultMaxExpires        = 3600 * time.Second
	DefaultDefaultExpires    = 600 * time.Second
	DefaultMaxBindingsPerAOR = 10
	DefaultMaxBindings       = 100000
)

// sweepEvery is how often Run removes expired bindings.
const sweepEvery = time.Second

// Config configures a Store. Zero fields take the defaults above.
type Config struct {
	// MinExpires is the shortest registration accepted; a shorter non-zero
	// one is answered 423 with Min-Expires. Default DefaultMinExpires.
	MinExpires time.Duration
	// MaxExpires is the longest registration granted; longer ones are
	// clamped to it. Default DefaultMaxExpires; raised to MinExpires if
	// lower.
	MaxExpires time.Duration
	// DefaultExpires applies when neither the Contact nor the request
	// gives an expiry. Default DefaultDefaultExpires, kept within
	// [MinExpires, MaxExpires].
	DefaultExpires time.Duration
	// MaxBindingsPerAOR caps the bindings of one address-of-record; a
	// REGISTER that would exceed it is answered 503. Default
	// DefaultMaxBindingsPerAOR.
	MaxBindingsPerAOR int
	// MaxBindings caps the whole store (flood safety); a REGISTER that
	// would exceed it is answered 503. Default DefaultMaxBindings.
	MaxBindings int
	// Forbidden are addresses a Contact host may not be (e.g. the SBC's
	// own, loopback); a REGISTER naming one is answered 403. Unspecified,
	// multicast and broadcast addresses are always forbidden.
	Forbidden []netip.Prefix
	// Now is the clock; default time.Now. For tests.
	Now func() time.Time
}

// Flow is how to reach a registered UA.
type Flow struct {
	// Target is the connection the UA registered on (WS, WSS, TCP, TLS:
	// Target.Conn is set) or its source address (UDP: latched, so that a
	// UA behind NAT is reached where its packets came from).
	Target transport.Target
}

// Binding is one registered Contact of an address-of-record.
type Binding struct {
	// AOR is the canonical "user@domain" (see AOR).
	AOR string
	// Contact is the Contact URI as the UA sent it, for the 200 response.
	Contact string
	// Token is a random id (letters and digits, 20 characters) unique in
	// the store, stable across refreshes: the user part of the SBC's own
	// Contact toward the PBX, mapping the PBX's requests back here.
	Token string
	// Flow is how the UA is reached; a refresh moves it to the refresh's.
	Flow Flow
	// Expires is when the binding lapses.
	Expires time.Time
	// CallID and CSeq are those of the last REGISTER that set the binding.
	CallID string
	CSeq   uint32
	// Instance and RegID are the RFC 5626 +sip.instance and reg-id, when
	// the UA sent them ("" and 0 otherwise).
	Instance string
	RegID    int
	// UserAgent is the UA's User-Agent header.
	UserAgent string
	// Registered is when the binding was last set (created or refreshed).
	Registered time.Time
}

// Remaining returns the seconds left until b expires, rounded up; 0 once
// it has.
func (b Binding) Remaining(now time.Time) int {
	d := b.Expires.Sub(now)
	if d <= 0 {
		return 0
	}
	return int((d + time.Second - 1) / time.Second)
}

// ContactValue renders b as a Contact header value for a 200 response to
// REGISTER: the URI, its remaining expiry, and +sip.instance and reg-id
// when the UA sent them (RFC 5626 section 6 requires echoing them).
func (b Binding) ContactValue(now time.Time) string {
	v := "<" + b.Contact + ">;expires=" + strconv.Itoa(b.Remaining(now))
	if b.Instance != "" {
		v += ";+sip.instance=" + sipmsg.Quote(b.Instance)
	}
	if b.RegID > 0 {
		v += ";reg-id=" + strconv.Itoa(b.RegID)
	}
	return v
}

// Store holds the bindings of all addresses-of-record in memory. It is safe
// for concurrent use. Expired bindings are invisible to lookups at once and
// removed by Run's sweeper (or the next Apply to their AOR), which reports
// them to the OnExpire callback.
type Store struct {
	cfg Config

	mu       sync.Mutex
	byAOR    map[string][]*entry
	byToken  map[string]*entry
	onExpire func(Binding)
	onChange func(aor string)
}

// entry is a stored binding and its match key (see bindingKey).
type entry struct {
	b   Binding
	key string
}

// NewStore returns an empty Store for cfg, with defaults filled in.
func NewStore(cfg Config) *Store {
	cfg.MinExpires = positiveOr(cfg.MinExpires, DefaultMinExpires)
	cfg.MaxExpires = max(positiveOr(cfg.MaxExpires, DefaultMaxExpires), cfg.MinExpires)
	cfg.DefaultExpires = min(max(positiveOr(cfg.DefaultExpires, DefaultDefaultExpires), cfg.MinExpires), cfg.MaxExpires)
	cfg.MaxBindingsPerAOR = positiveOr(cfg.MaxBindingsPerAOR, DefaultMaxBindingsPerAOR)
	cfg.MaxBindings = positiveOr(cfg.MaxBindings, DefaultMaxBindings)
	cfg.Forbidden = append([]netip.Prefix(nil), cfg.Forbidden...)
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Store{cfg: cfg, byAOR: make(map[string][]*entry), byToken: make(map[string]*entry)}
}

func positiveOr[T int | time.Duration](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}

// MinExpires returns the configured minimum in whole seconds: the value of
// the Min-Expires header of a 423 answer.
func (s *Store) MinExpires() int { return int(s.cfg.MinExpires / time.Second) }

// OnExpire sets the function called, outside the store's lock, with each
// binding removed because it expired. Bindings removed by Remove,
// RemoveFlow or a de-registering Apply are not reported: their caller
// knows. f must not block for long; nil disables.
func (s *Store) OnExpire(f func(Binding)) {
	s.mu.Lock()
	s.onExpire = f
	s.mu.Unlock()
}

// OnChange sets the function called, outside the store's lock, with the
// AOR of every change to its bindings: made, refreshed, removed or
// expired. A cluster reads the AOR's bindings then and shares them. f
// must not block; nil disables.
func (s *Store) OnChange(f func(aor string)) {
	s.mu.Lock()
	s.onChange = f
	s.mu.Unlock()
}

// changed reports the AORs of bs, and aor if not empty, to OnChange.
// Called without the lock.
func (s *Store) changed(aor string, bs []Binding) {
	s.mu.Lock()
	f := s.onChange
	s.mu.Unlock()
	if f == nil {
		return
	}
	seen := map[string]bool{}
	if aor != "" {
		seen[aor] = true
		f(aor)
	}
	for _, b := range bs {
		if !seen[b.AOR] {
			seen[b.AOR] = true
			f(b.AOR)
		}
	}
}

// Lookup returns the live bindings of aor, most recently registered first.
func (s *Store) Lookup(aor string) []Binding {
	now := s.cfg.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	return live(s.byAOR[aor], now)
}

// ByToken returns the live binding with the given token.
func (s *Store) ByToken(token string) (Binding, bool) {
	now := s.cfg.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.byToken[token]
	if !ok || !e.b.Expires.After(now) {
		return Binding{}, false
	}
	return e.b, true
}

// List returns every live binding, by AOR and then most recent first.
func (s *Store) List() []Binding {
	now := s.cfg.Now()
	s.mu.Lock()
	out := make([]Binding, 0, len(s.byToken))
	for _, es := range s.byAOR {
		out = append(out, live(es, now)...)
	}
	s.mu.Unlock()
	sort.SliceStable(out, func(i, j int) bool { return out[i].AOR < out[j].AOR })
	return out
}

// Len returns the number of bindings held, including expired ones the
// sweeper has not removed yet.
func (s *Store) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.byToken)
}

// Remove deletes the binding with the given token and reports whether
// there was one.
func (s *Store) Remove(token string) bool {
	s.mu.Lock()
	e, ok := s.byToken[token]
	if ok {
		s.removeLocked(e)
	}
	s.mu.Unlock()
	if ok {
		s.changed(e.b.AOR, nil)
	}
	return ok
}

// RemoveFlow deletes every binding whose Flow match accepts (e.g. those on
// a connection that closed) and returns them. match runs under the store's
// lock: it must not call the Store.
func (s *Store) RemoveFlow(match func(Flow) bool) []Binding {
	s.mu.Lock()
	var out []Binding
	for _, e := range s.byToken {
		if match(e.b.Flow) {
			out = append(out, e.b)
			s.removeLocked(e)
		}
	}
	s.mu.Unlock()
	s.changed("", out)
	return out
}

// FindFlow returns a live binding whose Flow match accepts (e.g. one on
// the connection a request came in on), preferring one whose AOR's user
// part is prefer (case-insensitively), then the lowest AOR, so the choice
// does not depend on map order. It scans under the store's lock without
// copying the bindings; match must not call the Store.
func (s *Store) FindFlow(match func(Flow) bool, prefer string) (Binding, bool) {
	now := s.cfg.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	var found *entry
	for _, e := range s.byToken {
		if !e.b.Expires.After(now) || !match(e.b.Flow) {
			continue
		}
		if prefer != "" && strings.EqualFold(userOfAOR(e.b.AOR), prefer) {
			return e.b, true
		}
		if found == nil || e.b.AOR < found.b.AOR {
			found = e
		}
	}
	if found == nil {
		return Binding{}, false
	}
	return found.b, true
}

// userOfAOR is the user part of a canonical "user@domain" AOR.
func userOfAOR(aor string) string {
	user, _, _ := strings.Cut(aor, "@")
	return user
}

// Run removes expired bindings about every second, reporting them to the
// OnExpire callback, until ctx is done.
func (s *Store) Run(ctx context.Context) {
	t := time.NewTicker(sweepEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.Sweep()
		}
	}
}

// Sweep removes the bindings expired by now and reports them to the
// OnExpire callback. Run calls it; tests with a fake clock call it too.
func (s *Store) Sweep() {
	now := s.cfg.Now()
	s.mu.Lock()
	gone := s.sweepLocked(now)
	f := s.onExpire
	s.mu.Unlock()
	report(f, gone)
	s.changed("", gone)
}

func report(f func(Binding), gone []Binding) {
	if f == nil {
		return
	}
	for _, b := range gone {
		f(b)
	}
}

// sweepLocked removes every expired binding and returns them.
func (s *Store) sweepLocked(now time.Time) []Binding {
	var gone []Binding
	for _, e := range s.byToken {
		if !e.b.Expires.After(now) {
			gone = append(gone, e.b)
			s.removeLocked(e)
		}
	}
	return gone
}

// expireAORLocked removes the expired bindings of one AOR.
func (s *Store) expireAORLocked(aor string, now time.Time) []Binding {
	var gone []Binding
	for _, e := range append([]*entry(nil), s.byAOR[aor]...) {
		if !e.b.Expires.After(now) {
			gone = append(gone, e.b)
			s.removeLocked(e)
		}
	}
	return gone
}

// removeLocked unlinks e from both indexes.
func (s *Store) removeLocked(e *entry) {
	delete(s.byToken, e.b.Token)
	es := s.byAOR[e.b.AOR]
	for i, x := range es {
		if x == e {
			es = append(es[:i:i], es[i+1:]...)
			break
		}
	}
	if len(es) == 0 {
		delete(s.byAOR, e.b.AOR)
	} else {
		s.byAOR[e.b.AOR] = es
	}
}

// live copies the unexpired bindings of es, most recently registered first
// (ties by token, so the order is stable).
func live(es []*entry, now time.Time) []Binding {
	out := make([]Binding, 0, len(es))
	for _, e := range es {
		if e.b.Expires.After(now) {
			out = append(out, e.b)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Registered.Equal(out[j].Registered) {
			return out[i].Registered.After(out[j].Registered)
		}
		return out[i].Token < out[j].Token
	})
	return out
}
