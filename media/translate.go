package media

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/pion/sdp/v3"

	"github.com/sbc-project/sbc/media/rtpproc"
	"github.com/sbc-project/sbc/media/sdpconv"
	"github.com/sbc-project/sbc/media/wrtc"
)

// parseSDP reads a body with sdpconv. Every error wraps ErrBadSDP: an
// unparsable body, or one without a single usable m-line. It also
// returns pion's parse of body, which a plain pass-through rewrites
// instead of parsing body again (passThrough).
func parseSDP(body []byte) (*sdpconv.Description, *sdp.SessionDescription, error) {
	d, sd, err := sdpconv.ParseSession(body)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrBadSDP, err)
	}
	for _, md := range d.Media {
		if md.Usable && md.Port > 0 {
			return d, sd, nil
		}
	}
	return nil, nil, fmt.Errorf("read sdp: %w: no usable RTP m-line among %d", ErrBadSDP, len(d.Media))
}

// plain reports whether both sides are plain RTP: then the SDP passes
// through with only the transport rewritten, so SIP ⇄ SIP calls keep
// every codec their endpoints share (G.729, AMR, ...).
func (s *Session) plain() bool { return s.kind[SideA] == KindRTP && s.kind[SideB] == KindRTP }

// learn hands each stream's endpoint facing side from what the side's SDP
// says about its transport, and records whether that side is holding.
// answer says whether d answers an offer the SBC sent.
func (s *Session) learn(from Side, d *sdpconv.Description, answer bool) error {
	hold := false
	for i, md := range d.Media {
		if i >= len(s.streams) || s.streams[i] == nil || !md.Usable || md.Port == 0 {
			continue
		}
		if e, ok := s.streams[i].ends[from].(*rtpEndpoint); ok {
			if err := e.learn(md, answer, s.opts[from].Signaling); err != nil {
				return fmt.Errorf("m-line %d: %w", i, err)
			}
		}
		hold = hold || md.Hold
	}
	if w := s.wt[from]; w != nil && d.Kind == KindWebRTC {
		ice, ok := firstICE(d)
		if !ok {
			return fmt.Errorf("%w: WebRTC SDP without ICE credentials or fingerprint", ErrBadSDP)
		}
		setup, err := w.t.SetRemote(wrtc.Remote{Ufrag: ice.Ufrag, Pwd: ice.Pwd, Fingerprints: ice.Fingerprints, Setup: ice.Setup}, answer)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrBadSDP, err)
		}
		if !answer {
			w.setup = setup
		}
		s.routeWebRTC(from, d)
	}
	if hold != s.hold[from] {
		s.logger().Info("media hold changed", "side", from.String(), "hold", hold)
		kind := EventResume
		if hold {
			kind = EventHold
		}
		s.emit(Event{Kind: kind, From: from})
	}
	s.hold[from] = hold
	return nil
}

// firstICE returns the ICE and DTLS attributes of the first usable m-line
// (BUNDLE: they are the same on every line).
func firstICE(d *sdpconv.Description) (sdpconv.ICE, bool) {
	for _, md := range d.Media {
		if md.Usable && md.Port > 0 {
			if md.ICE == nil {
				return sdpconv.ICE{}, false
			}
			ok := md.ICE.Ufrag != "" && md.ICE.Pwd != "" && len(md.ICE.Fingerprints) > 0
			return *md.ICE, ok
		}
	}
	return sdpconv.ICE{}, false
}

// routeWebRTC tells side's WebRTC transport which stream each packet of
// the bundle belongs to, from the payload types and SSRCs the side's SDP
// d announced.
func (s *Session) routeWebRTC(side Side, d *sdpconv.Description) {
	w := s.wt[side]
	if w == nil || d == nil {
		return
	}
	var routes []wrtc.Route
	for i, st := range s.streams {
		if st == nil || i >= len(d.Media) {
			continue
		}
		md := d.Media[i]
		pts := make([]uint8, 0, len(md.Codecs))
		for _, c := range md.Codecs {
			pts = append(pts, c.PT)
		}
		routes = append(routes, wrtc.Route{PTs: pts, SSRCs: md.SSRCs, Sink: st.flows[side]})
	}
	w.t.SetRoutes(routes)
}

