package media

import (
	"sync"
	"sync/atomic"
)

// flowCounters count one direction of one stream. All fields are atomics.
type flowCounters struct {
	received     atomic.Uint64 // RTP packets accepted from the source side
	packets      atomic.Uint64 // RTP packets relayed
	bytes        atomic.Uint64
	rtcpPackets  atomic.Uint64 // RTCP packets relayed
	rtcpBytes    atomic.Uint64
	dropped      atomic.Uint64
	foreign      atomic.Uint64 // refused for their source; the refused* split it
	malformed    atomic.Uint64 // not RTP/RTCP, or cut short
	srtpFailed   atomic.Uint64 // SDES-SRTP authentication failures and replays
	dtmfToInfo   atomic.Uint64 // telephone-event packets turned into INFO
	dtmfInjected atomic.Uint64 // generated telephone-event packets sent

	refusedJunk   atomic.Uint64
	refusedPT     atomic.Uint64
	refusedAuth   atomic.Uint64
	refusedSource atomic.Uint64
	relatched     atomic.Uint64
	udptl         atomic.Uint64 // UDPTL (T.38) datagrams relayed
}

func (f *flow) snapshot() Flow {
	c := &f.c
	p := f.plan.Load()
	rs := f.stats.Snapshot(p.codec)
	return Flow{
		Packets:       c.packets.Load(),
		Bytes:         c.bytes.Load(),
		RTCPPackets:   c.rtcpPackets.Load(),
		RTCPBytes:     c.rtcpBytes.Load(),
		Dropped:       c.dropped.Load(),
		Foreign:       c.foreign.Load(),
		RefusedJunk:   c.refusedJunk.Load(),
		RefusedPT:     c.refusedPT.Load(),
		RefusedAuth:   c.refusedAuth.Load(),
		RefusedSource: c.refusedSource.Load(),
		Relatched:     c.relatched.Load(),
		Malformed:     c.malformed.Load(),
		SRTPFailed:    c.srtpFailed.Load(),
		UDPTL:         c.udptl.Load(),
		Lost:          rs.Lost,
		JitterMs:      rs.JitterMs,
		MOS:           rs.MOS,
	}
}

// Stats counts a session's relayed media per direction. Counters only grow
// and include streams already released, so Stats after Close is final.
type Stats struct {
	AtoB, BtoA Flow
}

// Flow counts one direction of media. Bytes are UDP payload bytes.
type Flow struct {
	Packets, Bytes         uint64 // RTP relayed
	RTCPPackets, RTCPBytes uint64 // RTCP relayed
	// Dropped counts packets from the accepted source that were not
	// relayed: the far side's address is unknown or on hold, or the write
	// failed.
	Dropped uint64
	// Foreign counts packets refused for their source: they came from a
	// source other than the latched one, or before any was latched, and
	// the latch rules (see latch.go) did not let them in. The Refused
	// counters split it by reason: RefusedJunk, not RTP or RTCP;
	// RefusedPT, RTP with a payload type the stream did not negotiate;
	// RefusedAuth, SDES-SRTP that did not authenticate (or came before
	// the keys); RefusedSource, valid media from a source the rules did
	// not prefer over the latched one (or, before a latch, over the SDP
	// and signaling addresses).
	Foreign                                            uint64
	RefusedJunk, RefusedPT, RefusedAuth, RefusedSource uint64
	// Relatched counts the moves of the latch from one source to another:
	// the SDP or signaling address taking over, a NAT rebinding followed.
	Relatched uint64
	// Malformed counts packets from the latched source that were not RTP
	// or RTCP; SRTPFailed SDES-SRTP packets from it that failed
	// authentication or were replays.
	Malformed, SRTPFailed uint64
	// UDPTL counts the T.38 datagrams relayed (udptl.go), which Packets
	// and Bytes count too.
	UDPTL uint64
	// Lost, JitterMs and MOS describe the RTP received from the source
	// side: packets lost (RFC 3550 A.3), interarrival jitter in ms (A.8)
	// and an E-model MOS estimate (0 when nothing was received).
	Lost     int64
	JitterMs float64
	MOS      float64
}

func (f *Flow) add(g Flow) {
	f.Packets += g.Packets
	f.Bytes += g.Bytes
	f.RTCPPackets += g.RTCPPackets
	f.RTCPBytes += g.RTCPBytes
	f.Dropped += g.Dropped
	f.Foreign += g.Foreign
	f.RefusedJunk += g.RefusedJunk
	f.RefusedPT += g.RefusedPT
	f.RefusedAuth += g.RefusedAuth
	f.RefusedSource += g.RefusedSource
	f.Relatched += g.Relatched
	f.Malformed += g.Malformed
	f.SRTPFailed += g.SRTPFailed
	f.UDPTL += g.UDPTL
	f.Lost += g.Lost
	// Several streams: keep the worst.
	f.JitterMs = max(f.JitterMs, g.JitterMs)
	if g.MOS > 0 && (f.MOS == 0 || g.MOS < f.MOS) {
		f.MOS = g.MOS
	}
}

// Relayed counts the packets a Manager's sessions relayed, both ways,
// since it was created. Both only grow.
type Relayed struct {
	RTP, RTCP uint64
}

// Relayed returns the packets relayed so far by every session, live ones
// included: the relay's throughput, read at any moment (a metrics scrape)
// without waiting for calls to end. It reads the streams' own counters,
// so the relay pays nothing per packet for it. Safe for concurrent use.
func (m *Manager) Relayed() Relayed { return m.relay.total() }

// relayCounter sums the counters of live streams and of stopped ones.
type relayCounter struct {
	mu      sync.Mutex
	live    map[*stream]struct{}
	retired Relayed
}

func (rc *relayCounter) track(st *stream) {
	rc.mu.Lock()
	rc.live[st] = struct{}{}
	rc.mu.Unlock()
}

// untrack moves a stopped stream's final counts into the retired sum.
func (rc *relayCounter) untrack(st *stream) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if _, ok := rc.live[st]; !ok {
		return
	}
	delete(rc.live, st)
	rc.retired.add(st)
}

func (rc *relayCounter) total() Relayed {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	sum := rc.retired
	for st := range rc.live {
		sum.add(st)
	}
	return sum
}

func (r *Relayed) add(st *stream) {
	for _, f := range st.flows {
		r.RTP += f.c.packets.Load()
		r.RTCP += f.c.rtcpPackets.Load()
	}
}
