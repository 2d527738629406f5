package sdpconv

import (
	"slices"
	"strconv"
	"strings"

	"github.com/pion/sdp/v3"
)

// staticTypes are the RFC 3551 payload types an m-line may use without
// a=rtpmap.
var staticTypes = map[uint8]Codec{
	0: {Name: "PCMU", Rate: 8000}, 3: {Name: "GSM", Rate: 8000},
	4: {Name: "G723", Rate: 8000}, 5: {Name: "DVI4", Rate: 8000},
	6: {Name: "DVI4", Rate: 16000}, 7: {Name: "LPC", Rate: 8000},
	8: {Name: "PCMA", Rate: 8000}, 9: {Name: "G722", Rate: 8000},
	10: {Name: "L16", Rate: 44100, Channels: 2}, 11: {Name: "L16", Rate: 44100},
	12: {Name: "QCELP", Rate: 8000}, 13: {Name: "CN", Rate: 8000},
	14: {Name: "MPA", Rate: 90000}, 15: {Name: "G728", Rate: 8000},
	16: {Name: "DVI4", Rate: 11025}, 17: {Name: "DVI4", Rate: 22050},
	18: {Name: "G729", Rate: 8000}, 25: {Name: "CelB", Rate: 90000},
	26: {Name: "JPEG", Rate: 90000}, 28: {Name: "nv", Rate: 90000},
	31: {Name: "H261", Rate: 90000}, 32: {Name: "MPV", Rate: 90000},
	33: {Name: "MP2T", Rate: 90000}, 34: {Name: "H263", Rate: 90000},
}

// webAudio and webVideo are the codecs that cross between a browser and
// a plain side without transcoding, by lower-case name and clock rate.
var (
	webAudio = map[string]uint32{"pcmu": 8000, "pcma": 8000, "g722": 8000, "opus": 48000}
	webVideo = map[string]uint32{"vp8": 90000, "vp9": 90000, "h264": 90000, "av1": 90000}
)

// webFB are the rtcp-fb values written toward a browser for video: the
// keyframe requests, which the SBC relays as plain RTCP. Congestion
// control feedback (transport-cc, goog-remb) and nack need an RTP stack
// the SBC does not have.
var webFB = []string{"ccm fir", "nack pli"}

const eventName = "telephone-event"

func isEvent(c Codec) bool { return strings.EqualFold(c.Name, eventName) }

// readCodecs reads the payload types of an m-line's format list with their
// rtpmap, fmtp and rtcp-fb attributes. Non-numeric formats (e.g.
// webrtc-datachannel) and repeats are skipped.
func readCodecs(formats []string, attrs []sdp.Attribute) []Codec {
	var out []Codec
	if len(formats) > 0 {
		out = make([]Codec, 0, len(formats))
	}
	// index[pt] is 1 + the index of pt's codec in out; 0: not listed. An
	// array, not a map: this runs for every m-line of every SDP a call
	// exchanges (BENCHMARKS.md, issue 15 eighth step).
	var index [128]int16
	for _, f := range formats {
		pt, ok := parsePT(f)
		if !ok || index[pt] != 0 {
			continue
		}
		index[pt] = int16(len(out) + 1)
		c := staticTypes[pt]
		c.PT = pt
		out = append(out, c)
	}
	var wildFB []string
	for _, a := range attrs {
		pt, rest, ok := ptValue(a.Value)
		key := strings.ToLower(a.Key)
		if key == "rtcp-fb" && strings.HasPrefix(strings.TrimSpace(a.Value), "*") {
			wildFB = appendFB(wildFB, strings.TrimSpace(strings.TrimSpace(a.Value)[1:]))
			continue
		}
		if !ok || index[pt] == 0 {
			continue
		}
		applyCodecAttr(&out[index[pt]-1], key, rest)
	}
	for i := range out {
		for _, fb := range wildFB {
			out[i].FB = appendFB(out[i].FB, fb)
		}
	}
	return out
}

// applyCodecAttr sets what one rtpmap, fmtp or rtcp-fb says about c.
func applyCodecAttr(c *Codec, key, rest string) {
	switch key {
	case "rtpmap":
		if name, rate, ch, ok := parseRtpmap(rest); ok {
			c.Name, c.Rate, c.Channels = name, rate, ch
		}
	case "fmtp":
		c.Fmtp = rest
	case "rtcp-fb":
		c.FB = appendFB(c.FB, rest)
	}
}

func appendFB(fbs []string, fb string) []string {
	if fb == "" || slices.Contains(fbs, fb) {
		return fbs
	}
	return append(fbs, fb)
}

// parsePT reads a payload type (0-127).
func parsePT(s string) (uint8, bool) {
	n, err := strconv.ParseUint(s, 10, 8)
	if err != nil || n > 127 {
		return 0, false
	}
	return uint8(n), true
}

// ptValue splits "96 rest" into the payload type and the trimmed rest.
func ptValue(v string) (uint8, string, bool) {
	v = strings.TrimSpace(v)
	head, rest, _ := strings.Cut(v, " ")
	pt, ok := parsePT(head)
	return pt, strings.TrimSpace(rest), ok
}

