package b2bua

import (
	"slices"
	"sync/atomic"

	"github.com/ghettovoice/gosip/sip"

	"github.com/sbc-project/sbc/b2bua/outcome"
	"github.com/sbc-project/sbc/b2bua/sipmsg"
	"github.com/sbc-project/sbc/b2bua/timeline"
	"github.com/sbc-project/sbc/media"
)

// The SBC's own audio toward the caller before an answer (README
// "Ringback and announcements"): a ringback tone while the callee rings
// without early media of its own, and an announcement before a refusal.
// Both answer the caller's offer locally (183 with the SBC's SDP, the
// codec the first of the caller's the callee was offered that the SBC can
// encode) and play through the call's media session.

// EarlyMedia configures the SBC's own early media. Set it before New;
// its counter is the server's. The zero value plays nothing.
type EarlyMedia struct {
	// Ringback is played to a WebRTC caller whose callee sends 180
	// without SDP, until the callee's media or the end of the call; nil:
	// no local ringback.
	Ringback media.Player
	// RingbackSIP plays it to plain SIP callers too (SIP phones ring
	// locally on 180, so by default they are left alone).
	RingbackSIP bool
	// Announcements are tried in order on a refusal before answer; the
	// first that matches is played, then the refusal is sent.
	Announcements []Announcement
	// MaxAnnouncements bounds the announcements playing at once; a
	// refusal past it is sent at once. 0: DefaultMaxAnnouncements.
	MaxAnnouncements int

	playing atomic.Int64 // announcements under way
}

// DefaultMaxAnnouncements is EarlyMedia.MaxAnnouncements when zero.
const DefaultMaxAnnouncements = 50

// Announcement is what is played before a refusal that matches it: by
// cause (the policy stage's, e.g. "premium", or the outcome's, e.g.
// "no_binding") or by the SIP code of the refusal. Its Player must end by
// itself (announce.Player with Repeat or Max).
type Announcement struct {
	Causes []string
	Codes  []int
	Player media.Player
}

// earlySession is what early media needs of a media session beyond
// MediaSession (media.Session); a fake without it plays nothing.
type earlySession interface {
	AnswerLocally(to media.Side) ([]byte, error)
	Play(to media.Side, p media.Player) (*media.Playback, error)
	Kinds() [2]media.Kind
}

var _ earlySession = (*media.Session)(nil)

// match returns the announcement for a refusal with cause (and the
// stage's own cause, when a policy stage refused) and code; nil: none.
func (e *EarlyMedia) match(code int, causes ...string) *Announcement {
	if e == nil {
		return nil
	}
	for i := range e.Announcements {
		a := &e.Announcements[i]
		if slices.Contains(a.Codes, code) {
			return a
		}
		for _, c := range causes {
			if c != "" && slices.Contains(a.Causes, c) {
				return a
			}
		}
	}
	return nil
}

// ringbackOn reports whether a 180 without SDP should get local ringback
// instead of being relayed: configured, the caller's offer sent to the
// callee, nothing playing yet, and the caller a browser (or any caller
// with RingbackSIP).
func (c *Call) ringbackOn(at *attempt, res sip.Response) bool {
	e := c.s.cfg.EarlyMedia
	if e == nil || e.Ringback == nil || res.StatusCode() != 180 || !at.offer || c.ringback != nil {
		return false
	}
	if res.Body() != "" {
		return false
	}
	es, ok := c.media.(earlySession)
	if !ok {
		return false
	}
	return e.RingbackSIP || es.Kinds()[media.SideA] == media.KindWebRTC
}

// startRingback answers the caller with 183 and the SBC's SDP and plays
// the ringback tone; false when it cannot (nothing sent: the 180 is then
// relayed as usual).
func (c *Call) startRingback(at *attempt, res sip.Response) bool {
	es := c.media.(earlySession)
	ans, err := es.AnswerLocally(media.SideA)
	if err != nil {
		c.log.Info("no local ringback", "err", err)
		return false
	}
	pb, err := es.Play(media.SideA, c.s.cfg.EarlyMedia.Ringback)
	if err != nil {
		c.log.Info("no local ringback", "err", err)
		return false
	}
	c.ringback = pb
	out := c.a.response(c.invReq, 183, "Session Progress")
	copyHeaders(res, out, at.leg.pass)
	c.a.lastSDPOut = sentSDP(ans)
	sipmsg.SetBody(out, "application/sdp", c.a.lastSDPOut)
	c.provisionalToA(out)
	c.log.Info("local ringback", "caller", es.Kinds()[media.SideA].String())
	c.tl.Add(timeline.Event{Kind: timeline.KindMedia, What: "ringback", Shape: timeline.ShapeFrom, S: [3]string{"sbc"}})
	return true
}

