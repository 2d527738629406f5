package e2e

import (
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtp"
)

// The media every test endpoint sends: 20 ms PCMU frames, 50 per second.
const (
	FrameSamples  = 160 // 20 ms at 8000 Hz
	FrameInterval = 20 * time.Millisecond
	PTPCMU        = 0
	// RFC 4733 events are 5 packets while the key is down, then the end
	// packet 3 times, as RFC 4733 section 2.5.1.4 recommends.
	dtmfPackets    = 5
	dtmfEndPackets = 3
	dtmfQuiet      = 3 // audio frames between two digits
)

// RTPSource generates one RTP stream: PCMU-sized frames whose payload
// starts with a 4-byte marker and a frame counter, so a receiver can tell
// whose packets it got (an echo of its own, or the far end's), and RFC 4733
// events in place of audio while digits are queued. Safe for concurrent
// use.
type RTPSource struct {
	Mu     sync.Mutex
	SSRC   uint32
	seq    uint16
	ts     uint32
	pt     uint8
	dtmfPT uint8
	marker [4]byte
	frames uint32
	digits []byte
	event  *dtmfEvent
	quiet  int
	paused bool
}

type dtmfEvent struct {
	code byte
	ts   uint32
	n    int // packets sent so far
}

func NewRTPSource(marker string, pt, dtmfPT uint8) *RTPSource {
	s := &RTPSource{SSRC: rand.Uint32(), seq: uint16(rand.Uint32()), ts: rand.Uint32(), pt: pt, dtmfPT: dtmfPT}
	copy(s.marker[:], marker)
	return s
}

// setPT sets the payload types used from the next packet on.
func (s *RTPSource) SetPT(pt, dtmfPT uint8) {
	s.Mu.Lock()
	s.pt, s.dtmfPT = pt, dtmfPT
	s.Mu.Unlock()
}

// pause stops (true) or resumes (false) the stream; the clock keeps running
// while paused, as a muted phone's does.
func (s *RTPSource) Pause(p bool) {
	s.Mu.Lock()
	s.paused = p
	s.Mu.Unlock()
}

// jump switches to a new stream the way a PBX does when ringback ends and
// the callee's media starts: new SSRC, sequence number +30000, timestamp
// base moved by a random amount, and a new payload marker.
func (s *RTPSource) Jump(marker string) {
	s.Mu.Lock()
	defer s.Mu.Unlock()
	for old := s.SSRC; s.SSRC == old; {
		s.SSRC = rand.Uint32()
	}
	s.seq += 30000
	s.ts += 1_000_000 + rand.Uint32N(1_000_000_000)
	copy(s.marker[:], marker)
}

// queueDigits sends digits as RFC 4733 events, one after the other.
func (s *RTPSource) QueueDigits(digits string) {
	s.Mu.Lock()
	s.digits = append(s.digits, digits...)
	s.Mu.Unlock()
}

// digitsPending reports whether queued digits are not fully sent yet.
func (s *RTPSource) digitsPending() bool {
	s.Mu.Lock()
	defer s.Mu.Unlock()
	return len(s.digits) > 0 || s.event != nil
}

// next returns the packet for the next 20 ms tick; ok is false while
// paused. The timestamp advances every tick, as a sender's clock does.
func (s *RTPSource) Next() (h rtp.Header, payload []byte, ok bool) {
	s.Mu.Lock()
	defer s.Mu.Unlock()
	ts := s.ts
	s.ts += FrameSamples
	if s.paused {
		return h, nil, false
	}
	h = rtp.Header{Version: 2, SequenceNumber: s.seq, SSRC: s.SSRC, Timestamp: ts, PayloadType: s.pt}
	s.seq++
	if s.event == nil && len(s.digits) > 0 && s.quiet == 0 {
		s.event = &dtmfEvent{code: dtmfCode(s.digits[0]), ts: ts}
		s.digits = s.digits[1:]
	}
	if e := s.event; e != nil {
		return s.nextEvent(h, e), s.eventPayload(e), true
	}
	if s.quiet > 0 {
		s.quiet--
	}
	payload = make([]byte, FrameSamples)
	copy(payload, s.marker[:])
	binary.BigEndian.PutUint32(payload[4:], s.frames)
	s.frames++
	for i := 8; i < len(payload); i++ {
		payload[i] = byte(i)
	}
	return h, payload, true
}

