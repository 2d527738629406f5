package sdpconv

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/pion/sdp/v3"
)

// LocalMedia is the SBC's transport for one m-line, facing the side the
// SDP is written for.
type LocalMedia struct {
	// Port is the SBC's RTP port for this m-line; 0 rejects the m-line.
	// Toward WebRTC every bundled m-line gets the port of the first one.
	Port int
	// RTCPPort is written as a=rtcp when non-zero; 0 leaves RTCP on
	// Port+1 implicitly. Ignored toward WebRTC (rtcp-mux).
	RTCPPort int
	// RTCPMux writes a=rtcp-mux toward RTP and SRTP sides. Set it only
	// when that side offered rtcp-mux; answers write it only when the
	// offer had it.
	RTCPMux bool
	// Crypto is the SBC's a=crypto value toward an SRTP side, e.g.
	// "1 AES_CM_128_HMAC_SHA1_80 inline:...". Required for SRTP.
	Crypto string
	// SSRC is the normalized SSRC the SBC sends on this m-line toward
	// WebRTC, written as a=ssrc with cname and msid so the browser can
	// demultiplex the bundle; 0 writes none.
	SSRC uint32
	// MID is the mid toward WebRTC in offers; empty uses the source's mid,
	// else the m-line index ("0", "1", ..). Answers echo the offer's mid.
	MID string
	// DTMF lets the SBC terminate RFC 4733 on this side so it can convert
	// DTMF to or from SIP INFO: an offer gains telephone-event when the
	// source has none, and an answer keeps the offerer's telephone-event
	// when the answerer did not accept it (StreamPlan.EventPT tells which).
	DTMF bool
}

// Local is the SBC's side of one SDP it writes.
type Local struct {
	// Addr is the SBC's media address, written in c= and, when Origin has
	// no address, in o=. Required.
	Addr netip.Addr
	// Origin is the o= line; the caller keeps its id and version. Empty
	// fields get "sbc", "IN" and Addr.
	Origin sdp.Origin
	// Media has one entry per m-line of the SDP being rendered.
	Media []LocalMedia
	// ICE is the SBC's ICE-lite and DTLS state toward WebRTC: ufrag, pwd,
	// candidates, fingerprints, setup (empty: actpass in offers; in
	// answers the role opposite to the offer's, active for actpass) and
	// Lite (a=ice-lite). Required toward WebRTC, unused otherwise.
	ICE *ICE
	// CName is the RTCP CNAME written in a=ssrc toward WebRTC; empty or
	// not a token: "sbc".
	CName string
}

// errLocal is wrapped when Local does not fit the SDP being rendered: a
// bug in the caller, not in the SDP it received.
var errLocal = errors.New("bad local transport")

// checkLocal verifies that local can describe n m-lines toward to.
func checkLocal(n int, to Kind, local *Local) error {
	switch {
	case to < KindRTP || to > KindWebRTC:
		return fmt.Errorf("%w: unknown kind %d", errLocal, int(to))
	case !local.Addr.IsValid() || local.Addr.IsUnspecified():
		return fmt.Errorf("%w: no address", errLocal)
	case len(local.Media) != n:
		return fmt.Errorf("%w: %d local m-lines for %d", errLocal, len(local.Media), n)
	}
	if to == KindWebRTC {
		ice := local.ICE
		if ice == nil || ice.Ufrag == "" || ice.Pwd == "" || len(ice.Fingerprints) == 0 {
			return fmt.Errorf("%w: webrtc without ice credentials and fingerprint", errLocal)
		}
	}
	for i, lm := range local.Media {
		if lm.Port < 0 || lm.Port > 65535 || lm.RTCPPort < 0 || lm.RTCPPort > 65535 {
			return fmt.Errorf("%w: m-line %d: port out of range", errLocal, i)
		}
		if to == KindSRTP && lm.Port > 0 && lm.Crypto == "" {
			return fmt.Errorf("%w: m-line %d: srtp without crypto", errLocal, i)
		}
	}
	return nil
}

// line is an enabled m-line to write.
type line struct {
	typ, proto string
	port       int
	codecs     []Codec // FB already chosen for the target
	dir        string
	ptime, max int
	mid        string
	setup      string // WebRTC
	rtcpMux    bool   // RTP and SRTP
	local      LocalMedia
}

