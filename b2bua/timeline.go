package b2bua

import (
	"time"

	"github.com/ghettovoice/gosip/sip"

	"github.com/sbc-project/sbc/b2bua/sipmsg"
	"github.com/sbc-project/sbc/b2bua/timeline"
	"github.com/sbc-project/sbc/media"
)

// This file feeds a call's timeline (package timeline): every SIP message
// of its legs through the tap (tapMessage), and from the call's own
// steps its policy decision, routing attempts, media events, quality
// samples and end. A server without Hooks.Timelines records nothing.

// timelineSIP records msg on the timeline of the call one of whose legs
// has its Call-ID.
func (s *Server) timelineSIP(st *timeline.Store, msg sip.Message, data []byte, dir Direction) {
	d := timeline.DirIn
	if dir == Sent {
		d = timeline.DirOut
	}
	switch m := msg.(type) {
	case sip.Request:
		st.SIP(sipmsg.CallID(m), d, string(m.Method()), 0, data)
	case sip.Response:
		_, method := sipmsg.CSeq(m)
		st.SIP(sipmsg.CallID(m), d, string(method), int(m.StatusCode()), data)
	}
}

// startTimeline opens the call's timeline, once the call is tracked (it
// is sure to end), with A's INVITE and its 100 Trying, which the tap saw
// before the call existed: both stamped with the call's start.
func (c *Call) startTimeline() {
	st := c.s.hooks.Timelines
	if st == nil || c.invReq == nil {
		return
	}
	c.tl = st.Start(c.rec.ACallID, c.rec.ID, c.started, c.traceOn)
	at := c.started.UnixNano()
	invite := timeline.Event{At: at, Kind: timeline.KindSIP, Leg: timeline.LegA, Dir: timeline.DirIn, What: string(sip.INVITE)}
	if c.tl.Traced() {
		invite.Text = c.invReq.String()
	}
	c.tl.Add(invite)
	c.tl.Add(timeline.Event{At: at, Kind: timeline.KindSIP, Leg: timeline.LegA, Dir: timeline.DirOut, What: string(sip.INVITE), Code: 100})
}

// timelineLeg makes the call's timeline take the messages of a new leg
// (B, a transfer's) before its first request goes out.
func (c *Call) timelineLeg(l *leg) { c.s.hooks.Timelines.Alias(c.tl, l.callID) }

// timelinePolicy records the late stages' decision: admitted, or refused
// with the stage, its cause and the code A gets.
func (c *Call) timelinePolicy(admitted bool, stage, cause string, code int) {
	if admitted {
		c.tl.Add(timeline.Event{Kind: timeline.KindPolicy, What: "admit"})
		return
	}
	c.tl.Add(timeline.Event{Kind: timeline.KindPolicy, What: "reject", Shape: timeline.ShapeReject,
		S: [3]string{cause, stage}, N: [4]float64{float64(code)}})
}

// timelineAttempt records an INVITE toward destination name (a trunk,
// a registered user's contact), the n-th of the call; after a failure,
// first the failover from the previous one.
func (c *Call) timelineAttempt(name string, target sip.Uri, n int) {
	if c.tl == nil {
		return
	}
	if n > 1 {
		c.tl.Add(timeline.Event{Kind: timeline.KindRoute, What: "failover", Shape: timeline.ShapeFailover,
			S: [3]string{c.rec.Trunk}, N: [4]float64{float64(c.lastFailure)}})
	}
	var to string
	if target != nil {
		to = target.String()
	}
	c.tl.Add(timeline.Event{Kind: timeline.KindRoute, What: "attempt", Shape: timeline.ShapeAttempt,
		S: [3]string{name, to}, N: [4]float64{float64(n)}})
}