// announce tells the plain and SDES endpoints facing side to which
// payload types the SDP body sent to it lists, since the side may send
// with those as well as with its own. The body is the SBC's own
// rendering; one that does not parse changes nothing. sent, when not
// nil, is what body was rendered from (a pass-through): it is read
// instead of parsing body again.
func (s *Session) announce(to Side, body []byte, sent *sdp.SessionDescription) {
	if sent != nil {
		// Only the payload types are needed: read off each m-line's
		// format list, as sdpconv reads them, rather than describing the
		// whole SDP again at every offer and answer of every call.
		for i, st := range s.streams {
			if e, ok := endOf(st, to); ok && i < len(sent.MediaDescriptions) {
				e.announcePTs(formatPTs(sent.MediaDescriptions[i].MediaName.Formats))
			}
		}
		return
	}
	d, err := sdpconv.Parse(body)
	if err != nil {
		s.logger().Warn("sdp sent does not parse", "side", to.String(), "err", err)
		return
	}
	for i, st := range s.streams {
		if e, ok := endOf(st, to); ok && i < len(d.Media) {
			e.announce(d.Media[i])
		}
	}
}

// reroute refreshes the WebRTC routes after a stream went away.
func (s *Session) reroute() {
	for side := SideA; side <= SideB; side++ {
		s.routeWebRTC(side, s.last[side])
	}
}

// renderOffer produces the offer toward side to from d (body as
// received, parsed as sd). A pass-through also returns the session
// description it rendered (announce reads it).
func (s *Session) renderOffer(d *sdpconv.Description, sd *sdp.SessionDescription, body []byte, to Side) ([]byte, *sdp.SessionDescription, error) {
	if s.plain() && s.tc.view == nil {
		return s.passThroughTo(sd, body, to)
	}
	out, err := s.stampOffer(d, to)
	return out, nil, err
}

// stampOffer renders the offer d toward a side that is not plain RTP.
func (s *Session) stampOffer(d *sdpconv.Description, to Side) ([]byte, error) {
	return s.stamp(to, func(o sdp.Origin) ([]byte, error) {
		out, err := sdpconv.RenderOffer(d, s.kind[to], s.local(to, o, true))
		if errors.Is(err, sdpconv.ErrNoCodec) {
			return nil, fmt.Errorf("%w: %w", ErrNoCodec, err)
		}
		return out, err
	})
}

// renderAnswer produces the answer toward side to (the offerer) from the
// answer d (body as received, parsed as sd) and applies what the exchange
// negotiated. A pass-through also returns the session description it
// rendered (announce reads it).
func (s *Session) renderAnswer(d *sdpconv.Description, sd *sdp.SessionDescription, body []byte, to Side) ([]byte, *sdp.SessionDescription, error) {
	if s.tc.view != nil {
		out, err := s.shapedAnswer(d, to)
		return out, nil, err
	}
	if s.plain() {
		out, sent, err := s.passThroughTo(sd, body, to)
		if err == nil {
			s.applyPlan(to, plainPlan(s.offer, d))
			s.transcoding(false)
		}
		return out, sent, err
	}
	out, err := s.stampAnswer(d, to)
	return out, nil, err
}

// stampAnswer renders the answer d toward a side that is not plain RTP
// and applies the plan.
func (s *Session) stampAnswer(d *sdpconv.Description, to Side) ([]byte, error) {
	var plan *sdpconv.Plan
	out, err := s.stamp(to, func(o sdp.Origin) ([]byte, error) {
		out, p, err := sdpconv.RenderAnswer(s.offer, d, s.kind[to], s.local(to, o, false))
		plan = p
		return out, err
	})
	if err == nil && plan != nil {
		s.applyPlan(to, plan)
		s.transcoding(false)
	}
	return out, err
}