// writer writes SDP toward one side.
type writer struct {
	to    Kind
	local *Local
}

// marshal writes the session around media. bundle lists the mids of the
// BUNDLE group toward WebRTC.
func (w *writer) marshal(media []*sdp.MediaDescription, bundle []string) ([]byte, error) {
	sd := &sdp.SessionDescription{
		Origin:                w.origin(),
		SessionName:           "sbc",
		ConnectionInformation: connInfo(w.local.Addr),
		TimeDescriptions:      []sdp.TimeDescription{{}},
		MediaDescriptions:     media,
	}
	if w.to == KindWebRTC {
		if len(bundle) > 0 {
			sd.Attributes = append(sd.Attributes, sdp.NewAttribute("group", "BUNDLE "+strings.Join(bundle, " ")))
		}
		if w.local.ICE.Lite {
			sd.Attributes = append(sd.Attributes, sdp.NewPropertyAttribute("ice-lite"))
		}
		sd.Attributes = append(sd.Attributes, sdp.NewAttribute("msid-semantic", " WMS "+w.cname()))
	}
	body, err := sd.Marshal()
	if err != nil {
		return nil, fmt.Errorf("marshal sdp: %w", err)
	}
	return body, nil
}

func (w *writer) origin() sdp.Origin {
	o := w.local.Origin
	if o.Username == "" {
		o.Username = "sbc"
	}
	if o.NetworkType == "" {
		o.NetworkType = "IN"
	}
	if o.AddressType == "" || o.UnicastAddress == "" {
		o.AddressType, o.UnicastAddress = addrType(w.local.Addr), w.local.Addr.Unmap().String()
	}
	return o
}

func (w *writer) cname() string {
	if validToken(w.local.CName) {
		return w.local.CName
	}
	return "sbc"
}

// rejected writes a disabled m-line (port 0). RFC 3264 keeps it so the
// m-line positions of offer and answer stay aligned. Toward WebRTC an RTP
// m-line lists only payload type 0, which needs no a=rtpmap: browsers
// (and pion) look up every listed type, even on a disabled m-line.
func (w *writer) rejected(typ, proto string, formats []string, mid string) *sdp.MediaDescription {
	rtp := (typ == "audio" || typ == "video") && strings.Contains(proto, "RTP/")
	if len(formats) == 0 || (w.to == KindWebRTC && rtp) {
		formats = []string{"0"}
	}
	md := &sdp.MediaDescription{MediaName: sdp.MediaName{
		Media: typ, Port: sdp.RangedPort{Value: 0}, Protos: strings.Split(proto, "/"), Formats: formats,
	}}
	if w.to == KindWebRTC && mid != "" {
		md.Attributes = append(md.Attributes, sdp.NewAttribute("mid", mid))
	}
	return md
}

// enabled writes an m-line the SBC carries.
func (w *writer) enabled(l *line) *sdp.MediaDescription {
	md := &sdp.MediaDescription{MediaName: sdp.MediaName{
		Media: l.typ, Port: sdp.RangedPort{Value: l.port}, Protos: strings.Split(l.proto, "/"),
	}}
	for _, c := range l.codecs {
		md.MediaName.Formats = append(md.MediaName.Formats, strconv.Itoa(int(c.PT)))
	}
	add := func(k, v string) { md.Attributes = append(md.Attributes, sdp.NewAttribute(k, v)) }
	if w.to == KindWebRTC {
		w.iceAttrs(l, add)
	}
	add(l.dir, "")
	if w.to == KindWebRTC {
		add("rtcp-mux", "")
	} else {
		if l.local.RTCPPort > 0 {
			add("rtcp", strconv.Itoa(l.local.RTCPPort))
		}
		if l.rtcpMux {
			add("rtcp-mux", "")
		}
	}
	codecAttrs(l, add)
	if w.to == KindSRTP {
		add("crypto", l.local.Crypto)
	}
	if w.to == KindWebRTC {
		w.sourceAttrs(l, add)
	}
	return md
}

