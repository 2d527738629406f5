package media

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	"github.com/pion/sdp/v3"

	"github.com/sbc-project/sbc/media/sdpconv"
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
//
// Each side speaks one Kind. Plain RTP on both sides is relayed with the
// SDP passed through (every codec the endpoints agree on); as soon as one
// side is WebRTC or SDES-SRTP, the SDP is translated by sdpconv (codecs
// both can use, payload-type maps, ICE/DTLS attributes toward browsers).
type Session struct {
	m  *Manager
	id string

	mu        sync.Mutex
	closed    bool          // Stop was called
	offered   bool          // an offer waits for its answer (below)
	evClosed  bool          // guarded by evMu (below); here, it packs with closed
	held      []*stream     // stopped, ports kept until Close
	heldSides []*webrtcSide // the same for WebRTC sides
	opts      [2]SideOptions
	kind      [2]Kind
	streams   []*stream // by m-line index; nil: rejected or not relayed
	wt        [2]*webrtcSide
	// The offer an Answer answers (offered): who sent it and what it said.
	offerFrom Side
	offer     *sdpconv.Description
	before    *sdpconv.Description    // what the offerer said before the offer, until answered (Refused)
	last      [2]*sdpconv.Description // the last SDP each side sent
	bodies    *sdpBodies              // their bodies, for State; nil without replication (Config.NoState)
	since     time.Time               // the first Answer (State: the rates' start)
	stateTick *time.Timer             // reports EventState every Config.StateEvery once answered
	// restoredAddr is, for a session Restore made, the address facing
	// each side when it is none of Config.Addrs (a dead node's); nil for
	// the others (restored, addrs.go).
	restoredAddr *[2]Addr
	sent         [2]sentSDP // what was last sent toward each side
	cname        [2]string  // the SBC's RTCP CNAME toward each side
	addr         [2]int     // index in Config.Addrs of the address facing each side (addrs.go)
	addrSet      [2]bool    // addr[side] is chosen
	hold         [2]bool    // the side's last SDP holds at least one stream
	codecs       [2]string
	tc           transcodeState // transcode.go
	retired      *retired       // counters of streams already closed; nil: none
	watch        watchdog
	// stop is closed by Stop: it ends DTMF injections and playbacks, and
	// is made for the first of them (stopChan): most sessions have none
	// (a channel is 96 bytes).
	stop  chan struct{}
	dtmfQ chan dtmfJob // digits to play as RFC 4733; nil until the first

	// Events have their own lock: readers and transport callbacks emit
	// while Close holds mu and waits for them.
	evMu   sync.Mutex
	notify func(Event)
	tasks  sync.WaitGroup // event deliveries and DTMF injections
}

// sentSDP is the origin (o=) state of the SDP sent toward one side.
type sentSDP struct {
	sessID, version uint64
	body            []byte
}

func newSession(m *Manager, id string) *Session {
	s := &Session{m: m, id: id}
	for i := range s.sent {
		// A 62-bit random id: unique per session and side, and safe for
		// peers that parse it as a signed 64-bit number.
		s.sent[i] = sentSDP{sessID: rand.Uint64() >> 2, version: 1}
		// A fresh random CNAME per side (RFC 7022): it names the SBC to
		// that side, in SDP and in every SDES the side receives, and
		// nothing of the other side.
		s.cname[i] = fmt.Sprintf("sbc-%016x", rand.Uint64())
	}
	return s
}