// parseRtpmap reads "name/rate[/channels]".
func parseRtpmap(s string) (string, uint32, uint16, bool) {
	name, rest, ok := strings.Cut(s, "/")
	if !ok || name == "" {
		return "", 0, 0, false
	}
	rateS, chS, hasCh := strings.Cut(rest, "/")
	rate, err := strconv.ParseUint(rateS, 10, 32)
	if err != nil || rate == 0 {
		return "", 0, 0, false
	}
	var ch uint64
	if hasCh {
		if ch, err = strconv.ParseUint(chS, 10, 16); err != nil { // a third "/" fails here too
			return "", 0, 0, false
		}
	}
	return name, uint32(rate), uint16(ch), true
}

// webCodecs filters an m-line's codecs to what crosses between a browser
// and a plain side: the audio or video codecs of webAudio/webVideo, and
// telephone-event at the clock rate of a kept audio codec.
func webCodecs(m *Media) []Codec {
	rates := map[uint32]bool{}
	for _, c := range m.Codecs {
		if webAllowed(m.Type, c) {
			rates[c.Rate] = true
		}
	}
	var out []Codec
	for _, c := range m.Codecs {
		if webAllowed(m.Type, c) || (m.Type == "audio" && isEvent(c) && rates[c.Rate]) {
			out = append(out, c)
		}
	}
	return out
}

// webAllowed reports whether c is a media codec of webAudio or webVideo.
func webAllowed(typ string, c Codec) bool {
	table := webAudio
	if typ == "video" {
		table = webVideo
	} else if typ != "audio" {
		return false
	}
	rate, ok := table[strings.ToLower(c.Name)]
	return ok && rate == c.Rate
}

// usableCodecs is what the SBC relays for m: the browser filter when
// either side is a browser, else every payload type (SIP to SIP keeps
// G.729, CN and anything else both ends know).
func usableCodecs(m *Media, web bool) []Codec {
	if web {
		return webCodecs(m)
	}
	return slices.Clone(m.Codecs)
}

// hasMediaCodec reports whether codecs has one that is not an event.
func hasMediaCodec(codecs []Codec) bool {
	for _, c := range codecs {
		if !isEvent(c) {
			return true
		}
	}
	return false
}

// sameCodec reports whether a and b name the same codec: name (case
// insensitive), clock rate and channels (absent = 1; ignored for opus,
// always stereo by RFC 7587). Nameless dynamic types match by PT only.
func sameCodec(a, b Codec) bool {
	if a.Name == "" || b.Name == "" {
		return a.Name == b.Name && a.PT == b.PT
	}
	if !strings.EqualFold(a.Name, b.Name) || a.Rate != b.Rate {
		return false
	}
	return strings.EqualFold(a.Name, "opus") || max(a.Channels, 1) == max(b.Channels, 1)
}

// matchCodec finds the codec of offered that answer names, preferring the
// same payload type, then compatible format parameters, then the first.
func matchCodec(offered []Codec, answer Codec) (Codec, bool) {
	best, bestScore := Codec{}, -1
	for _, o := range offered {
		if !sameCodec(o, answer) {
			continue
		}
		score := 0
		if o.PT == answer.PT {
			score += 2
		}
		if fmtpCompatible(o, answer) {
			score++
		}
		if score > bestScore {
			best, bestScore = o, score
		}
	}
	return best, bestScore >= 0
}

// fmtpCompatible compares the parameters that make two entries of one
// codec different streams: H.264 packetization-mode and profile, VP9
// profile-id. Other codecs are always compatible.
func fmtpCompatible(a, b Codec) bool {
	pa, pb := fmtpParams(a.Fmtp), fmtpParams(b.Fmtp)
	switch strings.ToLower(a.Name) {
	case "h264":
		profile := func(p map[string]string) string {
			v := p["profile-level-id"]
			if len(v) < 6 {
				v = "42001f"
			}
			return strings.ToLower(v[:2])
		}
		return pa["packetization-mode"] == pb["packetization-mode"] && profile(pa) == profile(pb)
	case "vp9":
		return pa["profile-id"] == pb["profile-id"]
	}
	return true
}

// fmtpParams splits "a=1;b=2" into lower-case keys and values.
func fmtpParams(s string) map[string]string {
	p := map[string]string{}
	for kv := range strings.SplitSeq(s, ";") {
		k, v, _ := strings.Cut(strings.TrimSpace(kv), "=")
		p[strings.ToLower(k)] = strings.TrimSpace(v)
	}
	return p
}

// freeDynamicPT is a dynamic payload type codecs do not use: 101 if free,
// else the first free in 96-127.
func freeDynamicPT(codecs []Codec) (uint8, bool) {
	used := func(pt uint8) bool {
		return slices.ContainsFunc(codecs, func(c Codec) bool { return c.PT == pt })
	}
	if !used(101) {
		return 101, true
	}
	for pt := uint8(96); pt <= 127; pt++ {
		if !used(pt) {
			return pt, true
		}
	}
	return 0, false
}