func (s *RTPSource) nextEvent(h rtp.Header, e *dtmfEvent) rtp.Header {
	h.PayloadType = s.dtmfPT
	h.Timestamp = e.ts
	h.Marker = e.n == 0
	return h
}

// eventPayload is the RFC 4733 payload of the event's next packet: the
// duration grows while the key is down, then the end packet repeats.
func (s *RTPSource) eventPayload(e *dtmfEvent) []byte {
	e.n++
	dur := uint16(min(e.n, dtmfPackets+1) * FrameSamples)
	p := []byte{e.code, 10, byte(dur >> 8), byte(dur)} // volume -10 dBm0
	if e.n > dtmfPackets {
		p[1] |= 0x80 // E bit
	}
	if e.n == dtmfPackets+dtmfEndPackets {
		s.event = nil
		s.quiet = dtmfQuiet
	}
	return p
}

// dtmfCode is the RFC 4733 event code of a DTMF digit.
func dtmfCode(d byte) byte {
	switch {
	case d >= '0' && d <= '9':
		return d - '0'
	case d == '*':
		return 10
	case d == '#':
		return 11
	case d >= 'A' && d <= 'D':
		return 12 + d - 'A'
	}
	return 0
}

// dtmfDigit is the digit of an RFC 4733 event code.
func dtmfDigit(code byte) byte {
	const digits = "0123456789*#ABCD"
	if int(code) < len(digits) {
		return digits[code]
	}
	return '?'
}

// RTPStats counts what one endpoint received: packets by payload marker,
// SSRC and payload type, sequence continuity, timestamp jumps compared
// with the arrival clock, and completed RFC 4733 events. Safe for
// concurrent use.
type RTPStats struct {
	mu        sync.Mutex
	dtmfPT    uint8 // the telephone-event PT this endpoint expects
	packets   int
	byMarker  map[string]int
	ssrcs     map[uint32]int
	byPT      map[uint8]int
	have      bool
	lastSeq   uint16
	lastTS    uint32
	lastAt    time.Time
	seqGaps   int   // packets whose sequence number is not the last one + 1
	maxSeqGap int   // the largest such difference (mod 2^16, as signed)
	tsBack    int   // packets whose timestamp went backwards
	maxTSJump int64 // largest timestamp step beyond the arrival clock, samples
	digits    []byte
	eventsAt  map[uint64]bool // SSRC<<32|timestamp of events already ended
	corrupt   int             // frames with a marker whose pattern bytes changed
	open      uint64          // the event (SSRC<<32|timestamp) in progress, if any
	overlaps  int             // packets of one event while another was in progress
	foreign   []ForeignFrame  // audio that is no RTPSource's frame (the SBC's own), the first maxForeign
}

// ForeignFrame is a received audio packet that is no RTPSource's frame:
// a tone or announcement the SBC played.
type ForeignFrame struct {
	PT      uint8
	SSRC    uint32
	Seq     uint16
	TS      uint32
	Payload []byte
}

// maxForeign bounds the ForeignFrames an RTPStats keeps: 20 s of audio.
const maxForeign = 1000

// Foreign returns the foreign audio frames received so far, in order.
func (s *RTPStats) Foreign() []ForeignFrame {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.foreign)
}

func newRTPStats(dtmfPT uint8) *RTPStats {
	return &RTPStats{dtmfPT: dtmfPT, byMarker: map[string]int{}, ssrcs: map[uint32]int{}, byPT: map[uint8]int{},
		eventsAt: map[uint64]bool{}}
}

