package sdpconv

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/pion/sdp/v3"
)

// Plan is what an offer/answer exchange negotiated, one StreamPlan per
// m-line of the offer, for the packet path.
type Plan struct {
	Streams []StreamPlan
}

// StreamPlan is the negotiated state of one m-line. A disabled stream has
// every payload type map entry and EventPT at -1.
type StreamPlan struct {
	// Enabled is true when the answer sent to the offerer carries this
	// m-line (non-zero port).
	Enabled bool
	// Type is the media type of the m-line.
	Type string
	// Codec is the first codec both sides agreed on (the answerer's first
	// one that is not telephone-event), as the offerer named it; the CDR
	// a_codec/b_codec.
	Codec Codec
	// OffererToAnswerer maps a payload type received from the offerer's
	// side to the one to write toward the answerer's side; -1 drops it.
	OffererToAnswerer [128]int16
	// AnswererToOfferer maps the other way. The answerer may send with the
	// payload types of its answer or of the offer; both are mapped, the
	// answer's winning when they collide.
	AnswererToOfferer [128]int16
	// EventPT is the telephone-event payload type at ClockRate on the
	// offerer's side [0] and on the answerer's side [1]; -1 when that side
	// has none (then the SBC must convert DTMF or drop it).
	EventPT [2]int16
	// ClockRate is the RTP clock rate of Codec.
	ClockRate uint32
}

// RenderAnswer writes the answer toward the offerer, of kind to, from the
// answer the answerer sent to the SBC's offer. offer is the ORIGINAL offer
// received from the offerer (not the offer the SBC wrote to the
// answerer); to is the offerer's kind, normally offer.Kind; local is the
// SBC's transport facing the offerer, one LocalMedia per m-line of offer.
//
// The m-lines follow the offer. One the answerer rejected, one the offer
// cannot carry toward to, one without an agreed codec, or one whose
// LocalMedia.Port is 0 is written with port 0. Codecs are those of the
// answer, in its order, that the offer had, with the offerer's payload
// types (matched by name, clock rate and channels). The direction is the
// answerer's, RFC 2543 hold converted as in RenderOffer. Toward WebRTC the
// DTLS role is Local.ICE.Setup, else the one opposite to the offer's
// (active for actpass), and the m-lines the offerer bundled share the
// first one's port. Answers to the same offer (183 then 200) may differ; each
// call returns the plan for its answer.
//
// Errors wrap ErrBadSDP when the answer's m-lines do not match the offer's,
// ErrNoCodec when no m-line ends up enabled; other errors mean local does
// not fit the offer (a caller bug).
func RenderAnswer(offer, answer *Description, to Kind, local Local) ([]byte, *Plan, error) {
	if offer == nil || answer == nil {
		return nil, nil, fmt.Errorf("render answer for %s: %w: no description", to, ErrBadSDP)
	}
	if len(answer.Media) != len(offer.Media) {
		return nil, nil, fmt.Errorf("render answer for %s: %w: %d m-lines answer %d offered",
			to, ErrBadSDP, len(answer.Media), len(offer.Media))
	}
	if err := checkLocal(len(offer.Media), to, &local); err != nil {
		return nil, nil, fmt.Errorf("render answer for %s: %w", to, err)
	}
	a := answerer{
		offer: offer, answer: answer, w: writer{to: to, local: &local},
		web:     offer.Kind == KindWebRTC || answer.Kind == KindWebRTC || to == KindWebRTC,
		bundled: map[string]bool{},
	}
	for _, mid := range offer.Bundle {
		a.bundled[mid] = true
	}
	if !a.lines() {
		return nil, nil, fmt.Errorf("render answer for %s: %w among %d m-lines", to, ErrNoCodec, len(offer.Media))
	}
	body, err := a.w.marshal(a.media, a.bundle)
	if err != nil {
		return nil, nil, fmt.Errorf("render answer for %s: %w", to, err)
	}
	return body, &a.plan, nil
}

// answerer holds the state of one RenderAnswer.
type answerer struct {
	offer, answer *Description
	w             writer
	web           bool
	media         []*sdp.MediaDescription
	bundle        []string
	bundled       map[string]bool // the mids the offerer bundled
	port          int             // the bundle's port toward WebRTC
	plan          Plan
}

// lines writes every m-line and reports whether one is enabled.
func (a *answerer) lines() bool {
	enabled := false
	for i := range a.offer.Media {
		o, ans := &a.offer.Media[i], &a.answer.Media[i]
		lm := a.w.local.Media[i]
		sp, codecs := negotiate(o, ans, a.web, lm.DTMF, a.w.to)
		ok := sp.Enabled && ans.Usable && compatible(o, a.w.to) && lm.Port > 0
		if !ok {
			a.plan.Streams = append(a.plan.Streams, disabledStream(o.Type))
			a.media = append(a.media, a.w.rejected(o.Type, o.Proto, o.Formats, echoMID(o.MID)))
			continue
		}
		enabled = true
		a.plan.Streams = append(a.plan.Streams, sp)
		a.media = append(a.media, a.w.enabled(a.line(i, codecs)))
	}
	return enabled
}

// line describes enabled m-line i of the answer toward the offerer.
func (a *answerer) line(i int, codecs []Codec) *line {
	o, ans, lm := &a.offer.Media[i], &a.answer.Media[i], a.w.local.Media[i]
	l := &line{
		typ: o.Type, proto: o.Proto, port: lm.Port, codecs: codecs,
		dir: outDir(ans), ptime: ans.Ptime, max: ans.MaxPtime,
		rtcpMux: lm.RTCPMux && o.RTCPMux, local: lm,
	}
	if a.w.to != KindWebRTC {
		return l
	}
	l.setup = a.w.local.ICE.Setup
	if l.setup == "" {
		l.setup = answerSetup(o.setup())
	}
	l.mid = echoMID(o.MID)
	// Only m-lines the offerer bundled share the bundle's port.
	if l.mid != "" && a.bundled[l.mid] {
		if a.port == 0 {
			a.port = lm.Port
		}
		l.port = a.port
		a.bundle = append(a.bundle, l.mid)
	}
	return l
}

