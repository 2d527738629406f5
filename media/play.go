package media

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sbc-project/sbc/media/codec"
	"github.com/sbc-project/sbc/media/sdpconv"
	"github.com/sbc-project/sbc/media/wrtc"
)

// The SBC's own audio toward one side of a call, before the other side
// has media of its own: local ringback and announcements (package
// media/announce makes the audio, b2bua decides when). AnswerLocally
// gives the caller an answer before the callee's, and Play sends paced
// RTP on the stream toward the caller with that stream's SSRC, sequence
// and timestamps (encrypted toward a browser or an SDES side, as relayed
// packets are), until the callee's media arrives.

// ErrNoLocalAnswer means the session cannot answer an offer itself: no
// offer waits, the side that would have answered is not plain RTP, or
// no offered audio codec can be encoded by this build.
var ErrNoLocalAnswer = errors.New("media: cannot answer locally")

// localHost is the address of the answer AnswerLocally makes up for the
// side that has not answered: a name (RFC 6761 .invalid) is no address,
// so nothing is sent toward that side until its real answer, and the
// stream stays sendrecv, so the real answer changes nothing the offerer
// sees but, at most, the codec.
const localHost = "early.invalid"

// AnswerLocally answers the offer from side to as if the other side had
// answered it with the first audio codec it was offered that this build
// can encode (with telephone-event when offered), and returns the SDP
// for to. Other m-lines are refused in that answer. The other side's
// real answer, when it comes, is applied by Answer as usual (a second
// answer to the same offer). Errors wrap ErrNoLocalAnswer or ErrClosed.
func (s *Session) AnswerLocally(to Side) ([]byte, error) {
	body, err := s.localAnswer(to)
	if err != nil {
		return nil, err
	}
	return s.Answer(to.Other(), body)
}

// localAnswer makes up the other side's answer to to's offer from the
// offer the session sent it.
func (s *Session) localAnswer(to Side) ([]byte, error) {
	if !to.valid() {
		return nil, fmt.Errorf("local answer to %s: invalid side", to)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, fmt.Errorf("local answer to %s: %w", to, ErrClosed)
	}
	other := to.Other()
	if !s.offered || s.offerFrom != to {
		return nil, fmt.Errorf("local answer to %s: %w: no offer from it waits", to, ErrNoLocalAnswer)
	}
	if s.kind[other] != KindRTP {
		return nil, fmt.Errorf("local answer to %s: %w: side %s speaks %s", to, ErrNoLocalAnswer, other, s.kind[other])
	}
	d, err := sdpconv.Parse(s.sent[other].body)
	if err != nil {
		return nil, fmt.Errorf("local answer to %s: %w: %w", to, ErrNoLocalAnswer, err)
	}
	return fakeAnswer(d)
}

// fakeAnswer writes a plain RTP answer to offer: its first audio m-line
// with a codec this build encodes gets that codec, every other m-line
// port 0.
func fakeAnswer(offer *sdpconv.Description) ([]byte, error) {
	var b strings.Builder
	b.WriteString("v=0\r\no=sbc 1 1 IN IP4 " + localHost + "\r\ns=-\r\nc=IN IP4 " + localHost + "\r\nt=0 0\r\n")
	found := false
	for _, m := range offer.Media {
		main, ev, ok := pickCodec(m)
		if found || !ok {
			f := "0"
			if len(m.Formats) > 0 {
				f = m.Formats[0]
			}
			b.WriteString("m=" + m.Type + " 0 " + m.Proto + " " + f + "\r\n")
			continue
		}
		found = true
		pts := strconv.Itoa(int(main.PT))
		if ev != nil {
			pts += " " + strconv.Itoa(int(ev.PT))
		}
		b.WriteString("m=audio 9 " + m.Proto + " " + pts + "\r\n")
		b.WriteString("a=rtpmap:" + strconv.Itoa(int(main.PT)) + " " + main.String() + "\r\n")
		if main.Fmtp != "" {
			b.WriteString("a=fmtp:" + strconv.Itoa(int(main.PT)) + " " + main.Fmtp + "\r\n")
		}
		if ev != nil {
			b.WriteString("a=rtpmap:" + strconv.Itoa(int(ev.PT)) + " " + ev.String() + "\r\n")
			b.WriteString("a=fmtp:" + strconv.Itoa(int(ev.PT)) + " 0-16\r\n")
		}
		b.WriteString("a=ptime:20\r\na=sendrecv\r\n") // the player's packets; most callees say the same
	}
	if !found {
		return nil, fmt.Errorf("%w: no audio codec this build can encode was offered", ErrNoLocalAnswer)
	}
	return []byte(b.String()), nil
}