// iceAttrs writes the ICE and DTLS attributes toward WebRTC. They are
// written on every m-line, re-offers included, so each m-line stands on
// its own whatever the browser does with the bundle.
func (w *writer) iceAttrs(l *line, add func(k, v string)) {
	ice := w.local.ICE
	add("ice-ufrag", ice.Ufrag)
	add("ice-pwd", ice.Pwd)
	for _, fp := range ice.Fingerprints {
		add("fingerprint", fp)
	}
	add("setup", l.setup)
	if l.mid != "" {
		add("mid", l.mid)
	}
	for _, c := range ice.Candidates {
		add("candidate", strings.TrimPrefix(strings.TrimPrefix(c, "a="), "candidate:"))
	}
	// An ICE-lite agent knows all its candidates up front.
	add("end-of-candidates", "")
}

// codecAttrs writes rtpmap, fmtp and rtcp-fb of each codec, then ptime.
func codecAttrs(l *line, add func(k, v string)) {
	feedback := strings.HasSuffix(l.proto, "AVPF")
	for _, c := range l.codecs {
		pt := strconv.Itoa(int(c.PT))
		if c.Name != "" {
			add("rtpmap", pt+" "+rtpmapValue(c))
		}
		if c.Fmtp != "" {
			add("fmtp", pt+" "+c.Fmtp)
		}
		for _, fb := range c.FB {
			if feedback {
				add("rtcp-fb", pt+" "+fb)
			}
		}
	}
	if l.ptime > 0 {
		add("ptime", strconv.Itoa(l.ptime))
	}
	if l.max > 0 {
		add("maxptime", strconv.Itoa(l.max))
	}
}

func rtpmapValue(c Codec) string {
	v := c.Name + "/" + strconv.FormatUint(uint64(c.Rate), 10)
	if c.Channels > 0 {
		v += "/" + strconv.FormatUint(uint64(c.Channels), 10)
	}
	return v
}

// sourceAttrs writes the SSRC the SBC sends toward WebRTC, when it sends.
func (w *writer) sourceAttrs(l *line, add func(k, v string)) {
	if l.local.SSRC == 0 || l.dir == "recvonly" || l.dir == "inactive" {
		return
	}
	cname := w.cname()
	track := cname + "-" + l.typ
	if l.mid != "" {
		track += "-" + l.mid
	}
	ssrc := strconv.FormatUint(uint64(l.local.SSRC), 10)
	add("msid", cname+" "+track)
	add("ssrc", ssrc+" cname:"+cname)
	add("ssrc", ssrc+" msid:"+cname+" "+track)
}

// outDir is the direction written for m: its own, except that RFC 2543
// hold (c=0.0.0.0) becomes sendonly, or inactive when the side did not
// send anyway, since the SBC always writes its real address.
func outDir(m *Media) string {
	if !nullHold(m) {
		return m.Dir
	}
	if m.Dir == "recvonly" || m.Dir == "inactive" {
		return "inactive"
	}
	return "sendonly"
}

// offerFB chooses the rtcp-fb values of a codec offered toward to:
// browsers get only keyframe requests on video, SIP sides what the source
// said.
func offerFB(to Kind, typ string, src []string) []string {
	if to != KindWebRTC {
		return slices.Clone(src)
	}
	if typ == "video" {
		return slices.Clone(webFB)
	}
	return nil
}

// answerFB chooses the rtcp-fb values of a codec answered toward to: what
// offerFB allows of the answer, limited to what the offerer offered.
func answerFB(to Kind, typ string, offered, answered []string) []string {
	return slices.DeleteFunc(offerFB(to, typ, answered), func(fb string) bool {
		return !slices.Contains(offered, fb)
	})
}

func connInfo(ip netip.Addr) *sdp.ConnectionInformation {
	return &sdp.ConnectionInformation{
		NetworkType: "IN",
		AddressType: addrType(ip),
		Address:     &sdp.Address{Address: ip.Unmap().String()},
	}
}

func addrType(ip netip.Addr) string {
	if ip.Unmap().Is4() {
		return "IP4"
	}
	return "IP6"
}

// validToken reports whether s is a non-empty RFC 4566 token, safe as a
// mid, msid or CNAME.
func validToken(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		alnum := c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
		if !alnum && !strings.ContainsRune("!#$%&'*+-.^_`{|}~", rune(c)) {
			return false
		}
	}
	return true
}