// add accounts one received RTP packet; other data is ignored.
func (s *RTPStats) add(b []byte, now time.Time) {
	var p rtp.Packet
	if len(b) < 12 || b[0]>>6 != 2 || (b[1] >= 192 && b[1] <= 223) || p.Unmarshal(b) != nil {
		return // not RTP (RTCP, STUN or garbage)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.packets++
	s.ssrcs[p.SSRC]++
	s.byPT[p.PayloadType]++
	if len(p.Payload) >= 8 {
		s.byMarker[string(p.Payload[:4])]++
		if !framePattern(p.Payload) {
			s.corrupt++
		}
	}
	if p.PayloadType != s.dtmfPT && !framePattern(p.Payload) && len(s.foreign) < maxForeign {
		s.foreign = append(s.foreign, ForeignFrame{PT: p.PayloadType, SSRC: p.SSRC, Seq: p.SequenceNumber,
			TS: p.Timestamp, Payload: slices.Clone(p.Payload)})
	}
	if p.PayloadType == s.dtmfPT && len(p.Payload) >= 4 {
		s.event(&p)
	}
	s.continuity(&p, now)
}

// framePattern reports whether an RTPSource frame arrived unchanged.
func framePattern(payload []byte) bool {
	if len(payload) != FrameSamples {
		return false
	}
	for i := 8; i < len(payload); i++ {
		if payload[i] != byte(i) {
			return false
		}
	}
	return true
}

// event records a digit at its first end packet, and counts packets of an
// event that arrive while another one has not ended: RFC 4733 events of
// one stream follow each other, they never overlap.
func (s *RTPStats) event(p *rtp.Packet) {
	key := uint64(p.SSRC)<<32 | uint64(p.Timestamp)
	if s.eventsAt[key] {
		return // a redundant end packet
	}
	if s.open != 0 && s.open != key {
		s.overlaps++
	}
	s.open = key
	if p.Payload[1]&0x80 != 0 {
		s.eventsAt[key] = true
		s.digits = append(s.digits, dtmfDigit(p.Payload[0]))
		s.open = 0
	}
}

// continuity compares the packet with the previous one.
func (s *RTPStats) continuity(p *rtp.Packet, now time.Time) {
	defer func() { s.have, s.lastSeq, s.lastTS, s.lastAt = true, p.SequenceNumber, p.Timestamp, now }()
	if !s.have {
		return
	}
	if d := int(int16(p.SequenceNumber - s.lastSeq)); d != 1 {
		s.seqGaps++
		s.maxSeqGap = max(s.maxSeqGap, abs(d))
	}
	step := int64(int32(p.Timestamp - s.lastTS))
	if step < 0 {
		s.tsBack++
	}
	clock := int64(now.Sub(s.lastAt) / (time.Second / 8000))
	s.maxTSJump = max(s.maxTSJump, abs64(step)-clock)
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}

func abs64(n int64) int64 {
	if n < 0 {
		return -n
	}
	return n
}

// rtpSnapshot is a copy of RTPStats at one moment.
type rtpSnapshot struct {
	Packets   int
	byMarker  map[string]int
	SSRCs     map[uint32]int
	ByPT      map[uint8]int
	SeqGaps   int
	MaxSeqGap int
	TSBack    int
	MaxTSJump int64
	Digits    string
	Overlaps  int
	Corrupt   int
}

func (s *RTPStats) Snapshot() rtpSnapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := rtpSnapshot{Packets: s.packets, byMarker: map[string]int{}, SSRCs: map[uint32]int{}, ByPT: map[uint8]int{},
		SeqGaps: s.seqGaps, MaxSeqGap: s.maxSeqGap, TSBack: s.tsBack, MaxTSJump: s.maxTSJump, Digits: string(s.digits),
		Overlaps: s.overlaps, Corrupt: s.corrupt}
	for k, v := range s.byMarker {
		c.byMarker[k] = v
	}
	for k, v := range s.ssrcs {
		c.SSRCs[k] = v
	}
	for k, v := range s.byPT {
		c.ByPT[k] = v
	}
	return c
}

