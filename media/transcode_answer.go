package media

import (
	"fmt"
	"slices"

	"github.com/pion/sdp/v3"

	"github.com/sbc-project/sbc/media/codec"
	"github.com/sbc-project/sbc/media/sdpconv"
)

// transcodedStream is one m-line whose sides use different codecs: x as
// the offerer numbered it, y as the answerer did, and each side's
// telephone-event payload type at that codec's clock (-1: none).
type transcodedStream struct {
	i              int
	x, y           sdpconv.Codec
	xEv, yEv       int16
	xPtime, yPtime int
}

// shapedAnswer renders the answer toward the offerer to for an exchange
// whose offer shapeOffer changed. An m-line the answerer answered with a
// codec the offerer offered is relayed as ever; one answered with a codec
// the SBC added is answered toward the offerer with its best supported
// codec, and both directions are transcoded. Called under s.mu.
func (s *Session) shapedAnswer(d *sdpconv.Description, to Side) ([]byte, error) {
	synth, tcs := s.synthAnswer(d, to)
	var plan *sdpconv.Plan
	out, err := s.stamp(to, func(o sdp.Origin) ([]byte, error) {
		out, p, err := sdpconv.RenderAnswer(s.tc.view, synth, s.kind[to], s.local(to, o, false))
		plan = p
		return out, err
	})
	if err != nil {
		return nil, err
	}
	s.applyTranscoding(to, plan, tcs)
	if s.tc.on {
		s.tc.shown[to], s.tc.shown[to.Other()] = synth, s.tc.offered
	}
	return out, nil
}

// synthAnswer is the answer d of a shaped exchange as the offerer to is
// answered: each m-line answered with a codec the SBC added names the
// offerer's best codec the SBC can transcode instead; and those m-lines.
func (s *Session) synthAnswer(d *sdpconv.Description, to Side) (*sdpconv.Description, []transcodedStream) {
	view := s.tc.view
	synth := cloneMedia(d)
	var tcs []transcodedStream
	for i := range d.Media {
		am := &d.Media[i]
		if i >= len(view.Media) || am.Type != "audio" || !am.Usable || am.Port == 0 || am.UDPTL {
			continue
		}
		y, ok := firstMedia(am.Codecs)
		vm := &view.Media[i]
		if !ok || slices.ContainsFunc(vm.Codecs, func(c sdpconv.Codec) bool { return sameName(c, y) }) {
			continue // relayed as it is
		}
		x, ok := bestSupported(vm.Codecs, s.opts[to].Codecs)
		if !ok || !transcodable(y) {
			continue // nothing to transcode: RenderAnswer rejects the line
		}
		synth.Media[i].Codecs = append([]sdpconv.Codec{x}, eventsAt(vm.Codecs, x.Rate)...)
		tcs = append(tcs, transcodedStream{i: i, x: x, y: y,
			xEv: eventPT(*vm, x.Rate), yEv: eventPT(*am, y.Rate), xPtime: vm.Ptime, yPtime: am.Ptime})
	}
	return synth, tcs
}

// restoreTranscoding installs, for a restored session whose sides have
// codec lists, what the last exchange negotiated: its offer shaped again
// (shapeOffer is a function of the offer and the lists), the transcoders
// rebuilt. A restored call holds its slot whatever the cap (it was
// admitted). It reports false when the exchange was not shaped (the
// caller applies the relay's plan).
func (s *Session) restoreTranscoding(offerer Side, answer *sdpconv.Description) (bool, error) {
	if len(s.opts[SideA].Codecs) == 0 && len(s.opts[SideB].Codecs) == 0 {
		return false, nil
	}
	if !s.tc.slot {
		s.m.tc.take(true)
		s.tc.slot = true
	}
	if _, err := s.shapeOffer(offerer, s.offer, s.kind); err != nil || s.tc.view == nil {
		s.transcoding(false)
		return false, err
	}
	synth, tcs := s.synthAnswer(answer, offerer)
	_, plan, err := sdpconv.RenderAnswer(s.tc.view, synth, s.kind[offerer], s.local(offerer, sdp.Origin{}, false))
	if err != nil {
		s.transcoding(false)
		return false, fmt.Errorf("plan of the last exchange: %w", err)
	}
	s.applyTranscoding(offerer, plan, tcs)
	return true, nil
}

