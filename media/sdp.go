package media

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/pion/sdp/v3"
)

// errMLineCount is wrapped with ErrBadSDP when an answer does not have one
// m-line per m-line of the offer (RFC 3264 section 6).
var errMLineCount = errors.New("answer m-line count differs from the offer")

// mline is what a session needs from one m-line of an SDP a side sent.
type mline struct {
	// usable: audio or video over RTP/AVP or RTP/AVPF with a non-zero
	// port. Anything else is rejected (port 0) toward the other side.
	usable bool
	remote remote
	// hold: the side is holding this stream (sendonly, inactive or
	// c=0.0.0.0), which suspends the no-RTP timeout.
	hold bool
}

// readSDP parses body and reads each m-line. Every error wraps ErrBadSDP:
// an unparsable body, or one without a single usable m-line.
func readSDP(body []byte) (*sdp.SessionDescription, []mline, error) {
	sd := new(sdp.SessionDescription)
	if err := sd.Unmarshal(body); err != nil {
		return nil, nil, fmt.Errorf("parse sdp: %w: %w", ErrBadSDP, err)
	}
	lines := make([]mline, len(sd.MediaDescriptions))
	usable := 0
	for i, md := range sd.MediaDescriptions {
		lines[i] = readMLine(sd, md)
		if lines[i].usable {
			usable++
		}
	}
	if usable == 0 {
		return nil, nil, fmt.Errorf("read sdp: %w: no usable RTP/AVP m-line among %d", ErrBadSDP, len(lines))
	}
	return sd, lines, nil
}

func readMLine(sd *sdp.SessionDescription, md *sdp.MediaDescription) mline {
	port := md.MediaName.Port.Value
	l := mline{usable: port > 0 && isPlainRTP(md.MediaName)}
	conn := md.ConnectionInformation
	if conn == nil {
		conn = sd.ConnectionInformation
	}
	ip, known := connAddr(conn)
	l.remote.hold = known && ip.IsUnspecified()
	if known && !ip.IsUnspecified() && port > 0 && port < 65535 {
		l.remote.rtp = netip.AddrPortFrom(ip, uint16(port))
		l.remote.rtcp = netip.AddrPortFrom(ip, uint16(port+1))
	}
	if v, ok := md.Attribute("rtcp"); ok && l.remote.rtp.IsValid() {
		if rtcp, ok := parseRTCPAttr(v, ip); ok {
			l.remote.rtcp = rtcp
		}
	}
	dir := direction(sd, md)
	l.hold = l.remote.hold || dir == "sendonly" || dir == "inactive"
	return l
}

// isPlainRTP reports whether the m-line is audio or video over RTP/AVP or
// RTP/AVPF, the only streams the plain relay carries.
func isPlainRTP(mn sdp.MediaName) bool {
	if mn.Media != "audio" && mn.Media != "video" {
		return false
	}
	proto := strings.Join(mn.Protos, "/")
	return proto == "RTP/AVP" || proto == "RTP/AVPF"
}

// connAddr returns the IP of a c= line. known is false when there is no
// usable unicast IP: no c= line, a host name (not resolved on the call
// path) or a multicast group. The unspecified address (old-style hold) is
// known.
func connAddr(c *sdp.ConnectionInformation) (ip netip.Addr, known bool) {
	if c == nil || c.Address == nil {
		return netip.Addr{}, false
	}
	ip, err := netip.ParseAddr(c.Address.Address)
	if err != nil || ip.IsMulticast() || ip.Zone() != "" {
		return netip.Addr{}, false
	}
	return ip.Unmap(), true
}

// parseRTCPAttr reads an RFC 3605 a=rtcp value: "port [IN IP4 addr]".
// Without an address the RTCP address is ip.
func parseRTCPAttr(v string, ip netip.Addr) (netip.AddrPort, bool) {
	f := strings.Fields(v)
	if len(f) == 0 {
		return netip.AddrPort{}, false
	}
	port, err := strconv.ParseUint(f[0], 10, 16)
	if err != nil || port == 0 {
		return netip.AddrPort{}, false
	}
	if len(f) == 4 {
		a, err := netip.ParseAddr(f[3])
		if err != nil || a.IsUnspecified() || a.IsMulticast() {
			return netip.AddrPort{}, false
		}
		ip = a.Unmap()
	}
	return netip.AddrPortFrom(ip, uint16(port)), true
}

// direction returns the m-line's direction attribute, else the session's,
// else sendrecv (RFC 3264 section 5.1).
func direction(sd *sdp.SessionDescription, md *sdp.MediaDescription) string {
	for _, attrs := range [][]sdp.Attribute{md.Attributes, sd.Attributes} {
		for _, a := range attrs {
			switch a.Key {
			case "sendrecv", "sendonly", "recvonly", "inactive":
				return a.Key
			}
		}
	}
	return "sendrecv"
}