// pickCodec returns the first codec of an offered audio m-line that this
// build encodes, and the telephone-event at its clock rate if offered.
func pickCodec(m sdpconv.Media) (main sdpconv.Codec, ev *sdpconv.Codec, ok bool) {
	if !m.Usable || m.Type != "audio" || m.UDPTL || m.Port == 0 {
		return main, nil, false
	}
	for _, c := range m.Codecs {
		if !ok && codec.Supported(c.Name) {
			main, ok = c, true
		}
	}
	for _, c := range m.Codecs {
		if ok && strings.EqualFold(c.Name, "telephone-event") && c.Rate == main.Rate {
			c := c
			ev = &c
			break
		}
	}
	return main, ev, ok
}

// Player is audio that Session.Play sends toward a side; announce.Player
// implements it.
type Player interface {
	// Play sends payloads in codec f through send, paced in real time,
	// each with its RTP timestamp step, until the audio ends, stop is
	// closed or send returns false. Its error wraps
	// codec.ErrUnsupported when f cannot be encoded.
	Play(f codec.Format, stop <-chan struct{}, send func(payload []byte, samples uint32) bool) error
}

// Playback is one Play under way. Its methods are safe for concurrent
// use.
type Playback struct {
	quit chan struct{}
	done chan struct{}
	once sync.Once
	sent atomic.Uint64
	err  error
}

// Stop ends the playback (it may already have ended) without waiting.
func (p *Playback) Stop() {
	p.once.Do(func() { close(p.quit) })
}

// Sent is the number of packets sent so far.
func (p *Playback) Sent() uint64 { return p.sent.Load() }

// Done is closed when the playback has ended: played out, stopped, the
// other side's media arrived or the session stopped.
func (p *Playback) Done() <-chan struct{} { return p.done }

// Err is, once Done is closed, why the audio could not play (nil when it
// did).
func (p *Playback) Err() error {
	<-p.done
	return p.err
}

// Play sends p's audio toward side to on the session's first audio
// stream, in the codec last answered toward to (the SDP the session sent
// it), on the goroutine of a task of the session. The packets join the
// stream the side receives: its SSRC, sequence numbers and timestamps
// continue into the relayed media. Playing ends by itself as soon as the
// other side's media is relayed toward to, and at Stop. Errors: ErrClosed,
// ErrNoLocalAnswer when nothing was answered toward to yet.
func (s *Session) Play(to Side, p Player) (*Playback, error) {
	if !to.valid() {
		return nil, fmt.Errorf("play to %s: invalid side", to)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, fmt.Errorf("play to %s: %w", to, ErrClosed)
	}
	f, fl, err := s.playTarget(to)
	if err != nil {
		return nil, fmt.Errorf("play to %s: %w", to, err)
	}
	pb := &Playback{quit: make(chan struct{}), done: make(chan struct{})}
	stop := s.stopChan()
	var tr *wrtc.Transport
	if w := s.wt[to]; w != nil && s.kind[to] == KindWebRTC {
		tr = w.t
	}
	s.evMu.Lock()
	s.tasks.Add(1)
	s.evMu.Unlock()
	go func() {
		defer s.tasks.Done()
		defer close(pb.done)
		if tr != nil && !s.awaitDTLS(tr, pb.quit, stop) {
			return
		}
		pb.err = p.Play(f, pb.quit, s.sender(fl, f.PT, &pb.sent, stop))
	}()
	return pb, nil
}