// marker returns how many packets carried the payload marker m.
func (s *RTPStats) Marker(m string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.byMarker[m]
}

// rtpPeer is a plain RTP endpoint on one UDP socket: it records what it
// receives, echoes it back to the sender when echo is set, and sends its
// own stream from src to a destination while started.
type rtpPeer struct {
	Conn    *net.UDPConn
	Rx      *RTPStats
	Src     *RTPSource
	echo    atomic.Bool
	sending atomic.Bool
	Dst     atomic.Pointer[net.UDPAddr]
	from    atomic.Pointer[net.UDPAddr] // source of the last packet received
	sent    atomic.Int64
	done    chan struct{}
	wg      sync.WaitGroup
	once    sync.Once
}

// NewRTPPeer is openRTPPeer for the test goroutine: the peer is closed
// when the test ends.
func NewRTPPeer(t *testing.T, ip string, src *RTPSource, dtmfPT uint8) *rtpPeer {
	t.Helper()
	p, err := openRTPPeer(ip, src, dtmfPT)
	if err != nil {
		t.Fatalf("rtp peer: %v", err)
	}
	t.Cleanup(p.close)
	return p
}

// openRTPPeer binds an even UDP port on ip (so the RTCP port is the next
// one, as SDP implies) and starts its goroutines, which stop at close.
func openRTPPeer(ip string, src *RTPSource, dtmfPT uint8) (*rtpPeer, error) {
	conn, err := listenEvenUDP(ip)
	if err != nil {
		return nil, err
	}
	p := &rtpPeer{Conn: conn, Rx: newRTPStats(dtmfPT), Src: src, done: make(chan struct{})}
	p.wg.Go(p.readLoop)
	if src != nil {
		p.wg.Go(p.sendLoop)
	}
	return p, nil
}

func listenEvenUDP(ip string) (*net.UDPConn, error) {
	for range 50 {
		c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(ip)})
		if err != nil {
			return nil, err
		}
		if c.LocalAddr().(*net.UDPAddr).Port%2 == 0 {
			return c, nil
		}
		c.Close()
	}
	return nil, errors.New("no even port")
}

func (p *rtpPeer) Port() int { return p.Conn.LocalAddr().(*net.UDPAddr).Port }

// start sends the peer's own stream to dst from now on.
func (p *rtpPeer) Start(dst *net.UDPAddr) {
	p.Dst.Store(dst)
	p.sending.Store(true)
}

// stop ends sending the own stream (echo is separate).
func (p *rtpPeer) Stop() { p.sending.Store(false) }

func (p *rtpPeer) close() {
	p.once.Do(func() {
		close(p.done)
		p.Conn.Close()
	})
	p.wg.Wait()
}

func (p *rtpPeer) readLoop() {
	buf := make([]byte, 1500)
	for {
		n, from, err := p.Conn.ReadFromUDP(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		p.from.Store(from)
		p.Rx.add(buf[:n], time.Now())
		if p.echo.Load() {
			_, _ = p.Conn.WriteToUDP(buf[:n], from)
		}
	}
}

func (p *rtpPeer) sendLoop() {
	tick := time.NewTicker(FrameInterval)
	defer tick.Stop()
	for {
		select {
		case <-p.done:
			return
		case <-tick.C:
		}
		dst := p.Dst.Load()
		if !p.sending.Load() || dst == nil {
			continue
		}
		h, payload, ok := p.Src.Next()
		if !ok {
			continue
		}
		b, err := (&rtp.Packet{Header: h, Payload: payload}).Marshal()
		if err != nil {
			continue
		}
		if _, err := p.Conn.WriteToUDP(b, dst); err == nil {
			p.sent.Add(1)
		}
	}
}