// renderAnswerTo answers a re-offer d from side to with what the other
// side last said, without asking it.
func (s *Session) renderAnswerTo(d, other *sdpconv.Description, to Side) ([]byte, error) {
	return s.stamp(to, func(o sdp.Origin) ([]byte, error) {
		out, _, err := sdpconv.RenderAnswer(d, other, s.kind[to], s.local(to, o, false))
		return out, err
	})
}

// local describes the SBC's transport facing side to.
func (s *Session) local(to Side, origin sdp.Origin, offer bool) sdpconv.Local {
	l := sdpconv.Local{Addr: s.public(to), Origin: origin, CName: s.cname[to]}
	for _, st := range s.streams {
		lm := sdpconv.LocalMedia{}
		if st != nil {
			switch e := st.ends[to].(type) {
			case *rtpEndpoint:
				lm.Port = e.pair.port
				if e.sdes != nil {
					lm.Crypto = e.sdes.local.String()
				}
			case *wrtcEndpoint:
				lm.Port = e.w.port
				lm.SSRC = st.flows[to.Other()].norm.OutSSRC()
				// Browsers always get telephone-event: digits they send
				// reach an INFO-only side as INFO.
				lm.DTMF = true
			}
		}
		l.Media = append(l.Media, lm)
	}
	if w := s.wt[to]; w != nil && s.kind[to] == KindWebRTC {
		p := w.t.Local()
		setup := w.setup
		if offer || setup == "" {
			setup = w.t.OfferSetup()
		}
		l.ICE = &sdpconv.ICE{Ufrag: p.Ufrag, Pwd: p.Pwd, Candidates: p.Candidates,
			Fingerprints: []string{p.Fingerprint}, Setup: setup, Lite: true}
	}
	return l
}

// passThroughTo stamps the pass-through of body toward side to. Its
// first rendering rewrites sd, body's parse; a second one (stamp renders
// again when the version moves) parses body afresh, since a rewrite is
// not made twice on the same description. It returns the description the
// body returned was rendered from.
func (s *Session) passThroughTo(sd *sdp.SessionDescription, body []byte, to Side) ([]byte, *sdp.SessionDescription, error) {
	var sent *sdp.SessionDescription
	out, err := s.stamp(to, func(o sdp.Origin) ([]byte, error) {
		from := sd
		sd = nil
		if from == nil {
			var err error
			if from, err = sdpconv.Unmarshal(body); err != nil {
				return nil, fmt.Errorf("%w: %w", ErrBadSDP, err)
			}
		}
		sent = from
		return s.passThrough(from, to, o)
	})
	if err != nil {
		return nil, nil, err
	}
	return out, sent, nil
}

// passThrough rewrites sd, a plain SDP, for plain side to: the SBC's
// address and ports, nothing of the sender's topology. It returns sd
// rendered.
func (s *Session) passThrough(sd *sdp.SessionDescription, to Side, origin sdp.Origin) ([]byte, error) {
	ports := make([]int, len(sd.MediaDescriptions))
	for i := range ports {
		if i < len(s.streams) && s.streams[i] != nil {
			if e, ok := s.streams[i].ends[to].(*rtpEndpoint); ok {
				ports[i] = e.pair.port
			}
		}
	}
	rewriteSDP(sd, ports, origin, s.public(to))
	out, err := sd.Marshal()
	if err != nil {
		return nil, fmt.Errorf("marshal sdp for %s: %w", to, err)
	}
	return out, nil
}

// applyPlan installs what an offer/answer exchange negotiated into both
// directions of every stream.
func (s *Session) applyPlan(offerer Side, plan *sdpconv.Plan) { s.applyPlanOver(offerer, plan, nil) }

