package media

import (
	"bytes"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"sync"

	"github.com/pion/sdp/v3"
)

// Side names one leg of a call.
type Side int

// The two sides of a session.
const (
	SideA Side = iota // the caller's leg
	SideB             // the callee's leg
)

// String returns "A" or "B".
func (s Side) String() string {
	switch s {
	case SideA:
		return "A"
	case SideB:
		return "B"
	}
	return "Side(" + strconv.Itoa(int(s)) + ")"
}

// Other returns the opposite side.
func (s Side) Other() Side { return 1 - s }

func (s Side) valid() bool { return s == SideA || s == SideB }

// Session is the media of one call: the SDP seam between its two sides and
// the relay of every stream the SDP negotiated. Its methods are safe for
// concurrent use. A Session holds sockets and goroutines from its first
// Offer until Close.
type Session struct {
	m   *Manager
	id  string
	log *slog.Logger

	mu      sync.Mutex
	closed  bool
	streams []*stream // by m-line index; nil: rejected or not relayed
	// The offer an Answer answers: who sent it and how many m-lines.
	offered    bool
	offerFrom  Side
	offerLines int
	sent       [2]sentSDP // what was last sent toward each side
	hold       [2]bool    // the side's last SDP holds at least one stream
	retired    Stats      // counters of streams already closed
	retiredRx  uint64
	watch      watchdog
}

// sentSDP is the origin (o=) state of the SDP sent toward one side.
type sentSDP struct {
	sessID, version uint64
	body            []byte
}

func newSession(m *Manager, id string) *Session {
	s := &Session{m: m, id: id, log: m.log.With("call_id", id)}
	for i := range s.sent {
		// A 62-bit random id: unique per session and side, and safe for
		// peers that parse it as a signed 64-bit number.
		s.sent[i] = sentSDP{sessID: rand.Uint64() >> 2, version: 1}
	}
	return s
}

