package b2bua

import (
	"errors"

	"github.com/sbc-project/sbc/b2bua/transport"
	"github.com/sbc-project/sbc/media"
)

// Step 6, transfer (continued): the media of the new party. A target
// that speaks what the transferor's side spoke (plain RTP, SDES-SRTP; a
// browser never: its ICE and DTLS are its own) takes that side of the
// call's media session; the transferee keeps its
// side, its ports and, for a browser, its ICE/DTLS transport. A target
// of another kind (a phone number for a browser's call, a browser for a
// PBX's) gets a fresh session between it and the transferee, whose
// re-INVITE then moves its media to the new session's ports: possible
// unless the transferee is itself a browser, whose ICE and DTLS session
// cannot move.

// errKindChange: the target speaks another kind of media than the
// transferor's side, and the transferee is a browser.
var errKindChange = errors.New("the transfer target's media kind differs from the transferor's and the transferee's transport cannot move")

// transferMedia returns the session that carries the target's media, set
// up for leg n toward d.
func (c *Call) transferMedia(x *transfer, d dest, n *leg) (MediaSession, error) {
	c.dropTransferMedia(x) // an earlier attempt's
	opts := media.SideOptions{Kind: sideKind(d), Signaling: d.to.Addr.Addr().Unmap(), DTMFInfo: n.dtmfInfo}
	opts.Codecs = c.sideCodecs(d, opts.Kind)
	if c.legKind(x.from) == opts.Kind && opts.Kind != media.KindWebRTC {
		// A browser's transport (ICE, DTLS) is its own: another browser
		// cannot take over the transferor's.
		c.media.Configure(n.side, opts)
		return c.media, nil
	}
	kind := c.legKind(x.to)
	if kind == media.KindWebRTC {
		return nil, errKindChange
	}
	m, err := c.s.hooks.Media(c.a.callID)
	if err != nil {
		return nil, err
	}
	m.Configure(x.to.side, media.SideOptions{Kind: kind, Signaling: x.to.dst.Addr.Addr().Unmap(), DTMFInfo: x.to.dtmfInfo})
	m.Configure(n.side, opts)
	x.media = m
	return m, nil
}

// transferSession is the session of the transfer's current attempt.
func (c *Call) transferSession(x *transfer) MediaSession {
	if x.media != nil {
		return x.media
	}
	return c.media
}

// dropTransferMedia closes the fresh session of an attempt that failed.
func (c *Call) dropTransferMedia(x *transfer) {
	if x.media != nil {
		x.media.Close()
		x.media = nil
	}
}

// adoptTransferMedia makes the attempt's fresh session the call's, once
// the record of the call before the transfer is written: the old session
// is closed (its counters are in that record).
func (c *Call) adoptTransferMedia(x *transfer) {
	if x.media == nil {
		return
	}
	old := c.media
	c.media, x.media = x.media, nil
	c.timelineMedia(c.media)
	c.media.Notify(func(ev media.Event) { c.post(event{kind: evMedia, media: &ev}) })
	c.xfer.base = nil
	old.Close()
}

// sideKind is the media a destination speaks.
func sideKind(d dest) media.Kind {
	return kindOf(d.to, d.trunk != nil && d.trunk.SRTP)
}

func kindOf(t transport.Target, srtp bool) media.Kind {
	switch {
	case t.Kind == transport.WS || t.Kind == transport.WSS:
		return media.KindWebRTC
	case srtp:
		return media.KindSRTP
	}
	return media.KindRTP
}

// legKind is the media leg l's party speaks.
func (c *Call) legKind(l *leg) media.Kind {
	srtp := false
	if tr, ok := c.s.routes.Load().TrunkBySource(l.dst.Addr.Addr().Unmap()); ok {
		srtp = tr.SRTP
	}
	return kindOf(l.dst, srtp)
}