// applyPlanOver is applyPlan with the flows of over getting their plan
// from it instead (transcoded flows: one store, no packet ever sees the
// plan of the SDP the SBC made up for the offerer).
func (s *Session) applyPlanOver(offerer Side, plan *sdpconv.Plan, over map[*flow]*flowPlan) {
	answerer := offerer.Other()
	store := func(f *flow, p flowPlan) {
		if q, ok := over[f]; ok {
			f.plan.Store(q)
			return
		}
		f.plan.Store(s.m.plans.intern(p))
	}
	for i, st := range s.streams {
		if st == nil || i >= len(plan.Streams) {
			continue
		}
		sp := plan.Streams[i]
		rate := sp.ClockRate
		if rate == 0 {
			rate = 8000
		}
		store(st.flows[offerer], flowPlan{
			pt: rtpproc.PTMap(sp.OffererToAnswerer), eventPT: sp.EventPT[0], outEvent: sp.EventPT[1],
			clockRate: rate, codec: sp.Codec.Name, toInfo: s.opts[answerer].DTMFInfo,
		})
		store(st.flows[answerer], flowPlan{
			pt: rtpproc.PTMap(sp.AnswererToOfferer), eventPT: sp.EventPT[1], outEvent: sp.EventPT[0],
			clockRate: rate, codec: sp.Codec.Name, toInfo: s.opts[offerer].DTMFInfo,
		})
		setUDPTL(st, sp.Type == "image" && sp.Enabled)
		if i == s.firstAudio() && sp.Enabled && sp.Type != "image" {
			name := codecName(sp.Codec)
			s.codecs[offerer], s.codecs[answerer] = name, name
		}
	}
}

func (s *Session) firstAudio() int {
	for i, st := range s.streams {
		if st != nil && st.audio {
			return i
		}
	}
	return -1
}

func codecName(c sdpconv.Codec) string {
	if c.Name == "" {
		return ""
	}
	n := c.Name + "/" + strconv.FormatUint(uint64(c.Rate), 10)
	if c.Channels > 1 {
		n += "/" + strconv.Itoa(int(c.Channels))
	}
	return n
}

// plainPlan is the plan of a pass-through exchange: payload types go
// through unchanged, except telephone-event when the two sides numbered
// it differently.
func plainPlan(offer, answer *sdpconv.Description) *sdpconv.Plan {
	p := &sdpconv.Plan{Streams: make([]sdpconv.StreamPlan, len(answer.Media))}
	for i := range answer.Media {
		sp := &p.Streams[i]
		for pt := range sp.OffererToAnswerer {
			sp.OffererToAnswerer[pt], sp.AnswererToOfferer[pt] = int16(pt), int16(pt)
		}
		sp.EventPT = [2]int16{-1, -1}
		if i >= len(offer.Media) {
			continue
		}
		om, am := offer.Media[i], answer.Media[i]
		sp.Type, sp.Enabled = am.Type, am.Usable && am.Port > 0
		for _, c := range am.Codecs {
			if !isEvent(c) {
				sp.Codec, sp.ClockRate = c, c.Rate
				break
			}
		}
		eo, ea := eventPT(om, sp.ClockRate), eventPT(am, sp.ClockRate)
		sp.EventPT = [2]int16{eo, ea}
		if eo >= 0 && ea >= 0 && eo != ea {
			sp.OffererToAnswerer[eo], sp.AnswererToOfferer[ea] = ea, eo
		}
	}
	return p
}

func isEvent(c sdpconv.Codec) bool { return strings.EqualFold(c.Name, "telephone-event") }

// eventPT is the telephone-event payload type of m at clock rate (any
// rate if rate is 0), or -1.
func eventPT(m sdpconv.Media, rate uint32) int16 {
	for _, c := range m.Codecs {
		if isEvent(c) && (rate == 0 || c.Rate == rate) {
			return int16(c.PT)
		}
	}
	return -1
}
