package media

import (
	"errors"
	"slices"
	"strings"

	"github.com/sbc-project/sbc/media/codec"
	"github.com/sbc-project/sbc/media/sdpconv"
)

// Transcoding: when a side's allowed codecs (SideOptions.Codecs, from
// trunks[].codecs or routes[].webrtc_codecs) and what the other side
// offers share nothing, or the offerer's list narrows its offer, the
// offer toward the other side also names the codecs the SBC can
// transcode (codec.Supported). If the answer picks one the offerer did
// not offer, the offerer is answered with its own best supported codec
// and each direction of the stream goes through a codec.Transcoder
// (transcode_flow.go). Everything else keeps the zero-copy relay: no
// list, or a list both sides satisfy, changes nothing.

// ErrTranscodeCapacity is wrapped when an offer can only be carried by
// transcoding and Config.MaxTranscoded sessions already transcode. The
// B2BUA answers 488 with TranscodeWarning.
var ErrTranscodeCapacity = errors.New("transcoding capacity reached")

// TranscodeWarning is the Warning header value sent with the 488 for
// ErrTranscodeCapacity (RFC 3261 warn-code 399, miscellaneous).
const TranscodeWarning = "399 sbc \"transcoding capacity reached\""

// transcodeCandidates are the codecs the SBC may add to an offer, in the
// order offered when the side has no list of its own: wideband first.
var transcodeCandidates = []sdpconv.Codec{
	{PT: 96, Name: "opus", Rate: 48000, Channels: 2, Fmtp: "minptime=10;useinbandfec=1"},
	{PT: 9, Name: "G722", Rate: 8000},
	{PT: 0, Name: "PCMU", Rate: 8000},
	{PT: 8, Name: "PCMA", Rate: 8000},
}

// webNames are the audio codecs that cross to and from a browser.
var webNames = []string{"opus", "g722", "pcmu", "pcma"}

// transcodeState is a session's transcoding: the offer as the offerer's
// side may use it, and whether the session holds one of the manager's
// transcoding slots. Guarded by Session.mu.
type transcodeState struct {
	// view is the last offer with its audio codecs narrowed to the
	// offerer's allowed list; nil when the offer went on unshaped (then
	// the exchange is today's relay).
	view *sdpconv.Description
	// offered is the shaped offer sent to the other side (nil: none);
	// shown is, while a stream transcodes, what each side was told of
	// the other: the answer the SBC made up for the offerer, the shaped
	// offer for the answerer. Absorb answers a side's re-offer from it.
	offered *sdpconv.Description
	shown   [2]*sdpconv.Description
	slot    bool // holds a manager slot (reserved by an offer, kept while transcoding)
	on      bool // a stream transcodes now
	ever    bool // a stream transcoded at some point (the CDR's transcoded)
}

// shapeOffer returns the offer d from side from as it goes to the other
// side: d itself when nothing needs changing, else a copy whose audio
// m-lines name the codecs both sides allow, then those the SBC can
// transcode to. It sets s.tc.view. Called under s.mu.
func (s *Session) shapeOffer(from Side, d *sdpconv.Description, kinds [2]Kind) (*sdpconv.Description, error) {
	to := from.Other()
	allowFrom, allowTo := s.opts[from].Codecs, s.opts[to].Codecs
	s.tc.view = nil
	if len(allowFrom) == 0 && len(allowTo) == 0 {
		return d, nil
	}
	web := kinds[from] == KindWebRTC || kinds[to] == KindWebRTC
	view, out := cloneMedia(d), cloneMedia(d)
	changed, wantSlot, direct := false, false, true
	for i := range d.Media {
		m := &d.Media[i]
		if m.Type != "audio" || !m.Usable || m.UDPTL || m.Port == 0 {
			continue
		}
		usable := allowed(m.Codecs, allowFrom)
		pass := ordered(allowed(usable, allowTo), allowTo)
		if web {
			pass = allowed(pass, webNames)
		}
		var adds []sdpconv.Codec
		if !s.m.cfg.NoTranscoding && (len(pass) == 0 || len(allowFrom) > 0) && slices.ContainsFunc(usable, transcodable) {
			adds = additions(pass, allowTo, m.Codecs, web)
		}
		if len(adds) > 0 {
			wantSlot = true
			direct = direct && len(pass) > 0
		}
		view.Media[i].Codecs = withEvents(usable, m.Codecs, len(usable))
		out.Media[i].Codecs = withEvents(append(slices.Clone(pass), adds...), m.Codecs, len(pass))
		if !sameList(out.Media[i].Codecs, m.Codecs) || !sameList(view.Media[i].Codecs, m.Codecs) {
			changed = true
		}
	}
	if wantSlot && !s.tc.slot {
		if !s.m.reserveTranscoding() {
			if !direct {
				return nil, ErrTranscodeCapacity
			}
			s.logger().Info("transcoding capacity reached: offered without transcoding", "side", to.String())
			return s.unshaped(from, d, kinds)
		}
		s.tc.slot = true
	}
	if !changed {
		return d, nil
	}
	s.tc.view, s.tc.offered = view, out
	return out, nil
}

