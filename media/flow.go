package media

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/sbc-project/sbc/media/poll"
	"github.com/sbc-project/sbc/media/rtpproc"
	"github.com/sbc-project/sbc/media/wrtc"
)

// monotonic is the clock of the arrival times the per-packet path hands
// to rtpproc: the poll loops' (poll.Monotonic), so that a time a loop read
// once per wake-up (sendBatch.Now) is on it too.
func monotonic() int64 { return poll.Monotonic() }

// flow is one direction of one stream: the packets one side sends, on
// their way to the endpoint facing the other side. Every endpoint's reader
// hands its decrypted packets to the flow of its side; the flow counts
// them, takes out DTMF the far side wants as SIP INFO, maps payload types
// and keeps the stream continuous for the receiver (one SSRC, continuous
// sequence numbers and timestamps) before sending.
//
// The reader goroutines of one side call rtp and rtcp; inject (generated
// DTMF) comes from signaling. mu serializes the three, so the normalizer
// and the far endpoint's encryption see one packet at a time; it is per
// flow, never shared between calls.
type flow struct {
	// What every packet reads comes first, with the counters it adds to
	// (received, packets, bytes lead flowCounters): one cache line.
	mu sync.Mutex
	// Negotiated state, swapped by signaling, read per packet.
	plan  atomic.Pointer[flowPlan]
	to    endpoint // the endpoint facing the receiving side
	norm  *rtpproc.Normalizer
	c     flowCounters
	stats rtpproc.RecvStats
	dtmf  rtpproc.DTMFDetector

	// s hears, from the readers, of the digits taken out of the stream
	// (the receiving side wants INFO) and of the flow's milestones (first
	// RTP relayed, a new segment of the stream, a digit relayed as RFC
	// 4733; latches are the socket's, latch.go), as events from side
	// from; nil: of none. A restored flow reports digits only (quiet).
	// They replace two closures a flow (112 bytes a call).
	s     *Session
	from  uint8 // a Side
	quiet bool
	// back is the opposite flow of the same stream, whose output SSRC
	// the receiver's RTCP feedback refers to.
	back *flow
	// sdes is the SDES packet the receiver gets in place of the source's:
	// the normalized stream's SSRC and the SBC's CNAME toward the
	// receiving side. Set before the readers start; nil removes SDES.
	sdes []byte
	// tap reports the RTCP received and sent; nil when Config.RTCP is.
	tap *rtcpTap
}

// flowPlan is what the offer/answer decided for one direction.
type flowPlan struct {
	pt        rtpproc.PTMap
	eventPT   int16  // telephone-event PT as the source sends it; -1 none
	outEvent  int16  // telephone-event PT toward the receiver; -1 none
	clockRate uint32 // of the main codec, for jitter and normalization
	codec     string // the main codec's name, for MOS
	toInfo    bool   // the receiver wants digits as SIP INFO
	// tc, when set, transcodes the flow (transcode_flow.go): a plan of
	// its own, never interned.
	tc *flowTranscoder
}

func newFlow(to endpoint, ssrc uint32) *flow {
	f := &flow{to: to, norm: rtpproc.NewNormalizer(ssrc)}
	f.plan.Store(initialPlan)
	return f
}

// rtp handles one decrypted RTP packet from the source side, arrived now.
func (f *flow) rtp(pkt []byte) { f.rtpAt(pkt, monotonic(), nil) }

// out is how a flow's packet leaves: queued in a poll loop's batch b
// (uring_linux.go), or sent at once when b is nil. ctr and rtcp name the
// counters the packet is counted in, which the batch corrects if the
// queued send fails.
type out struct {
	b    *sendBatch
	ctr  *flowCounters
	rtcp bool
}

// rtpAt handles one decrypted RTP packet from the source side that
// arrived at now (monotonic ns); b is the reader's loop's batch, or nil.
// It is the per-packet hot path: no allocation, no logging, only this
// flow's lock.
func (f *flow) rtpAt(pkt []byte, now int64, b *sendBatch) {
	if len(pkt) < 12 || pkt[0]>>6 != 2 {
		f.c.malformed.Add(1)
		return
	}
	f.c.received.Add(1)
	p := f.plan.Load()
	pt := int16(pkt[1] & 0x7f)
	f.mu.Lock()
	defer f.mu.Unlock()
	if pt == p.eventPT && p.eventPT >= 0 {
		if f.event(pkt, p) {
			return
		}
	} else {
		f.stats.Update(pkt, p.clockRate, now)
	}
	if p.tc != nil {
		f.transcode(pkt, p.tc, now)
		return
	}
	if !p.pt.Apply(pkt) {
		f.c.dropped.Add(1)
		return
	}
	inSSRC, seg := f.norm.InSSRC(), f.norm.Segments()
	if !f.norm.Rewrite(pkt, p.clockRate, now) {
		f.c.malformed.Add(1)
		return
	}
	if seg != 0 && f.norm.Segments() != seg {
		f.milestone(Event{Kind: EventSSRCSwitch, PrevSSRC: inSSRC, SSRC: f.norm.InSSRC()})
	}
	if f.to.sendRTP(pkt, out{b: b, ctr: &f.c}) {
		if f.c.packets.Add(1) == 1 {
			f.milestone(Event{Kind: EventFirstRTP})
		}
		f.c.bytes.Add(uint64(len(pkt)))
	} else {
		f.c.dropped.Add(1)
	}
}

// milestone reports ev to the session, from the flow's side, unless the
// flow is quiet or has no session. Called once per event: it must not
// block (emit does not).
func (f *flow) milestone(ev Event) {
	if f.s == nil || f.quiet {
		return
	}
	ev.From = Side(f.from)
	f.s.emit(ev)
}

