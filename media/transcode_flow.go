package media

import (
	"encoding/binary"
	"sync"
	"sync/atomic"

	"github.com/sbc-project/sbc/media/codec"
)

// flowTranscoder is the transcoder of one direction of a stream, its
// flow's: the plan of a transcoded flow carries it (a plan of its own,
// never shared through the plan cache), and a later plan for the same
// direction keeps it. Its fields other than src are used under the
// flow's lock.
type flowTranscoder struct {
	t    *codec.Transcoder
	dir  codec.Direction
	rate uint32 // the output's RTP clock, for the normalizer and injected digits
	f    *flow
	emit func([]byte) // f.emitTranscoded bound once: no allocation per packet
	now  int64        // the packet's arrival
	// in is the timestamp of the source's last packet fed to the
	// transcoder, out that of the last packet it emitted (before
	// normalization): the mapping of the source's sender reports onto the
	// emitted stream. src is that packet's SSRC, read by the opposite
	// flow's RTCP (feedback about the emitted stream names it).
	in, out uint32
	src     atomic.Uint32
}

func newFlowTranscoder(f *flow, t *codec.Transcoder, dir codec.Direction) *flowTranscoder {
	tc := &flowTranscoder{t: t, dir: dir, rate: uint32(dir.To.ClockRate), f: f}
	tc.emit = tc.send
	return tc
}

// transcode hands one plain RTP packet from the source side to the
// flow's transcoder; each packet it emits takes the normal way out
// (normalizer, the far endpoint's encryption, the socket). Called under
// f.mu by rtpAt.
func (f *flow) transcode(pkt []byte, tc *flowTranscoder, now int64) {
	tc.now = now
	tc.src.Store(binary.BigEndian.Uint32(pkt[8:]))
	tc.in = binary.BigEndian.Uint32(pkt[4:])
	if err := tc.t.Packet(pkt, tc.emit); err != nil {
		f.c.malformed.Add(1)
	}
}

// send sends one packet the transcoder emitted. It is sent at once,
// never queued in the reader's batch: the transcoder reuses its buffer
// for the next packet. Called under the flow's lock.
func (tc *flowTranscoder) send(pkt []byte) {
	f := tc.f
	tc.out = binary.BigEndian.Uint32(pkt[4:])
	if !f.norm.Rewrite(pkt, tc.rate, tc.now) {
		f.c.malformed.Add(1)
		return
	}
	if f.to.sendRTP(pkt, out{ctr: &f.c}) {
		if f.c.packets.Add(1) == 1 {
			f.milestone(Event{Kind: EventFirstRTP})
		}
		f.c.bytes.Add(uint64(len(pkt)))
	} else {
		f.c.dropped.Add(1)
	}
}

// transcodedRTCP makes the RTCP of a transcoded flow's source speak of
// the stream the transcoder emits, which is the one the receiver gets:
// the source's SSRC becomes the transcoder's (the normalizer then maps it
// like any source's), and a sender report's RTP timestamp moves to the
// output clock through the last packet's mapping. The report's packet
// and octet counts stay the source's (the receiver's loss figures come
// from its own receiver reports, per leg). Called under f.mu; pkt is a
// compound the caller has not validated yet: short parts are left alone.
func (f *flow) transcodedRTCP(pkt []byte, p *flowPlan) {
	tc := p.tc
	src := tc.src.Load()
	for len(pkt) >= 8 {
		n := 4 * (int(binary.BigEndian.Uint16(pkt[2:])) + 1)
		if n > len(pkt) {
			return
		}
		part := pkt[:n]
		switch t := part[1]; {
		case (t == 200 || t == 201) && binary.BigEndian.Uint32(part[4:]) == src:
			binary.BigEndian.PutUint32(part[4:], tc.dir.SSRC)
			if t == 200 && len(part) >= 20 && p.clockRate > 0 {
				in := int64(int32(binary.BigEndian.Uint32(part[16:]) - tc.in))
				binary.BigEndian.PutUint32(part[16:], tc.out+uint32(in*int64(tc.rate)/int64(p.clockRate)))
			}
		case t == 203 && part[0]&0x1f >= 1 && binary.BigEndian.Uint32(part[4:]) == src:
			binary.BigEndian.PutUint32(part[4:], tc.dir.SSRC) // BYE
		}
		pkt = pkt[n:]
	}
}

// transcodeSlots counts a manager's transcoding sessions: slots held
// (offers that may transcode and sessions that do) for admission against
// max, and sessions transcoding now and ever for the metrics.
type transcodeSlots struct {
	max int // Config.MaxTranscoded; 0: no cap

	mu    sync.Mutex
	slots int

	active atomic.Int64
	total  atomic.Uint64
}

// take holds a slot; force takes one even past the cap.
func (t *transcodeSlots) take(force bool) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !force && t.max > 0 && t.slots >= t.max {
		return false
	}
	t.slots++
	return true
}

func (t *transcodeSlots) release() {
	t.mu.Lock()
	t.slots--
	t.mu.Unlock()
}

// started counts a session that begins transcoding; first: for the
// first time (the total counts calls).
func (t *transcodeSlots) started(first bool) {
	t.active.Add(1)
	if first {
		t.total.Add(1)
	}
}

func (t *transcodeSlots) stopped() { t.active.Add(-1) }

// reserveTranscoding holds a slot for an offer that may transcode; false
// at Config.MaxTranscoded.
func (m *Manager) reserveTranscoding() bool { return m.tc.take(false) }

// Transcoding returns how many sessions transcode now and how many did
// since the manager started (the sbc_transcoded_calls gauge and
// sbc_transcoded_calls_total).
func (m *Manager) Transcoding() (active int, total uint64) {
	return int(m.tc.active.Load()), m.tc.total.Load()
}