// Configure sets what side wants before its SDP says it (see
// SideOptions). Call it before the first Offer.
func (s *Session) Configure(side Side, o SideOptions) {
	if !side.valid() {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.opts[side] = o
	if s.last[side] == nil {
		s.kind[side] = o.Kind
	}
	for _, st := range s.streams {
		if e, ok := endOf(st, side); ok {
			e.prefer(o.Signaling)
		}
	}
}

// endOf returns the plain or SDES endpoint of st facing side, if it has
// one.
func endOf(st *stream, side Side) (*rtpEndpoint, bool) {
	if st == nil {
		return nil, false
	}
	e, ok := st.ends[side].(*rtpEndpoint)
	return e, ok
}

// Notify sets the receiver of the session's events (media gone, DTMF for
// INFO). f runs on its own goroutine and may call any Session method.
func (s *Session) Notify(f func(Event)) {
	s.evMu.Lock()
	s.notify = f
	s.evMu.Unlock()
	s.mu.Lock()
	s.watch.f = func() { f(Event{Kind: EventEnd, Cause: "media_timeout"}) }
	s.mu.Unlock()
}

// emit hands ev to the notify callback on a tracked goroutine; after
// Close it drops it.
func (s *Session) emit(ev Event) {
	if ev.At.IsZero() {
		ev.At = time.Now()
	}
	s.evMu.Lock()
	f := s.notify
	if f == nil || s.evClosed {
		s.evMu.Unlock()
		return
	}
	s.tasks.Add(1)
	s.evMu.Unlock()
	go func() {
		defer s.tasks.Done()
		f(ev)
	}()
}

// Offer takes the SDP offer received from side from and returns the offer
// to send to the other side. It opens a relayed stream for each new usable
// m-line, reuses the ports of m-lines it already relays and releases those
// the offer disables (port 0). Errors wrap ErrBadSDP (unusable body),
// ErrNoCodec (nothing the other side can use), ErrNoFax (T.38 toward a
// side that is not plain RTP), ErrNoPorts or ErrClosed; on error nothing
// changed. The body returned (here, by Answer and by Absorb) is the
// session's own record of what it sent: never changed afterwards, and
// not to be changed by the caller.
func (s *Session) Offer(from Side, body []byte) ([]byte, error) {
	if !from.valid() {
		return nil, fmt.Errorf("offer from %s: invalid side", from)
	}
	d, sd, err := parseSDP(body)
	if err != nil {
		return nil, fmt.Errorf("offer from %s: %w", from, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, fmt.Errorf("offer from %s: %w", from, ErrClosed)
	}
	to := from.Other()
	kinds := s.kind
	kinds[from] = d.Kind
	if err := s.checkFax(d, kinds); err != nil {
		return nil, fmt.Errorf("offer from %s: %w", from, err)
	}
	chosen := s.addrSet
	s.addrOf(from, d)
	moved := s.moveFamily(to)
	if err := s.openStreams(d, kinds); err != nil {
		moved.undo(s)
		s.addrSet = chosen // nothing new was bound: the next offer chooses again
		return nil, fmt.Errorf("offer from %s: %w", from, err)
	}
	moved.finish()
	s.kind = kinds
	if err := s.learn(from, d, false); err != nil {
		return nil, fmt.Errorf("offer from %s: %w", from, err)
	}
	shaped, err := s.shapeOffer(from, d, kinds)
	if err != nil {
		return nil, fmt.Errorf("offer from %s: %w", from, err)
	}
	out, sent, err := s.renderOffer(shaped, sd, body, to)
	if err != nil {
		return nil, fmt.Errorf("offer from %s: %w", from, err)
	}
	s.announce(to, out, sent)
	s.offered, s.offerFrom, s.offer = true, from, d
	s.before, s.last[from] = s.last[from], d
	if b := s.keptBodies(); b != nil {
		b.before, b.offer = b.last[from], bytes.Clone(body)
		b.last[from] = b.offer
	}
	return out, nil
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
	d, sd, err := parseSDP(body)
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
	if len(d.Media) != len(s.offer.Media) {
		return nil, fmt.Errorf("answer from %s: %w: %w (%d, offer had %d)",
			from, ErrBadSDP, errMLineCount, len(d.Media), len(s.offer.Media))
	}
	if d.Kind != s.kind[from] {
		return nil, fmt.Errorf("answer from %s: %w: a %s answer to a %s offer", from, ErrBadSDP, d.Kind, s.kind[from])
	}
	for i, md := range d.Media {
		if !md.Usable || md.Port == 0 {
			s.retire(i)
		}
	}
	if err := s.learn(from, d, true); err != nil {
		return nil, fmt.Errorf("answer from %s: %w", from, err)
	}
	s.before = nil
	out, sent, err := s.renderAnswer(d, sd, body, from.Other())
	if err != nil {
		return nil, fmt.Errorf("answer from %s: %w", from, err)
	}
	s.announce(from.Other(), out, sent)
	s.last[from] = d
	s.keepBody(from, body)
	if s.since.IsZero() {
		s.since = time.Now()
	}
	s.watch.arm(s)
	s.armStateTick()
	return out, nil
}

// Absorb answers a re-offer from side from itself when it changes nothing
// the other side must know: a new address or port, a new SSRC, an ICE
// restart. It applies the change and returns the answer for from; ok is
// false when the offer must go to the other side (then nothing changed).
func (s *Session) Absorb(from Side, body []byte) (answer []byte, ok bool) {
	if !from.valid() {
		return nil, false
	}
	d, _, err := parseSDP(body)
	if err != nil {
		return nil, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	prev, other := s.last[from], s.last[from.Other()]
	if v := s.tc.shown[from]; v != nil {
		other = v // a transcoded call: what from was told of the other side
	}
	if s.closed || prev == nil || other == nil || d.Kind != prev.Kind || !sdpconv.Equivalent(prev, d) {
		return nil, false
	}
	if err := s.learn(from, d, false); err != nil {
		s.logger().Info("re-offer not absorbed", "side", from.String(), "err", err)
		return nil, false
	}
	s.last[from] = d
	s.keepBody(from, body)
	if s.kind[from] != KindWebRTC && s.sent[from].body != nil {
		return s.sent[from].body, true // never changed (stamp)
	}
	out, err := s.renderAnswerTo(d, other, from)
	if err != nil {
		s.logger().Info("re-offer not absorbed", "side", from.String(), "err", err)
		return nil, false
	}
	s.announce(from, out, nil)
	return out, true
}

// SendDTMF plays a digit toward side to as RFC 4733 events on its first
// audio stream, paced in real time by a goroutine of the session; digits
// queue behind each other, so events never overlap. It fails when that
// side negotiated no telephone-event (send SIP INFO instead).
func (s *Session) SendDTMF(to Side, d DTMF) error {
	if !to.valid() {
		return fmt.Errorf("dtmf to %s: invalid side", to)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("dtmf to %s: %w", to, ErrClosed)
	}
	for _, st := range s.streams {
		if st == nil || !st.audio {
			continue
		}
		f := st.flows[to.Other()]
		if f.plan.Load().outEvent < 0 {
			return fmt.Errorf("dtmf to %s: %w", to, ErrNoEvents)
		}
		if s.dtmfQ == nil {
			s.dtmfQ = make(chan dtmfJob, dtmfQueue)
			s.evMu.Lock()
			s.tasks.Add(1)
			s.evMu.Unlock()
			go s.playDTMF(s.dtmfQ, s.stopChan())
		}
		select {
		case s.dtmfQ <- dtmfJob{f: f, d: d}:
			return nil
		default:
			return fmt.Errorf("dtmf to %s: %d digits already queued", to, dtmfQueue)
		}
	}
	return fmt.Errorf("dtmf to %s: %w", to, ErrNoEvents)
}

// stopChan is the channel Stop closes, made on first use. Called under
// s.mu, before Stop.
func (s *Session) stopChan() <-chan struct{} {
	if s.stop == nil {
		s.stop = make(chan struct{})
	}
	return s.stop
}

// dtmfQueue bounds the digits waiting to be played.
const dtmfQueue = 32

type dtmfJob struct {
	f *flow
	d DTMF
}

// playDTMF plays queued digits one after the other until Close.
func (s *Session) playDTMF(q <-chan dtmfJob, stop <-chan struct{}) {
	defer s.tasks.Done()
	for {
		select {
		case j := <-q:
			j.f.inject(j.d, stop)
		case <-stop:
			return
		}
	}
}

// Codecs returns the main codec negotiated with each side, e.g.
// "opus/48000/2" and "PCMU/8000"; "" before an answer.
func (s *Session) Codecs() [2]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.codecs
}

// Kinds returns what each side speaks, as far as known.
func (s *Session) Kinds() [2]Kind {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.kind
}

// openStreams makes s.streams match the m-lines of an offer: a stream for
// every usable line, none for the others. New streams are all allocated
// before anything changes, so a failure leaves the session as it was.
func (s *Session) openStreams(d *sdpconv.Description, kinds [2]Kind) error {
	fresh := make(map[int]*stream)
	for i, md := range d.Media {
		if !md.Usable || md.Port == 0 || (i < len(s.streams) && s.streams[i] != nil) {
			continue
		}
		st, err := s.newStream(kinds, md.Type == "audio", i)
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
	for i := len(d.Media); i < len(s.streams); i++ {
		s.retire(i)
	}
	for len(s.streams) < len(d.Media) {
		s.streams = append(s.streams, nil)
	}
	s.streams = s.streams[:len(d.Media)]
	for i, md := range d.Media {
		if st, ok := fresh[i]; ok {
			s.streams[i] = st
			s.debug("media stream opened", "mline", i, "kind_a", kinds[SideA].String(), "kind_b", kinds[SideB].String())
		} else if !md.Usable || md.Port == 0 {
			s.retire(i)
		}
	}
	return nil
}

// OnTimeout sets f to be called, at most once and on its own goroutine,
// when no RTP arrives from either side for Config.Timeout after the first
// Answer, while neither side holds. f is never started after Close has
// returned, and it may call Close. A later call replaces f (and Notify's
// media_timeout event); a zero Config.Timeout disables the timeout.
func (s *Session) OnTimeout(f func()) {
	s.mu.Lock()
	s.watch.f = f
	s.mu.Unlock()
}

// stamp renders the o= line for side to: the session id is fixed per side,
// the version grows whenever the body sent to that side changes. render
// produces the body for a given origin.
func (s *Session) stamp(to Side, render func(o sdp.Origin) ([]byte, error)) ([]byte, error) {
	pub := s.public(to)
	sent := &s.sent[to]
	origin := sdp.Origin{
		Username: "sbc", SessionID: sent.sessID, SessionVersion: sent.version,
		NetworkType: "IN", AddressType: addrType(pub), UnicastAddress: pub.String(),
	}
	body, err := render(origin)
	if err != nil {
		return nil, err
	}
	if sent.body != nil && !bytes.Equal(body, sent.body) {
		sent.version++
		origin.SessionVersion = sent.version
		if body, err = render(origin); err != nil {
			return nil, err
		}
	}
	// The caller gets the bytes kept, not a copy: a body is never
	// changed once made (the next is rendered anew), and the B2BUA keeps
	// what it sent for the call's life (b2bua sentSDP).
	sent.body = body
	return body, nil
}
