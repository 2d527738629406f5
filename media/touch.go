package media

// Read-ahead of a poll loop's wake-up (poll.Toucher, wrtc.Toucher): the
// loop touches the state of every datagram it received before handing
// any, so that the cache misses of many calls' state overlap instead of
// coming one packet after the other. Each touch only loads: atomics and
// fields fixed before the socket's reader started.

// Touch reads ahead what RTPBatch will read (wrtc.Toucher): the flow's
// first line and plan, and what its endpoint's send reads first.
func (f *flow) Touch() uintptr {
	p := f.plan.Load()
	v := uintptr(p.clockRate) + uintptr(f.c.packets.Load())
	switch e := f.to.(type) {
	case *rtpEndpoint:
		d := e.rtp.dst.Load()
		v += uintptr(d.addr.Port())
		v += e.rtp.conn.touch()
	case *wrtcEndpoint:
		v += e.w.t.TouchSend()
	}
	return v
}