// applyTranscoding applies plan with a transcoder in both directions of
// each stream of tcs (keeping one whose direction did not change, so a
// re-offer that only holds keeps the streams' sequence); every other
// stream gets the plan's relay.
func (s *Session) applyTranscoding(offerer Side, plan *sdpconv.Plan, tcs []transcodedStream) {
	answerer := offerer.Other()
	over := map[*flow]*flowPlan{}
	var names [2]string
	for _, t := range tcs {
		st := s.streams[t.i]
		if st == nil || t.i >= len(plan.Streams) || !plan.Streams[t.i].Enabled {
			continue
		}
		x, y := format(t.x, t.xPtime), format(t.y, t.yPtime)
		fo, fa := st.flows[offerer], st.flows[answerer]
		po := s.transcodeFlow(fo, codec.Direction{From: x, To: y, FromDTMF: int(t.xEv), ToDTMF: int(t.yEv),
			FromDTMFRate: int(t.x.Rate), ToDTMFRate: int(t.y.Rate), SSRC: fo.norm.OutSSRC()}, s.opts[answerer].DTMFInfo)
		pa := s.transcodeFlow(fa, codec.Direction{From: y, To: x, FromDTMF: int(t.yEv), ToDTMF: int(t.xEv),
			FromDTMFRate: int(t.y.Rate), ToDTMFRate: int(t.x.Rate), SSRC: fa.norm.OutSSRC()}, s.opts[offerer].DTMFInfo)
		if po == nil || pa == nil {
			continue
		}
		over[fo], over[fa] = po, pa
		if t.i == s.firstAudio() {
			names = [2]string{codecName(t.x), codecName(t.y)}
		}
	}
	s.applyPlanOver(offerer, plan, over)
	if names[0] != "" {
		s.codecs[offerer], s.codecs[answerer] = names[0], names[1]
	}
	s.transcoding(len(over) > 0)
}

// transcodeFlow returns the plan of f with a transcoder for dir: f's own
// transcoder when it has one for the same direction. toInfo: the
// receiver wants digits as SIP INFO. Nil when no transcoder can be made.
func (s *Session) transcodeFlow(f *flow, dir codec.Direction, toInfo bool) *flowPlan {
	p := &flowPlan{pt: noPTs, eventPT: int16(dir.FromDTMF), outEvent: int16(dir.ToDTMF),
		clockRate: uint32(dir.From.ClockRate), codec: dir.From.Name, toInfo: toInfo}
	if old := f.plan.Load(); old.tc != nil && old.tc.dir == dir {
		p.tc = old.tc
	} else {
		t, err := codec.NewTranscoder(dir)
		if err != nil {
			s.logger().Warn("transcoder not built", "from", dir.From.Name, "to", dir.To.Name, "err", err)
			return nil
		}
		p.tc = newFlowTranscoder(f, t, dir)
	}
	return p
}

// noPTs maps every payload type to none: a transcoded flow's packets
// only leave through its transcoder.
var noPTs = func() (m [128]int16) {
	for i := range m {
		m[i] = -1
	}
	return m
}()

// format is c as the codec package names it.
func format(c sdpconv.Codec, ptime int) codec.Format {
	return codec.Format{Name: c.Name, PT: c.PT, ClockRate: int(c.Rate), Channels: int(c.Channels), Fmtp: c.Fmtp, Ptime: ptime}
}

// firstMedia is the first codec of cs that is not telephone-event.
func firstMedia(cs []sdpconv.Codec) (sdpconv.Codec, bool) {
	i := slices.IndexFunc(cs, func(c sdpconv.Codec) bool { return !isEvent(c) })
	if i < 0 {
		return sdpconv.Codec{}, false
	}
	return cs[i], true
}

// bestSupported is the codec of cs the SBC can transcode that comes first
// in prefer (the side's list), else in cs's order.
func bestSupported(cs []sdpconv.Codec, prefer []string) (sdpconv.Codec, bool) {
	for _, c := range ordered(allowed(cs, prefer), prefer) {
		if transcodable(c) {
			return c, true
		}
	}
	return sdpconv.Codec{}, false
}

// eventsAt are the telephone-events of cs at clock rate.
func eventsAt(cs []sdpconv.Codec, rate uint32) []sdpconv.Codec {
	var out []sdpconv.Codec
	for _, c := range cs {
		if isEvent(c) && c.Rate == rate {
			out = append(out, c)
		}
	}
	return out
}

// transcoding records whether the session transcodes after an answer:
// the manager's gauge and total follow, and a session that stops needing
// its slot gives it back. Called under s.mu.
func (s *Session) transcoding(on bool) {
	switch {
	case on && !s.tc.on:
		if !s.tc.slot {
			// An answer to an offer made without a slot (a later
			// answer of the same offer): counted even past the cap.
			s.m.tc.take(true)
			s.tc.slot = true
		}
		s.m.tc.started(!s.tc.ever)
		s.tc.ever = true
		s.logger().Info("media transcoded", "a", s.codecs[SideA], "b", s.codecs[SideB])
	case !on && s.tc.on:
		s.m.tc.stopped()
	}
	if !on && s.tc.slot {
		s.m.tc.release()
		s.tc.slot = false
	}
	if !on {
		s.tc.shown = [2]*sdpconv.Description{}
	}
	s.tc.on = on
}

// endTranscoding gives back what the session held. Called under s.mu by
// Stop.
func (s *Session) endTranscoding() {
	if s.tc.on {
		s.m.tc.stopped()
		s.tc.on = false
	}
	if s.tc.slot {
		s.m.tc.release()
		s.tc.slot = false
	}
}

// Transcoded reports whether the session's first audio stream was
// transcoded at some point (the CDR's transcoded).
func (s *Session) Transcoded() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tc.ever
}