// event handles a telephone-event packet: a digit is reported once, when
// it ends; taken out of the stream (true: the packet is done) when the
// receiver wants SIP INFO, else relayed. Called under f.mu.
func (f *flow) event(pkt []byte, p *flowPlan) bool {
	ev, ended, _ := f.dtmf.Feed(pkt, uint8(p.eventPT), p.clockRate)
	if p.toInfo {
		if ended && f.s != nil {
			f.s.emit(Event{Kind: EventDTMF, From: Side(f.from), DTMF: DTMF{Digit: ev.Digit, Duration: ev.Duration}})
		}
		f.c.dtmfToInfo.Add(1)
		return true
	}
	if ended {
		f.milestone(Event{Kind: EventDTMFRelayed, DTMF: DTMF{Digit: ev.Digit, Duration: ev.Duration}})
	}
	return false
}

// rtcp handles one decrypted RTCP compound packet from the source side:
// its sender reports move into the normalized stream's SSRC space, its
// feedback about the normalized stream the source receives is mapped back
// to that stream's original SSRC, and its SDES items (CNAME, NAME, TOOL,
// ...), which would name the source to the receiver, give way to the
// SBC's own. pkt may grow into its spare capacity (rtpproc.ReplaceSDES).
func (f *flow) rtcp(pkt []byte) { f.rtcpVia(pkt, nil) }

// rtcpVia is rtcp with the reader's loop's batch b, or nil.
func (f *flow) rtcpVia(pkt []byte, b *sendBatch) {
	if f.tap != nil && f.back != nil {
		f.tap.received(pkt, f.back.to) // before the rewriting below, in place
	}
	f.mu.Lock()
	if p := f.plan.Load(); p.tc != nil {
		f.transcodedRTCP(pkt, p)
	}
	ok := f.norm.RewriteSenderRTCP(pkt)
	f.mu.Unlock()
	if ok && f.back != nil {
		b := f.back.norm
		in := b.InSSRC()
		if tc := f.back.plan.Load().tc; tc != nil {
			in = tc.src.Load() // the source of what the transcoder sends
		}
		ok = rtpproc.RewriteFeedbackRTCP(pkt, b.OutSSRC(), in)
	}
	if ok {
		pkt, ok = rtpproc.ReplaceSDES(pkt, f.sdes)
	}
	if !ok {
		f.c.malformed.Add(1)
		return
	}
	if len(pkt) == 0 {
		f.c.dropped.Add(1) // only SDES, and no room for the SBC's
		return
	}
	if f.to.sendRTCP(pkt, out{b: b, ctr: &f.c, rtcp: true}) {
		f.c.rtcpPackets.Add(1)
		f.c.rtcpBytes.Add(uint64(len(pkt)))
		if f.tap != nil {
			f.tap.sent(pkt, f.to)
		}
	} else {
		f.c.dropped.Add(1)
	}
}

// RTP and RTCP make a flow the Sink of a WebRTC transport's route. The
// transport's decrypt buffer has room for RTCP to grow.
func (f *flow) RTP(pkt []byte)  { f.rtp(pkt) }
func (f *flow) RTCP(pkt []byte) { f.rtcp(pkt) }

// RTPBatch makes a flow a wrtc.BatchSink: pkt stays valid until the
// reading poll loop flushes b, so its send toward the other side waits
// in b with the others of the loop's wake-up.
func (f *flow) RTPBatch(pkt []byte, b *sendBatch) {
	now := b.Now() // the WebRTC loop's wake-up: no clock read per packet
	if now == 0 {
		now = monotonic()
	}
	f.rtpAt(pkt, now, b)
}

var _ wrtc.BatchSink = (*flow)(nil)

// inject sends a generated RFC 4733 event toward the receiver, paced in
// real time on the caller's goroutine, in the normalized stream's
// sequence and timestamp space. It reports false if the receiver did not
// negotiate telephone-event.
func (f *flow) inject(d DTMF, stop <-chan struct{}) bool {
	p := f.plan.Load()
	if p.outEvent < 0 {
		return false
	}
	rate := p.clockRate
	if p.tc != nil {
		rate = p.tc.rate // digits go out at the clock of the transcoder's output
	}
	f.mu.Lock()
	seq, ts := f.norm.Next(rate/50, monotonic())
	ssrc := f.norm.OutSSRC()
	f.mu.Unlock()
	pkts, err := rtpproc.EventPackets(d.Digit, d.Duration, uint8(p.outEvent), ssrc, seq, ts, rate, 10)
	if err != nil {
		return false
	}
	t := time.NewTicker(rtpproc.EventInterval)
	defer t.Stop()
	for i, pkt := range pkts {
		// The updates go out every EventInterval; the redundant end
		// packets right after each other.
		if i > 0 && !(isEventEnd(pkt) && isEventEnd(pkts[i-1])) {
			select {
			case <-t.C:
			case <-stop:
				return true
			}
		}
		f.mu.Lock()
		if i > 0 {
			// Keep the train's sequence numbers in the stream's space even
			// if relayed packets went out meanwhile.
			nseq, _ := f.norm.Next(0, monotonic())
			pkt[2], pkt[3] = byte(nseq>>8), byte(nseq)
		}
		if f.to.sendRTP(pkt, out{}) {
			f.c.dtmfInjected.Add(1)
		}
		f.mu.Unlock()
	}
	return true
}

// isEventEnd reports whether an RFC 4733 packet has its E bit set.
func isEventEnd(pkt []byte) bool {
	off := 12 + 4*int(pkt[0]&0x0f)
	return len(pkt) > off+1 && pkt[off+1]&0x80 != 0
}
