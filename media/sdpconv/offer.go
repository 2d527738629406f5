package sdpconv

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/pion/sdp/v3"
)

// RenderOffer writes the offer toward a side of kind to for the offer in
// received from the other side. local is the SBC's transport facing that
// side, one LocalMedia per m-line of in.
//
// Every m-line of in is kept, in order (RFC 3264). One is disabled (port
// 0) when it is not usable, when it has no codec the SBC can carry, or
// when its LocalMedia.Port is 0. When either side is a browser only PCMU,
// PCMA, G722, opus, telephone-event (at the rate of a kept audio codec),
// VP8, VP9, H264 and AV1 cross; between two SIP sides every codec does.
// Payload types are kept as the offerer numbered them.
//
// Toward RTP and SRTP the profile is RTP/AVP or RTP/SAVP (the F kept only
// between SIP sides) with a=crypto from local for SRTP, and nothing of
// ICE, DTLS, BUNDLE, mid, msid, ssrc, extmap or rtcp-fb. Toward WebRTC
// every m-line is UDP/TLS/RTP/SAVPF with a mid, ICE and DTLS attributes,
// rtcp-mux and the SBC's SSRC, and the enabled ones share one port in one
// BUNDLE group. Directions pass as they are, except that RFC 2543 hold
// (c=0.0.0.0) becomes a=sendonly (a=inactive if the side was not sending):
// the SBC always writes its own address.
//
// Errors wrap ErrNoCodec when no usable m-line has a codec to carry.
// Other errors mean local does not fit in (a caller bug).
func RenderOffer(in *Description, to Kind, local Local) ([]byte, error) {
	if in == nil {
		return nil, fmt.Errorf("render offer for %s: %w: no description", to, ErrBadSDP)
	}
	if err := checkLocal(len(in.Media), to, &local); err != nil {
		return nil, fmt.Errorf("render offer for %s: %w", to, err)
	}
	o := offerer{in: in, w: writer{to: to, local: &local}, web: in.Kind == KindWebRTC || to == KindWebRTC}
	o.mids = offerMids(in, &local, to)
	if !o.lines() {
		return nil, fmt.Errorf("render offer for %s: %w among %d m-lines", to, ErrNoCodec, len(in.Media))
	}
	body, err := o.w.marshal(o.media, o.bundle)
	if err != nil {
		return nil, fmt.Errorf("render offer for %s: %w", to, err)
	}
	return body, nil
}

// offerer holds the state of one RenderOffer.
type offerer struct {
	in     *Description
	w      writer
	web    bool
	mids   []string
	media  []*sdp.MediaDescription
	bundle []string
	port   int // the bundle's port toward WebRTC
}

// lines writes every m-line and reports whether a usable one had a codec.
func (o *offerer) lines() bool {
	found := false
	for i := range o.in.Media {
		m := &o.in.Media[i]
		var codecs []Codec
		if m.Usable {
			codecs = usableCodecs(m, o.web)
		}
		ok := hasMediaCodec(codecs)
		found = found || ok
		lm := o.w.local.Media[i]
		if !ok || lm.Port == 0 {
			o.media = append(o.media, o.w.rejected(m.Type, o.rejectProto(m), m.Formats, o.mids[i]))
			continue
		}
		o.media = append(o.media, o.w.enabled(o.line(i, codecs)))
	}
	return found
}

// line describes enabled m-line i with the codecs it carries.
func (o *offerer) line(i int, codecs []Codec) *line {
	m, lm := &o.in.Media[i], o.w.local.Media[i]
	if lm.DTMF && m.Type == "audio" {
		codecs = addEvent(codecs)
	}
	l := &line{
		typ: m.Type, proto: offerProto(o.w.to, o.in.Kind, m.Proto), port: lm.Port,
		dir: outDir(m), ptime: m.Ptime, max: m.MaxPtime, mid: o.mids[i],
		rtcpMux: lm.RTCPMux, local: lm, setup: "actpass",
	}
	for _, c := range codecs {
		c.FB = offerFB(o.w.to, m.Type, c.FB)
		l.codecs = append(l.codecs, c)
	}
	if o.w.to == KindWebRTC {
		if o.w.local.ICE.Setup != "" {
			l.setup = o.w.local.ICE.Setup
		}
		if o.port == 0 {
			o.port = lm.Port
		}
		l.port = o.port
		o.bundle = append(o.bundle, l.mid)
	}
	return l
}

// rejectProto keeps a disabled RTP m-line in the target's profile and any
// other m-line in its own.
func (o *offerer) rejectProto(m *Media) string {
	if terminable(m.Proto) && (m.Type == "audio" || m.Type == "video") {
		return offerProto(o.w.to, o.in.Kind, m.Proto)
	}
	return m.Proto
}

// offerProto is the profile offered toward to. Toward WebRTC it is always
// UDP/TLS/RTP/SAVPF; toward a SIP side it is RTP/AVP or RTP/SAVP, with
// the feedback profile (AVPF) kept only when the source is a SIP side too,
// since many PBXs reject AVPF.
func offerProto(to, from Kind, src string) string {
	feedback := from != KindWebRTC && strings.HasSuffix(src, "AVPF")
	switch {
	case to == KindWebRTC:
		return "UDP/TLS/RTP/SAVPF"
	case to == KindSRTP && feedback:
		return "RTP/SAVPF"
	case to == KindSRTP:
		return "RTP/SAVP"
	case feedback:
		return "RTP/AVPF"
	}
	return "RTP/AVP"
}

// offerMids chooses the mid of each m-line toward WebRTC: the caller's,
// else the source's, else the index. If any is not a unique token, all
// m-lines use their index. Other kinds get no mids.
func offerMids(in *Description, local *Local, to Kind) []string {
	mids := make([]string, len(in.Media))
	if to != KindWebRTC {
		return mids
	}
	seen := map[string]bool{}
	for i := range mids {
		mid := local.Media[i].MID
		if mid == "" {
			mid = in.Media[i].MID
		}
		if mid == "" {
			mid = strconv.Itoa(i)
		}
		if !validToken(mid) || seen[mid] {
			return indexMids(len(mids))
		}
		seen[mid] = true
		mids[i] = mid
	}
	return mids
}

func indexMids(n int) []string {
	mids := make([]string, n)
	for i := range mids {
		mids[i] = strconv.Itoa(i)
	}
	return mids
}

// addEvent appends telephone-event at the clock rate of the first audio
// codec when codecs has none at that rate, so the SBC can send RFC 4733.
func addEvent(codecs []Codec) []Codec {
	var rate uint32
	for _, c := range codecs {
		if !isEvent(c) {
			rate = c.Rate
			break
		}
	}
	if rate == 0 {
		return codecs
	}
	for _, c := range codecs {
		if isEvent(c) && c.Rate == rate {
			return codecs
		}
	}
	pt, ok := freeDynamicPT(codecs)
	if !ok {
		return codecs
	}
	return append(codecs, Codec{PT: pt, Name: eventName, Rate: rate, Fmtp: "0-16"})
}
