package sdpconv

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/pion/sdp/v3"
)

// Parse reads an SDP body. Every error wraps ErrBadSDP: a body pion/sdp
// cannot parse, or one without a single usable m-line.
//
// The kind is WebRTC when a usable m-line uses UDP/TLS/RTP/SAVPF, or
// RTP/SAVPF with a fingerprint and ICE credentials; SRTP when a usable
// m-line uses RTP/SAVP(F) with a=crypto; RTP otherwise.
func Parse(body []byte) (*Description, error) {
	d, _, err := ParseSession(body)
	return d, err
}

// ParseSession is Parse that also returns pion's parse of body, for a
// caller that rewrites it (the media session's plain pass-through) and
// would otherwise parse body a second time. The Description shares no
// memory with the session description that a rewrite may change (only
// Media.Formats, which the pass-through keeps).
func ParseSession(body []byte) (*Description, *sdp.SessionDescription, error) {
	sd, err := Unmarshal(body)
	if err != nil {
		return nil, nil, fmt.Errorf("parse sdp: %w: %w", ErrBadSDP, err)
	}
	d, err := Describe(sd)
	if err != nil {
		return nil, nil, err
	}
	return d, sd, nil
}

// Describe is Parse of what sd holds, without rendering and parsing it
// again: Parse(sd.Marshal()) describes the same. The Description shares
// no string with sd (own.go): the strings of sd's m-lines' formats are
// replaced by equal ones of their own.
func Describe(sd *sdp.SessionDescription) (*Description, error) {
	d := &Description{Bundle: bundle(sd.Attributes)}
	sess := readSession(sd)
	usable := 0
	for _, md := range sd.MediaDescriptions {
		m := readMedia(md, &sess)
		if m.Usable {
			usable++
		}
		d.Media = append(d.Media, m)
	}
	if usable == 0 {
		return nil, fmt.Errorf("parse sdp: %w: no usable RTP m-line among %d", ErrBadSDP, len(d.Media))
	}
	d.Kind = detectKind(d.Media)
	d.own()
	return d, nil
}

// session holds the session-level values m-lines fall back to.
type session struct {
	addr netip.Addr
	dir  string
	ice  ICE
}

func readSession(sd *sdp.SessionDescription) session {
	s := session{addr: connAddr(sd.ConnectionInformation), dir: direction(sd.Attributes)}
	readICE(&s.ice, sd.Attributes)
	return s
}

// readMedia reads one m-line; values it lacks come from sess.
func readMedia(md *sdp.MediaDescription, sess *session) Media {
	mn := md.MediaName
	m := Media{
		Type:    mn.Media,
		Port:    mn.Port.Value,
		Proto:   strings.Join(mn.Protos, "/"),
		Formats: mn.Formats,
		Addr:    sess.addr,
		Dir:     direction(md.Attributes),
	}
	if md.ConnectionInformation != nil {
		m.Addr = connAddr(md.ConnectionInformation)
	}
	if m.Dir == "" {
		m.Dir = sess.dir
	}
	if m.Dir == "" {
		m.Dir = "sendrecv"
	}
	m.Codecs = readCodecs(mn.Formats, md.Attributes)
	readMediaAttrs(&m, md.Attributes)
	var ice ICE
	readICE(&ice, md.Attributes)
	inheritICE(&ice, &sess.ice)
	if !ice.none() {
		m.ICE = &ice
	}
	m.Hold = m.Dir == "sendonly" || m.Dir == "inactive" || nullHold(&m)
	m.UDPTL = isUDPTL(&m)
	m.Usable = m.Port > 0 && ((m.Type == "audio" || m.Type == "video") && terminable(m.Proto) || m.UDPTL)
	return m
}

// readMediaAttrs reads the attributes that are neither codecs nor ICE.
func readMediaAttrs(m *Media, attrs []sdp.Attribute) {
	for _, a := range attrs {
		switch strings.ToLower(a.Key) {
		case "rtcp":
			m.RTCP = parseRTCPAttr(a.Value, m.Addr)
		case "rtcp-mux":
			m.RTCPMux = true
		case "ptime":
			m.Ptime = leadingInt(a.Value)
		case "maxptime":
			m.MaxPtime = leadingInt(a.Value)
		case "mid":
			m.MID = strings.TrimSpace(a.Value)
		case "crypto":
			m.Crypto = append(m.Crypto, strings.TrimSpace(a.Value))
		case "ssrc":
			m.SSRCs = addSSRC(m.SSRCs, a.Value)
		}
	}
}

// readICE sets the ICE and DTLS values found in attrs.
func readICE(ice *ICE, attrs []sdp.Attribute) {
	for _, a := range attrs {
		v := strings.TrimSpace(a.Value)
		switch strings.ToLower(a.Key) {
		case "ice-ufrag":
			ice.Ufrag = v
		case "ice-pwd":
			ice.Pwd = v
		case "candidate":
			ice.Candidates = append(ice.Candidates, v)
		case "fingerprint":
			ice.Fingerprints = append(ice.Fingerprints, v)
		case "setup":
			ice.Setup = strings.ToLower(v)
		case "ice-lite":
			ice.Lite = true
		}
	}
}