// echoMID is the mid an answer repeats from the offer (JSEP requires the
// same value); none when it could not stand in a BUNDLE group.
func echoMID(mid string) string {
	if strings.ContainsAny(mid, " \t") {
		return ""
	}
	return mid
}

// answerSetup is the DTLS role answering an offer's a=setup (RFC 5763):
// active for actpass or none, else the opposite role.
func answerSetup(offered string) string {
	if offered == "active" {
		return "passive"
	}
	return "active"
}

// compatible reports whether the offer's m-line can be answered toward a
// side of kind to in its own profile, as RFC 3264 requires.
func compatible(o *Media, to Kind) bool {
	switch to {
	case KindRTP:
		return o.Proto == "RTP/AVP" || o.Proto == "RTP/AVPF"
	case KindSRTP:
		return isSDES(o)
	case KindWebRTC:
		return isDTLS(o)
	}
	return false
}

func disabledStream(typ string) StreamPlan {
	sp := StreamPlan{Type: typ, EventPT: [2]int16{-1, -1}}
	for i := range sp.OffererToAnswerer {
		sp.OffererToAnswerer[i] = -1
		sp.AnswererToOfferer[i] = -1
	}
	return sp
}

// pair is one codec both sides agreed on: as offered and as answered.
type pair struct{ o, a Codec }

// negotiate agrees the codecs of one m-line. It returns the stream plan
// (Enabled when a codec was agreed) and the codecs to answer the offerer
// with: the answer's, in its order, with the offerer's payload types.
func negotiate(o, ans *Media, web, dtmf bool, to Kind) (StreamPlan, []Codec) {
	sp := disabledStream(o.Type)
	if !o.Usable || !ans.Usable || ans.Type != o.Type {
		return sp, nil
	}
	pairs := agree(usableCodecs(o, web), ans.Codecs, web)
	first := slices.IndexFunc(pairs, func(p pair) bool { return !isEvent(p.o) })
	if first < 0 {
		return sp, nil
	}
	sp.Enabled, sp.Codec, sp.ClockRate = true, pairs[first].o, pairs[first].o.Rate
	for _, p := range pairs {
		sp.OffererToAnswerer[p.o.PT] = int16(p.a.PT)
		sp.AnswererToOfferer[p.a.PT] = int16(p.o.PT)
	}
	for _, p := range pairs {
		if sp.AnswererToOfferer[p.o.PT] < 0 {
			sp.AnswererToOfferer[p.o.PT] = int16(p.o.PT)
		}
	}
	if ev, ok := ans.Event(sp.ClockRate); ok {
		sp.EventPT[1] = int16(ev.PT)
	}
	codecs := make([]Codec, 0, len(pairs)+1)
	for _, p := range pairs {
		c := p.o
		c.Fmtp = remapApt(p.a.Fmtp, &sp.AnswererToOfferer)
		c.FB = answerFB(to, o.Type, p.o.FB, p.a.FB)
		codecs = append(codecs, c)
		if isEvent(c) && c.Rate == sp.ClockRate {
			sp.EventPT[0] = int16(c.PT)
		}
	}
	if ev, ok := o.Event(sp.ClockRate); ok && dtmf && sp.EventPT[0] < 0 && !slices.ContainsFunc(codecs, func(c Codec) bool { return c.PT == ev.PT }) {
		// The answerer has no RFC 4733: the SBC takes the offerer's events
		// and converts them.
		ev.FB = nil
		codecs = append(codecs, ev)
		sp.EventPT[0] = int16(ev.PT)
	}
	return sp, codecs
}

// agree pairs the answer's codecs, in the answer's order, with the offered
// codec each names. Toward a browser telephone-event is kept only at the
// clock rate of an agreed audio codec.
func agree(offered, answered []Codec, web bool) []pair {
	var pairs []pair
	rates := map[uint32]bool{}
	free := slices.Clone(offered)
	take := func(ac Codec) (Codec, bool) {
		oc, ok := matchCodec(free, ac)
		if ok {
			free = slices.DeleteFunc(free, func(c Codec) bool { return c.PT == oc.PT })
		}
		return oc, ok
	}
	matched := make([]*Codec, len(answered))
	for i, ac := range answered {
		if isEvent(ac) {
			continue
		}
		if oc, ok := take(ac); ok {
			matched[i] = &oc
			rates[oc.Rate] = true
		}
	}
	for i, ac := range answered {
		if isEvent(ac) && (!web || rates[ac.Rate]) {
			if oc, ok := take(ac); ok {
				matched[i] = &oc
			}
		}
		if matched[i] != nil {
			pairs = append(pairs, pair{o: *matched[i], a: ac})
		}
	}
	return pairs
}

// remapApt rewrites the apt= parameter of an rtx fmtp (RFC 4588) from the
// answerer's payload type to the offerer's.
func remapApt(fmtp string, a2o *[128]int16) string {
	params := strings.Split(fmtp, ";")
	changed := false
	for i, p := range params {
		k, v, ok := strings.Cut(strings.TrimSpace(p), "=")
		if !ok || !strings.EqualFold(k, "apt") {
			continue
		}
		if pt, ok := parsePT(strings.TrimSpace(v)); ok && a2o[pt] >= 0 {
			params[i] = k + "=" + strconv.Itoa(int(a2o[pt]))
			changed = true
		}
	}
	if !changed {
		return fmtp
	}
	return strings.Join(params, ";")
}