// stopRingback ends the local ringback, if one plays: the callee's own
// early media or answer takes over (the media session would also stop it
// at the callee's first packet).
func (c *Call) stopRingback() {
	if c.ringback != nil {
		c.ringback.Stop()
		c.ringback = nil
	}
}

// announcedRefusal is a refusal waiting for its announcement to end.
type announcedRefusal struct {
	o     outcome.Outcome
	extra []sip.Header
	pb    *media.Playback
	slot  *atomic.Int64
}

// refuse answers the caller with o, after an announcement when one
// matches and the caller may hear it: vouched says the caller
// authenticated or comes from a trusted source (media is never spent on
// strangers). stageCause is the policy stage's cause, if a stage refused.
func (c *Call) refuse(o outcome.Outcome, vouched bool, stageCause string, extra ...sip.Header) {
	if vouched {
		if a := c.s.cfg.EarlyMedia.match(o.Code, string(o.Cause), stageCause); a != nil && c.announce(a, o, extra) {
			return
		}
	}
	if c.state == stateEnding {
		return // opening the media failed, and that answered the caller
	}
	c.failWith(o, extra...)
}

// announce opens the call's media for an announcement, answers the
// caller with 183 and plays it; the refusal follows when it ends
// (announced). False when it cannot (no SDP offer, all slots taken, no
// codec the SBC encodes): the caller then gets the plain refusal.
func (c *Call) announce(a *Announcement, o outcome.Outcome, extra []sip.Header) bool {
	e := c.s.cfg.EarlyMedia
	body := c.invReq.Body()
	if body == "" || !isSDP(c.invReq) || c.inv == nil {
		return false
	}
	limit := int64(e.MaxAnnouncements)
	if limit <= 0 {
		limit = DefaultMaxAnnouncements
	}
	if e.playing.Add(1) > limit {
		e.playing.Add(-1)
		c.log.Info("announcement skipped: too many playing", "max", limit)
		return false
	}
	pb, ans := c.playAnnouncement(a, []byte(body))
	if pb == nil {
		e.playing.Add(-1)
		return false
	}
	c.refusing = &announcedRefusal{o: o, extra: extra, pb: pb, slot: &e.playing}
	out := c.a.response(c.invReq, 183, "Session Progress")
	c.a.lastSDPOut = sentSDP(ans)
	sipmsg.SetBody(out, "application/sdp", c.a.lastSDPOut)
	c.provisionalToA(out)
	c.log.Info("announcement before refusal", "code", o.Code, "cause", string(o.Cause))
	c.tl.Add(timeline.Event{Kind: timeline.KindMedia, What: "announcement", Shape: timeline.ShapeReason,
		S: [3]string{"sbc", string(o.Cause)}})
	go func() {
		<-pb.Done()
		c.post(event{kind: evFunc, fn: (*Call).announced})
	}()
	return true
}

// playAnnouncement opens the media session (from the normal pool),
// answers the caller's offer locally and starts the player; nil when
// any step fails (the session is then closed by the call's end).
func (c *Call) playAnnouncement(a *Announcement, offer []byte) (*media.Playback, []byte) {
	if c.media == nil {
		// As for a call (the caller's side configured alike); its failure,
		// which the app's factory never returns, answers the caller.
		if !c.openMedia(c.inv.Source().Addr.Addr().Unmap()) {
			return nil, nil
		}
		c.stopTimer(timerRing) // the announcement's own bound applies
		c.media.Configure(media.SideB, media.SideOptions{Kind: media.KindRTP})
	}
	es, ok := c.media.(earlySession)
	if !ok {
		return nil, nil
	}
	if _, err := c.media.Offer(media.SideA, offer); err != nil {
		c.log.Info("no announcement", "err", err)
		return nil, nil
	}
	ans, err := es.AnswerLocally(media.SideA)
	if err != nil {
		c.log.Info("no announcement", "err", err)
		return nil, nil
	}
	pb, err := es.Play(media.SideA, a.Player)
	if err != nil {
		c.log.Info("no announcement", "err", err)
		return nil, nil
	}
	return pb, ans
}

// announced sends the refusal once its announcement has ended (unless the
// caller cancelled meanwhile).
func (c *Call) announced() {
	r := c.refusing
	if r == nil {
		return
	}
	c.refusing = nil
	r.slot.Add(-1)
	if err := r.pb.Err(); err != nil {
		c.log.Info("announcement failed", "err", err)
	}
	if c.state != stateCalling || c.cancelled {
		return
	}
	c.failWith(r.o, r.extra...)
}

// endRefusal gives back the announcement slot of a call that ends while
// its announcement plays (a CANCEL).
func (c *Call) endRefusal() {
	if r := c.refusing; r != nil {
		c.refusing = nil
		r.pb.Stop()
		r.slot.Add(-1)
	}
}