// inheritICE fills the values m lacks from the session level.
func inheritICE(m, sess *ICE) {
	if m.Ufrag == "" {
		m.Ufrag = sess.Ufrag
	}
	if m.Pwd == "" {
		m.Pwd = sess.Pwd
	}
	if len(m.Fingerprints) == 0 {
		m.Fingerprints = sess.Fingerprints
	}
	if m.Setup == "" {
		m.Setup = sess.Setup
	}
	m.Lite = m.Lite || sess.Lite
}

// none reports whether ice holds no attribute at all.
func (ice *ICE) none() bool {
	return ice.Ufrag == "" && ice.Pwd == "" && len(ice.Candidates) == 0 && len(ice.Fingerprints) == 0 &&
		ice.Setup == "" && !ice.Lite
}

// setup is the m-line's a=setup, "" without one.
func (m *Media) setup() string {
	if m.ICE == nil {
		return ""
	}
	return m.ICE.Setup
}

// nullHold reports RFC 2543 hold: c=0.0.0.0 on an m-line without ICE.
// With ICE, 0.0.0.0 (and port 9) only says the address is in the
// candidates, as browsers write when they have only mDNS candidates.
func nullHold(m *Media) bool {
	return m.Addr.IsValid() && m.Addr.IsUnspecified() && (m.ICE == nil || m.ICE.Ufrag == "")
}

// terminable reports whether proto is an RTP profile the SBC terminates.
func terminable(proto string) bool {
	switch proto {
	case "RTP/AVP", "RTP/AVPF", "RTP/SAVP", "RTP/SAVPF", "UDP/TLS/RTP/SAVPF":
		return true
	}
	return false
}

// detectKind picks the kind of the side from its usable m-lines.
func detectKind(media []Media) Kind {
	kind := KindRTP
	for i := range media {
		m := &media[i]
		if !m.Usable {
			continue
		}
		if isDTLS(m) {
			return KindWebRTC
		}
		if isSDES(m) {
			kind = KindSRTP
		}
	}
	return kind
}

// isDTLS: UDP/TLS/RTP/SAVPF, or the legacy RTP/SAVPF with ICE and a
// fingerprint that browsers once sent.
func isDTLS(m *Media) bool {
	if m.Proto == "UDP/TLS/RTP/SAVPF" {
		return true
	}
	return m.Proto == "RTP/SAVPF" && m.ICE != nil && len(m.ICE.Fingerprints) > 0 && m.ICE.Ufrag != ""
}

// isSDES: RTP/SAVP(F) keyed by a=crypto.
func isSDES(m *Media) bool {
	return (m.Proto == "RTP/SAVP" || m.Proto == "RTP/SAVPF") && len(m.Crypto) > 0
}

// direction returns the direction attribute among attrs, or "".
func direction(attrs []sdp.Attribute) string {
	for _, a := range attrs {
		switch k := strings.ToLower(a.Key); k {
		case "sendrecv", "sendonly", "recvonly", "inactive":
			return k
		}
	}
	return ""
}

// bundle returns the mids of the first a=group:BUNDLE.
func bundle(attrs []sdp.Attribute) []string {
	for _, a := range attrs {
		if !strings.EqualFold(a.Key, "group") {
			continue
		}
		f := strings.Fields(a.Value)
		if len(f) > 0 && strings.EqualFold(f[0], "BUNDLE") {
			return f[1:]
		}
	}
	return nil
}

// connAddr is the IP of a c= line; invalid for none, a host name, a
// multicast group or a scoped address. 0.0.0.0 (hold) is returned.
func connAddr(c *sdp.ConnectionInformation) netip.Addr {
	if c == nil || c.Address == nil {
		return netip.Addr{}
	}
	ip, err := netip.ParseAddr(c.Address.Address)
	if err != nil || ip.IsMulticast() || ip.Zone() != "" {
		return netip.Addr{}
	}
	return ip.Unmap()
}

// parseRTCPAttr reads an RFC 3605 a=rtcp value, "port [IN IP4 addr]";
// without an address the RTCP address is ip. Invalid when unusable.
func parseRTCPAttr(v string, ip netip.Addr) netip.AddrPort {
	f := strings.Fields(v)
	if len(f) == 0 {
		return netip.AddrPort{}
	}
	port, err := strconv.ParseUint(f[0], 10, 16)
	if err != nil || port == 0 {
		return netip.AddrPort{}
	}
	if len(f) == 4 {
		a, err := netip.ParseAddr(f[3])
		if err != nil || a.IsMulticast() || a.Zone() != "" {
			return netip.AddrPort{}
		}
		ip = a.Unmap()
	}
	if !ip.IsValid() || ip.IsUnspecified() {
		return netip.AddrPort{}
	}
	return netip.AddrPortFrom(ip, uint16(port))
}

// addSSRC adds the id of an a=ssrc value ("id attr:value") if new.
func addSSRC(ids []uint32, v string) []uint32 {
	f := strings.Fields(v)
	if len(f) == 0 {
		return ids
	}
	n, err := strconv.ParseUint(f[0], 10, 32)
	if err != nil {
		return ids
	}
	for _, id := range ids {
		if id == uint32(n) {
			return ids
		}
	}
	return append(ids, uint32(n))
}

// leadingInt reads the integer at the start of s ("20", "20.0"); 0 if none.
func leadingInt(s string) int {
	s = strings.TrimSpace(s)
	end := 0
	for end < len(s) && end < 6 && s[end] >= '0' && s[end] <= '9' {
		end++
	}
	n, _ := strconv.Atoi(s[:end])
	return n
}
