package wrtc

import (
	"encoding/binary"

	"github.com/sbc-project/sbc/media/poll"
)

// Sink receives the decrypted packets of one m-line. Its methods are called
// on the transport's reader goroutine, one packet at a time; pkt is only
// valid during the call and must not be retained or modified after return.
type Sink interface {
	RTP(pkt []byte)  // one plain RTP packet (header and payload)
	RTCP(pkt []byte) // one plain RTCP compound packet
}

// BatchSink is a Sink whose sends can be queued in the batch of the poll
// loop that read the packet (media/poll, Linux): RTPBatch is RTP with
// pkt valid until b is flushed, so the Sink may queue it in b instead of
// sending it at once. The reader calls it when it has a batch.
type BatchSink interface {
	Sink
	RTPBatch(pkt []byte, b *poll.Batch)
}

// Route claims the packets of one m-line of the BUNDLE group.
type Route struct {
	PTs   []uint8  // RTP payload types of the m-line (a=rtpmap/fmt list)
	SSRCs []uint32 // SSRCs of the m-line: the peer's (a=ssrc) and optionally ours, so RTCP about our streams finds it
	Sink  Sink     // receives the route's packets; a nil Sink drops them (counted as Unrouted)
}

// routeTable is the immutable, lookup-ready form of a []Route. The reader
// loads it through an atomic pointer, so SetRoutes never blocks the reader.
type routeTable struct {
	// What an RTP packet's lookup reads comes first, in one cache line
	// with the slice header of sinks, whose entries (32 bytes a route,
	// the Sink and its BatchSink side by side) fill the second: across
	// hundreds of transports each packet finds its table out of the CPU
	// caches (BenchmarkDecryptSpread).
	//
	// The SSRCs of a call are few (an audio stream and perhaps a video
	// one): up to smallSSRCs are scanned in place, which measured cheaper
	// than the map's lookup once hundreds of transports share the CPU
	// caches. bySSRC holds them all.
	nSmall  int32 // -1: more than smallSSRCs, use bySSRC
	small   [smallSSRCs]uint32
	smallIx [smallSSRCs]int32
	sinks   []routeSink
	bySSRC  map[uint32]int
	byPT    [128]int16 // route index + 1; 0 = none
}

// routeSink is one route's Sink, and the same as a BatchSink or nil.
type routeSink struct {
	sink  Sink
	batch BatchSink
}

// smallSSRCs is how many SSRCs a routeTable scans without its map.
const smallSSRCs = 4

// newRouteTable indexes routes. On a duplicate SSRC or payload type the
// earlier route wins, so the order of m-lines decides.
func newRouteTable(routes []Route) *routeTable {
	t := &routeTable{
		sinks:  make([]routeSink, len(routes)),
		bySSRC: make(map[uint32]int),
	}
	for i, r := range routes {
		t.sinks[i].sink = r.Sink
		t.sinks[i].batch, _ = r.Sink.(BatchSink)
		for _, ssrc := range r.SSRCs {
			if _, dup := t.bySSRC[ssrc]; !dup {
				t.bySSRC[ssrc] = i
				if t.nSmall >= 0 && t.nSmall < smallSSRCs {
					t.small[t.nSmall], t.smallIx[t.nSmall] = ssrc, int32(i)
					t.nSmall++
				} else {
					t.nSmall = -1
				}
			}
		}
		for _, pt := range r.PTs {
			if pt < 128 && t.byPT[pt] == 0 {
				t.byPT[pt] = int16(i + 1)
			}
		}
	}
	return t
}

// rtpSink returns the sink of an RTP packet: SSRC match first, then payload
// type; nil if neither matches.
func (t *routeTable) rtpSink(ssrc uint32, pt uint8) Sink {
	if i := t.rtpRoute(ssrc, pt); i >= 0 {
		return t.sinks[i].sink
	}
	return nil
}

// rtpRoute returns the index of the route of an RTP packet (see rtpSink),
// or -1.
func (t *routeTable) rtpRoute(ssrc uint32, pt uint8) int {
	if i, ok := t.ssrcRoute(ssrc); ok {
		return i
	}
	if pt < 128 {
		if i := t.byPT[pt]; i > 0 {
			return int(i - 1)
		}
	}
	return -1
}

// ssrcRoute returns the index of the route that owns ssrc.
func (t *routeTable) ssrcRoute(ssrc uint32) (int, bool) {
	if t.nSmall >= 0 {
		for k := range t.nSmall {
			if t.small[k] == ssrc {
				return int(t.smallIx[k]), true
			}
		}
		return 0, false
	}
	i, ok := t.bySSRC[ssrc]
	return i, ok
}

// rtcpSink returns the sink of a decrypted RTCP compound packet: the route
// owning any SSRC it names (sender, report block, feedback media source, BYE
// list), else the first route; nil only without routes.
func (t *routeTable) rtcpSink(pkt []byte) Sink {
	if len(t.sinks) == 0 {
		return nil
	}
	if len(t.bySSRC) > 0 {
		if i, ok := t.rtcpOwner(pkt); ok {
			return t.sinks[i].sink
		}
	}
	return t.sinks[0].sink
}

// RTCP packet types whose SSRC lists rtcpOwner reads (RFC 3550, RFC 4585).
const (
	rtcpSR    = 200
	rtcpRR    = 201
	rtcpBYE   = 203
	rtcpRTPFB = 205
	rtcpPSFB  = 206
)

// rtcpOwner walks the compound packet and returns the route of the first
// SSRC it knows. Lengths are bounded by the packet, so malformed input ends
// the walk rather than reading past it.
func (t *routeTable) rtcpOwner(pkt []byte) (int, bool) {
	for off := 0; off+8 <= len(pkt); {
		end := off + (int(binary.BigEndian.Uint16(pkt[off+2:]))+1)*4
		if end > len(pkt) {
			end = len(pkt)
		}
		p := pkt[off:end]
		off = end // progress is at least 4 bytes per packet
		if len(p) < 8 {
			continue
		}
		if i, ok := t.ssrcRoute(binary.BigEndian.Uint32(p[4:])); ok {
			return i, true
		}
		count := int(p[0] & 0x1f)
		switch p[1] {
		case rtcpSR:
			if i, ok := t.ssrcList(p, 28, 24, count); ok {
				return i, true
			}
		case rtcpRR:
			if i, ok := t.ssrcList(p, 8, 24, count); ok {
				return i, true
			}
		case rtcpBYE:
			if i, ok := t.ssrcList(p, 8, 4, count-1); ok {
				return i, true
			}
		case rtcpRTPFB, rtcpPSFB:
			if i, ok := t.ssrcList(p, 8, 4, 1); ok {
				return i, true
			}
		}
	}
	return 0, false
}

// ssrcList looks up n SSRCs in p starting at offset start, stride apart.
func (t *routeTable) ssrcList(p []byte, start, stride, n int) (int, bool) {
	for k := 0; k < n; k++ {
		at := start + k*stride
		if at+4 > len(p) {
			return 0, false
		}
		if i, ok := t.ssrcRoute(binary.BigEndian.Uint32(p[at:])); ok {
			return i, true
		}
	}
	return 0, false
}