// timelineEnd records the end, with the cause, the side and A's final
// code, and hands the timeline to the store's recent calls. The end is
// stamped when the call is done (its legs' last transactions answered),
// after the BYEs it sent; the record's end time is when it was decided.
func (c *Call) timelineEnd() {
	if c.tl == nil {
		return
	}
	c.tl.SetSampler(nil) // an ended call's timeline keeps nothing of its media
	now := time.Now()
	c.tl.Add(timeline.Event{At: now.UnixNano(), Kind: timeline.KindEnd, What: "end", Shape: timeline.ShapeEnd,
		S: [3]string{string(c.rec.Cause), string(c.rec.Side)}, N: [4]float64{float64(c.rec.SIPCode)}})
	c.s.hooks.Timelines.End(c.tl, now)
}

// timelineMedia samples the quality of m's media for the timeline.
func (c *Call) timelineMedia(m MediaSession) {
	if c.tl == nil {
		return
	}
	c.tl.SetSampler(func() (a, b timeline.Sample, ok bool) {
		st := m.Stats()
		return sampleOf(st.AtoB), sampleOf(st.BtoA), st.AtoB.Packets+st.BtoA.Packets > 0
	})
}

func sampleOf(f media.Flow) timeline.Sample {
	return timeline.Sample{Packets: f.Packets, Lost: f.Lost, JitterMs: f.JitterMs, MOS: f.MOS}
}

// legOf is the timeline's name of a media side.
func legOf(s media.Side) timeline.Leg {
	if s == media.SideB {
		return timeline.LegB
	}
	return timeline.LegA
}

// timelineMediaEvent records what the media session reported.
func (c *Call) timelineMediaEvent(ev media.Event) {
	if c.tl == nil {
		return
	}
	from := legOf(ev.From)
	e := timeline.Event{At: ev.At.UnixNano(), Kind: timeline.KindMedia, Shape: timeline.ShapeFrom,
		S: [3]string{from.String()}}
	switch ev.Kind {
	case media.EventICENominated:
		e.What = "ice-nominated"
	case media.EventDTLSConnected:
		// The handshake starts as ICE is up: 1 ns after the nomination
		// keeps the two in order.
		start := e
		start.At, start.What, start.Shape, start.S[1] = ev.Started.UnixNano()+1, "dtls-start", timeline.ShapeDTLS, ev.Role
		c.tl.Add(start)
		e.What, e.Shape, e.S[1], e.S[2] = "dtls-connected", timeline.ShapeDTLS, ev.Role, ev.Profile
	case media.EventDTLSFailed:
		e.What, e.Shape, e.S = "dtls-failed", timeline.ShapeReason, [3]string{ev.Cause}
	case media.EventFirstRTP:
		e.What = "first-rtp"
	case media.EventLatched, media.EventRelatched:
		e.What, e.Shape, e.S[1] = "latched", timeline.ShapeLatch, ev.Source.String()
		if ev.Kind == media.EventRelatched {
			e.What = "relatched"
		}
	case media.EventSSRCSwitch: // the same SSRC: its sequence or timestamp jumped
		e.What, e.Shape, e.N = "ssrc-switch", timeline.ShapeSSRC, [4]float64{float64(ev.PrevSSRC), float64(ev.SSRC)}
		if ev.PrevSSRC == ev.SSRC {
			e.What = "seq-jump"
		}
	case media.EventDTMF, media.EventDTMFRelayed:
		e.What, e.Shape, e.S[1] = "dtmf", timeline.ShapeDTMF, timeline.Digit(ev.DTMF.Digit)
		e.N[0] = float64(ev.DTMF.Duration.Milliseconds())
	default:
		return
	}
	c.tl.Add(e)
}

// timelineEvent records an in-dialog event of the call: hold, resume, a
// DTMF digit carried by INFO, a transfer.
func (c *Call) timelineEvent(what string, shape timeline.Shape, s0, s1 string) {
	c.tl.Add(timeline.Event{Kind: timeline.KindMedia, What: what, Shape: shape, S: [3]string{s0, s1}})
}