// Offer takes the SDP offer received from side from and returns the offer
// to send to the other side. It opens a relayed stream for each new usable
// m-line, reuses the ports of m-lines it already relays and releases those
// the offer disables (port 0). Errors wrap ErrBadSDP (unusable body),
// ErrNoPorts or ErrClosed; on error nothing changed.
func (s *Session) Offer(from Side, body []byte) ([]byte, error) {
	if !from.valid() {
		return nil, fmt.Errorf("offer from %s: invalid side", from)
	}
	sd, lines, err := readSDP(body)
	if err != nil {
		return nil, fmt.Errorf("offer from %s: %w", from, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, fmt.Errorf("offer from %s: %w", from, ErrClosed)
	}
	if err := s.openStreams(lines); err != nil {
		return nil, fmt.Errorf("offer from %s: %w", from, err)
	}
	s.learn(from, lines)
	s.offered, s.offerFrom, s.offerLines = true, from, len(lines)
	return s.render(sd, lines, from.Other())
}

// Answer takes the SDP answer received from side from, answering the last
// Offer from the other side, and returns the answer to send to that side.
// It may be called more than once per offer (183 then 200 with SDP); each
// call applies. Streams the answer rejects are released. The first Answer
// starts the no-RTP timeout. Errors wrap ErrBadSDP, ErrNoOffer or
// ErrClosed; on error nothing changed.
func (s *Session) Answer(from Side, body []byte) ([]byte, error) {
	if !from.valid() {
		return nil, fmt.Errorf("answer from %s: invalid side", from)
	}
	sd, lines, err := readSDP(body)
	if err != nil {
		return nil, fmt.Errorf("answer from %s: %w", from, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, fmt.Errorf("answer from %s: %w", from, ErrClosed)
	}
	if !s.offered || s.offerFrom != from.Other() {
		return nil, fmt.Errorf("answer from %s: %w", from, ErrNoOffer)
	}
	if len(lines) != s.offerLines {
		return nil, fmt.Errorf("answer from %s: %w: %w (%d, offer had %d)",
			from, ErrBadSDP, errMLineCount, len(lines), s.offerLines)
	}
	for i, l := range lines {
		if !l.usable {
			s.retire(i)
		}
	}
	s.learn(from, lines)
	s.watch.arm(s)
	return s.render(sd, lines, from.Other())
}

// openStreams makes s.streams match the m-lines of an offer: a stream for
// every usable line, none for the others. New streams are all allocated
// before anything changes, so a failure leaves the session as it was.
func (s *Session) openStreams(lines []mline) error {
	fresh := make(map[int]*stream)
	for i, l := range lines {
		if !l.usable || (i < len(s.streams) && s.streams[i] != nil) {
			continue
		}
		st, err := newStream(s.m.pool, s.log.With("mline", i))
		if err != nil {
			for _, st := range fresh {
				st.close()
			}
			return fmt.Errorf("open stream for m-line %d: %w", i, err)
		}
		fresh[i] = st
	}
	// RFC 3264 forbids removing m-lines; a shorter offer still must not
	// leak the streams past its end.
	for i := len(lines); i < len(s.streams); i++ {
		s.retire(i)
	}
	for len(s.streams) < len(lines) {
		s.streams = append(s.streams, nil)
	}
	s.streams = s.streams[:len(lines)]
	for i, l := range lines {
		if st, ok := fresh[i]; ok {
			s.streams[i] = st
			s.log.Debug("media stream opened", "mline", i, "port_a", portOf(st, SideA), "port_b", portOf(st, SideB))
		} else if !l.usable {
			s.retire(i)
		}
	}
	return nil
}

func portOf(st *stream, side Side) int {
	if e, ok := st.ends[side].(*rtpEndpoint); ok {
		return e.pair.port
	}
	return 0
}

// learn hands each stream the transport side from announced, and records
// whether that side is holding.
func (s *Session) learn(from Side, lines []mline) {
	hold := false
	for i, l := range lines {
		if !l.usable || s.streams[i] == nil {
			continue
		}
		s.streams[i].ends[from].learn(l.remote)
		hold = hold || l.hold
	}
	if hold != s.hold[from] {
		s.log.Info("media hold changed", "side", from.String(), "hold", hold)
	}
	s.hold[from] = hold
}

// retire closes the stream of m-line i, if any, keeping its counters.
func (s *Session) retire(i int) {
	if i >= len(s.streams) || s.streams[i] == nil {
		return
	}
	st := s.streams[i]
	s.streams[i] = nil
	st.close()
	stats, rx := st.stats()
	s.retired.AtoB.add(stats.AtoB)
	s.retired.BtoA.add(stats.BtoA)
	s.retiredRx += rx
	s.log.Debug("media stream closed", "mline", i)
}

// render rewrites sd for side to and stamps its o= line: the session id is
// fixed per side, the version grows whenever the body sent to that side
// changes.
func (s *Session) render(sd *sdp.SessionDescription, lines []mline, to Side) ([]byte, error) {
	ends := make([]endpoint, len(lines))
	for i, l := range lines {
		if l.usable && s.streams[i] != nil {
			ends[i] = s.streams[i].ends[to]
		}
	}
	pub := s.m.cfg.PublicIP
	sent := &s.sent[to]
	origin := sdp.Origin{
		Username: "sbc", SessionID: sent.sessID, SessionVersion: sent.version,
		NetworkType: "IN", AddressType: addrType(pub), UnicastAddress: pub.String(),
	}
	rewriteSDP(sd, ends, origin, pub)
	body, err := sd.Marshal()
	if err != nil {
		return nil, fmt.Errorf("marshal sdp for %s: %w", to, err)
	}
	if sent.body != nil && !bytes.Equal(body, sent.body) {
		sent.version++
		sd.Origin.SessionVersion = sent.version
		if body, err = sd.Marshal(); err != nil {
			return nil, fmt.Errorf("marshal sdp for %s: %w", to, err)
		}
	}
	sent.body = body
	return bytes.Clone(body), nil
}

// Close releases the session's sockets and goroutines; its ports go to
// quarantine. It is idempotent. Stats stay readable and final after Close.
func (s *Session) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	s.watch.stop()
	for i := range s.streams {
		s.retire(i)
	}
	s.streams = nil
	s.mu.Unlock()
	s.m.forget(s)
	s.log.Debug("media session closed")
}

// Stats returns the session's counters so far, released streams included.
func (s *Session) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, _ := s.totals()
	return st
}

// totals sums live and retired counters; rx is RTP accepted from either
// side. Called under s.mu.
func (s *Session) totals() (Stats, uint64) {
	total, rx := s.retired, s.retiredRx
	for _, st := range s.streams {
		if st == nil {
			continue
		}
		stats, r := st.stats()
		total.AtoB.add(stats.AtoB)
		total.BtoA.add(stats.BtoA)
		rx += r
	}
	return total, rx
}

// OnTimeout sets f to be called, at most once and on its own goroutine,
// when no RTP arrives from either side for Config.Timeout after the first
// Answer, while neither side holds. f is never started after Close has
// returned, and it may call Close. A later call replaces f; a zero
// Config.Timeout disables the timeout.
func (s *Session) OnTimeout(f func()) {
	s.mu.Lock()
	s.watch.f = f
	s.mu.Unlock()
}
