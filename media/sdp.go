package media

import (
	"errors"
	"net/netip"
	"strings"

	"github.com/pion/sdp/v3"
)

// errMLineCount is wrapped with ErrBadSDP when an answer does not have one
// m-line per m-line of the offer (RFC 3264 section 6).
var errMLineCount = errors.New("answer m-line count differs from the offer")

// rewriteSDP turns sd, as one side sent it, into the SDP the other side
// sees, in place. ports[i] is the SBC's port facing the receiving side
// for m-line i, or 0 to reject the line.
//
// What is kept: media types, codecs (rtpmap, fmtp, rtcp-fb), directions,
// ptime, bandwidth and other media attributes. What goes: every address
// and port of the sending side (o=, c=, a=rtcp), free-text lines that may
// name it (i=, u=, e=, p=), ICE/DTLS/SDES/BUNDLE attributes, which a plain
// RTP side cannot use, rtcp-mux (the SBC relays RTCP on port+1), and any
// attribute whose value contains one of the sender's addresses.
func rewriteSDP(sd *sdp.SessionDescription, ports []int, origin sdp.Origin, pub netip.Addr) {
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
		// The proto stays the RTP/AVP or RTP/AVPF the other side used;
		// RTCP is implicitly on port+1, which is why no a=rtcp is written.
		md.MediaName.Port = sdp.RangedPort{Value: ports[i]}
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