// rewriteSDP turns sd, as one side sent it, into the SDP the other side
// sees, in place. ends[i] is the SBC endpoint facing the receiving side
// for m-line i, or nil to reject the line (port 0).
//
// What is kept: media types, codecs (rtpmap, fmtp, rtcp-fb), directions,
// ptime, bandwidth and other media attributes. What goes: every address
// and port of the sending side (o=, c=, a=rtcp), free-text lines that may
// name it (i=, u=, e=, p=), ICE/DTLS/SDES/BUNDLE attributes, which a plain
// RTP side cannot use, rtcp-mux (the SBC relays RTCP on port+1), and any
// attribute whose value contains one of the sender's addresses.
func rewriteSDP(sd *sdp.SessionDescription, ends []endpoint, origin sdp.Origin, pub netip.Addr) {
	hidden := senderAddrs(sd)
	sd.Origin = origin
	sd.SessionName = "sbc"
	sd.SessionInformation = nil
	sd.URI = nil
	sd.EmailAddress = nil
	sd.PhoneNumber = nil
	sd.EncryptionKey = nil
	sd.TimeZones = nil
	sd.ConnectionInformation = connInfo(pub)
	sd.Attributes = keepAttrs(sd.Attributes, hidden)
	for i, md := range sd.MediaDescriptions {
		md.MediaTitle = nil
		md.ConnectionInformation = nil
		md.EncryptionKey = nil
		md.Attributes = keepAttrs(md.Attributes, hidden)
		if ends[i] == nil {
			md.MediaName.Port = sdp.RangedPort{Value: 0}
			continue
		}
		ends[i].describe(md)
	}
}

// connInfo is the c= line naming ip.
func connInfo(ip netip.Addr) *sdp.ConnectionInformation {
	return &sdp.ConnectionInformation{
		NetworkType: "IN",
		AddressType: addrType(ip),
		Address:     &sdp.Address{Address: ip.String()},
	}
}

func addrType(ip netip.Addr) string {
	if ip.Is4() {
		return "IP4"
	}
	return "IP6"
}

// senderAddrs lists the addresses the sender's SDP names (o=, c=, a=rtcp),
// as written, so attributes repeating them can be dropped.
func senderAddrs(sd *sdp.SessionDescription) []string {
	var out []string
	add := func(a string) {
		if ip, err := netip.ParseAddr(a); err == nil && ip.IsUnspecified() {
			return
		}
		if a != "" && a != "-" {
			out = append(out, a)
		}
	}
	add(sd.Origin.UnicastAddress)
	if c := sd.ConnectionInformation; c != nil && c.Address != nil {
		add(c.Address.Address)
	}
	for _, md := range sd.MediaDescriptions {
		if c := md.ConnectionInformation; c != nil && c.Address != nil {
			add(c.Address.Address)
		}
		if v, ok := md.Attribute("rtcp"); ok {
			if f := strings.Fields(v); len(f) == 4 {
				add(f[3])
			}
		}
	}
	return out
}

// transportAttrs names attributes never passed to a plain RTP side: ICE,
// DTLS, SDES, the far side's RTCP address, rtcp-mux and SCTP.
var transportAttrs = map[string]bool{
	"candidate": true, "end-of-candidates": true, "remote-candidates": true,
	"fingerprint": true, "setup": true, "connection": true, "tls-id": true,
	"identity": true, "crypto": true,
	"rtcp": true, "rtcp-mux": true, "rtcp-mux-only": true,
	"sctp-port": true, "sctpmap": true, "max-message-size": true,
}

// keepAttrs returns the attributes that may cross to the other side.
func keepAttrs(attrs []sdp.Attribute, hidden []string) []sdp.Attribute {
	out := attrs[:0]
	for _, a := range attrs {
		if keepAttr(a, hidden) {
			out = append(out, a)
		}
	}
	return out
}

func keepAttr(a sdp.Attribute, hidden []string) bool {
	key := strings.ToLower(a.Key)
	if transportAttrs[key] || strings.HasPrefix(key, "ice-") {
		return false
	}
	// BUNDLE puts every m-line on one port; the SBC gives each its own.
	if key == "group" && strings.HasPrefix(strings.ToUpper(a.Value), "BUNDLE") {
		return false
	}
	for _, h := range hidden {
		if strings.Contains(a.Value, h) || strings.Contains(a.Key, h) {
			return false
		}
	}
	return true
}
