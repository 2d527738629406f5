package wrtc

import "sync"

// Totals are the counters of every Transport and Mux of the process since
// it started: the closed ones' final values plus the live ones' current
// values.
type Totals struct {
	Transports Counters
	Mux        MuxCounters
}

// totals is the process's registry of live transports and muxes. Each
// registers at creation and, on Close, leaves its final counters behind;
// the hot paths never touch it.
var totals = struct {
	mu         sync.Mutex
	transports map[*Transport]struct{}
	muxes      map[*Mux]struct{}
	closed     Totals
}{transports: make(map[*Transport]struct{}), muxes: make(map[*Mux]struct{})}

// ReadTotals returns the process's WebRTC counters. Safe for concurrent
// use; it costs a lock and a read of each live transport's counters.
func ReadTotals() Totals {
	totals.mu.Lock()
	defer totals.mu.Unlock()
	sum := totals.closed
	for t := range totals.transports {
		sum.Transports = sum.Transports.plus(t.c.snapshot())
	}
	for m := range totals.muxes {
		sum.Mux = sum.Mux.plus(m.Counters())
	}
	return sum
}

func registerTransport(t *Transport) {
	totals.mu.Lock()
	totals.transports[t] = struct{}{}
	totals.mu.Unlock()
}

// unregisterTransport keeps t's final counters; t must not count any more.
func unregisterTransport(t *Transport) {
	totals.mu.Lock()
	if _, ok := totals.transports[t]; ok {
		delete(totals.transports, t)
		totals.closed.Transports = totals.closed.Transports.plus(t.c.snapshot())
	}
	totals.mu.Unlock()
}

func registerMux(m *Mux) {
	totals.mu.Lock()
	totals.muxes[m] = struct{}{}
	totals.mu.Unlock()
}

// unregisterMux keeps m's final counters; m's reader must have returned.
func unregisterMux(m *Mux) {
	totals.mu.Lock()
	if _, ok := totals.muxes[m]; ok {
		delete(totals.muxes, m)
		totals.closed.Mux = totals.closed.Mux.plus(m.Counters())
	}
	totals.mu.Unlock()
}

func (a Counters) plus(b Counters) Counters {
	return Counters{
		RTPIn:        a.RTPIn + b.RTPIn,
		RTPOut:       a.RTPOut + b.RTPOut,
		RTCPIn:       a.RTCPIn + b.RTCPIn,
		RTCPOut:      a.RTCPOut + b.RTCPOut,
		BytesIn:      a.BytesIn + b.BytesIn,
		BytesOut:     a.BytesOut + b.BytesOut,
		SRTPAuthFail: a.SRTPAuthFail + b.SRTPAuthFail,
		SRTPReplay:   a.SRTPReplay + b.SRTPReplay,
		Malformed:    a.Malformed + b.Malformed,
		Unknown:      a.Unknown + b.Unknown,
		Unrouted:     a.Unrouted + b.Unrouted,
		DTLSPackets:  a.DTLSPackets + b.DTLSPackets,
		NotReady:     a.NotReady + b.NotReady,
		Early:        a.Early + b.Early,
	}
}

func (a MuxCounters) plus(b MuxCounters) MuxCounters {
	return MuxCounters{Direct: a.Direct + b.Direct, ToPion: a.ToPion + b.ToPion, Dropped: a.Dropped + b.Dropped}
}