// unshaped is shapeOffer's result when no slot is free: the offer with
// only the codecs both sides allow.
func (s *Session) unshaped(from Side, d *sdpconv.Description, kinds [2]Kind) (*sdpconv.Description, error) {
	to := from.Other()
	allowFrom, allowTo := s.opts[from].Codecs, s.opts[to].Codecs
	view, out := cloneMedia(d), cloneMedia(d)
	for i := range d.Media {
		m := &d.Media[i]
		if m.Type != "audio" || !m.Usable || m.UDPTL {
			continue
		}
		usable := allowed(m.Codecs, allowFrom)
		view.Media[i].Codecs = withEvents(usable, m.Codecs, len(usable))
		pass := ordered(allowed(usable, allowTo), allowTo)
		out.Media[i].Codecs = withEvents(pass, m.Codecs, len(pass))
	}
	s.tc.view, s.tc.offered = view, out
	return out, nil
}

// cloneMedia copies d with its own Media slice (the codec slices are
// shared until replaced).
func cloneMedia(d *sdpconv.Description) *sdpconv.Description {
	c := *d
	c.Media = slices.Clone(d.Media)
	return &c
}

// allowed keeps the audio codecs of cs named in names (all when names is
// empty), in cs's order; telephone-event is left out (withEvents adds it).
func allowed(cs []sdpconv.Codec, names []string) []sdpconv.Codec {
	var out []sdpconv.Codec
	for _, c := range cs {
		if isEvent(c) {
			continue
		}
		if len(names) == 0 || slices.Contains(names, strings.ToLower(c.Name)) {
			out = append(out, c)
		}
	}
	return out
}

// ordered sorts cs by the preference order of names (stable; unchanged
// when names is empty).
func ordered(cs []sdpconv.Codec, names []string) []sdpconv.Codec {
	if len(names) == 0 {
		return cs
	}
	out := slices.Clone(cs)
	slices.SortStableFunc(out, func(a, b sdpconv.Codec) int {
		return slices.Index(names, strings.ToLower(a.Name)) - slices.Index(names, strings.ToLower(b.Name))
	})
	return out
}

func transcodable(c sdpconv.Codec) bool { return knownRate(c) && codec.Supported(c.Name) }

// knownRate reports whether c has the clock rate the transcoder expects
// for its name.
func knownRate(c sdpconv.Codec) bool {
	for _, t := range transcodeCandidates {
		if strings.EqualFold(t.Name, c.Name) {
			return t.Rate == c.Rate
		}
	}
	return false
}

// additions are the codecs the SBC can transcode that the other side
// allows (allowTo, in its order, else transcodeCandidates' order) and
// pass does not already hold, each with a payload type the offer does
// not use.
func additions(pass []sdpconv.Codec, allowTo []string, offered []sdpconv.Codec, web bool) []sdpconv.Codec {
	cands := transcodeCandidates
	if len(allowTo) > 0 {
		cands = nil
		for _, n := range allowTo {
			if i := slices.IndexFunc(transcodeCandidates, func(c sdpconv.Codec) bool { return strings.EqualFold(c.Name, n) }); i >= 0 {
				cands = append(cands, transcodeCandidates[i])
			}
		}
	}
	used := slices.Clone(offered)
	var out []sdpconv.Codec
	for _, c := range cands {
		if !codec.Supported(c.Name) || slices.ContainsFunc(pass, func(p sdpconv.Codec) bool { return strings.EqualFold(p.Name, c.Name) }) {
			continue
		}
		if web && !slices.Contains(webNames, strings.ToLower(c.Name)) {
			continue
		}
		if i := slices.IndexFunc(offered, func(o sdpconv.Codec) bool { return sameName(o, c) }); i >= 0 {
			c = offered[i] // the offerer's own entry: its payload type, format parameters
		} else {
			c.PT = freePT(c.PT, used)
		}
		used = append(used, c)
		out = append(out, c)
	}
	return out
}

// freePT is pt when no codec of used has it, else a free dynamic one.
func freePT(pt uint8, used []sdpconv.Codec) uint8 {
	taken := func(p uint8) bool { return slices.ContainsFunc(used, func(c sdpconv.Codec) bool { return c.PT == p }) }
	if !taken(pt) {
		return pt
	}
	for p := uint8(96); p <= 127; p++ {
		if !taken(p) {
			return p
		}
	}
	return pt
}

// withEvents appends to cs the telephone-events of offered at the clock
// rate of a codec of cs, and for the codecs the SBC added (cs[relayed:])
// a new one at each rate still without, so digits cross at each side's
// clock.
func withEvents(cs, offered []sdpconv.Codec, relayed int) []sdpconv.Codec {
	out := slices.Clone(cs)
	for k, c := range cs {
		if slices.ContainsFunc(out, func(e sdpconv.Codec) bool { return isEvent(e) && e.Rate == c.Rate }) {
			continue
		}
		i := slices.IndexFunc(offered, func(e sdpconv.Codec) bool { return isEvent(e) && e.Rate == c.Rate })
		switch {
		case i >= 0:
			out = append(out, offered[i])
		case k >= relayed:
			// A codec the SBC added, at a rate the offerer has no events
			// at: the events the transcoder converts.
			ev := sdpconv.Codec{PT: 101, Name: "telephone-event", Rate: c.Rate, Fmtp: "0-16"}
			ev.PT = freePT(101, append(slices.Clone(offered), out...))
			out = append(out, ev)
		}
	}
	return out
}

func sameName(a, b sdpconv.Codec) bool {
	return strings.EqualFold(a.Name, b.Name) && a.Rate == b.Rate
}

// sameList reports whether a and b list the same payload types in order.
func sameList(a, b []sdpconv.Codec) bool {
	return slices.EqualFunc(a, b, func(x, y sdpconv.Codec) bool { return x.PT == y.PT && sameName(x, y) })
}