// dtlsPoll is how often a playback toward a browser looks whether its
// DTLS is up.
const dtlsPoll = 10 * time.Millisecond

// awaitDTLS waits until a WebRTC side's DTLS-SRTP is up, so that the
// audio plays from its start instead of being dropped while the browser
// connects (a 183's answer starts ICE and DTLS). False when the playback
// or the session stopped first, the handshake failed or its timeout
// passed.
func (s *Session) awaitDTLS(tr *wrtc.Transport, quit, stop <-chan struct{}) bool {
	limit := s.m.cfg.HandshakeTimeout
	if limit <= 0 {
		limit = DefaultHandshakeTimeout
	}
	deadline := time.NewTimer(limit)
	defer deadline.Stop()
	tick := time.NewTicker(dtlsPoll)
	defer tick.Stop()
	for {
		switch tr.State() {
		case wrtc.StateConnected:
			return true
		case wrtc.StateFailed, wrtc.StateClosed:
			return false
		}
		select {
		case <-tick.C:
		case <-quit:
			return false
		case <-stop:
			return false
		case <-deadline.C:
			return false
		}
	}
}

// playTarget finds the flow toward to of the first audio stream and the
// codec of the SDP sent to to. s.mu held.
func (s *Session) playTarget(to Side) (codec.Format, *flow, error) {
	d, err := sdpconv.Parse(s.sent[to].body)
	if err != nil {
		return codec.Format{}, nil, fmt.Errorf("%w: nothing answered toward it", ErrNoLocalAnswer)
	}
	for i, st := range s.streams {
		if st == nil || !st.audio || i >= len(d.Media) {
			continue
		}
		for _, c := range d.Media[i].Codecs {
			if strings.EqualFold(c.Name, "telephone-event") || strings.EqualFold(c.Name, "CN") {
				continue
			}
			f := codec.Format{Name: c.Name, PT: c.PT, ClockRate: int(c.Rate), Channels: int(c.Channels), Fmtp: c.Fmtp}
			return f, st.flows[to.Other()], nil
		}
	}
	return codec.Format{}, nil, fmt.Errorf("%w: no audio stream toward it", ErrNoLocalAnswer)
}

// sender returns the send function of a playback on flow f: each payload
// becomes an RTP packet of the flow's output stream, sent as relayed
// packets are, with payload type pt. It refuses (ending the playback) once the session stops or
// the flow has relayed media of its own since the playback began.
func (s *Session) sender(f *flow, pt uint8, sent *atomic.Uint64, stop <-chan struct{}) func(payload []byte, samples uint32) bool {
	relayed := f.c.packets.Load()
	base := monotonic()
	var (
		n   int64
		buf []byte
	)
	return func(payload []byte, samples uint32) bool {
		select {
		case <-stop:
			return false
		default:
		}
		if f.c.packets.Load() != relayed {
			return false // the other side's media reached the receiver
		}
		buf = append(buf[:0], make([]byte, 12)...)
		buf = append(buf, payload...)
		f.mu.Lock()
		defer f.mu.Unlock()
		// Timestamps from the schedule, not the clock: exactly one step
		// a packet whatever the goroutine's delays.
		seq, ts := f.norm.Next(samples, base+n*int64(20*time.Millisecond))
		n++
		buf[0], buf[1] = 0x80, pt
		if n == 1 {
			buf[1] |= 0x80 // marker: the start of a talkspurt
		}
		buf[2], buf[3] = byte(seq>>8), byte(seq)
		putUint32(buf[4:], ts)
		putUint32(buf[8:], f.norm.OutSSRC())
		if f.to.sendRTP(buf, out{}) {
			sent.Add(1)
		}
		return true
	}
}

func putUint32(b []byte, v uint32) {
	b[0], b[1], b[2], b[3] = byte(v>>24), byte(v>>16), byte(v>>8), byte(v)
}
