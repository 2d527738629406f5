package sdpconv

import (
	"bytes"
	"strings"

	"github.com/pion/sdp/v3"
)

// T.38 fax (ITU-T T.38 annex D, RFC 3362) travels in an m-line that
// pion/sdp refuses: "m=image 40000 udptl t38", whose media type and
// protocol are not in its lists. Unmarshal reads such a line as an
// application/UDP one and puts the media type and protocol back after
// the parse, so the rest of the line (port, format, the T38Fax*
// attributes) is pion's ordinary parse. Marshal writes any type and
// protocol, so a description read here renders as it was received.

// placeholderMedia and placeholderProto stand in, for pion's parse, for
// an image m-line's type and protocol.
const (
	placeholderMedia = "application"
	placeholderProto = "UDP"
)

// Unmarshal parses body as pion/sdp does, but also accepts image m-lines
// (T.38 over UDPTL or TCP): their MediaName keeps the type and protocol
// as written. A body without "m=image" is pion's parse unchanged.
func Unmarshal(body []byte) (*sdp.SessionDescription, error) {
	sd := new(sdp.SessionDescription)
	if !bytes.Contains(body, []byte("m=image ")) {
		return sd, sd.Unmarshal(body)
	}
	masked, restore := maskImage(body)
	if err := sd.Unmarshal(masked); err != nil {
		return nil, err
	}
	for i, protos := range restore {
		if protos != nil && i < len(sd.MediaDescriptions) {
			mn := &sd.MediaDescriptions[i].MediaName
			mn.Media, mn.Protos = "image", protos
		}
	}
	return sd, nil
}

// maskImage rewrites every "m=image <port> <proto> <fmt>..." line of body
// into the placeholder type and protocol. restore has one entry per
// m-line: the protocol parts of an image line, nil for the others.
func maskImage(body []byte) (masked []byte, restore [][]string) {
	lines := strings.SplitAfter(string(body), "\n")
	for i, l := range lines {
		if !strings.HasPrefix(l, "m=") {
			continue
		}
		f := strings.Fields(l[2:])
		if len(f) < 3 || f[0] != "image" {
			restore = append(restore, nil)
			continue
		}
		restore = append(restore, strings.Split(f[2], "/"))
		end := l[len(strings.TrimRight(l, "\r\n")):]
		f[0], f[2] = placeholderMedia, placeholderProto
		lines[i] = "m=" + strings.Join(f, " ") + end
	}
	return []byte(strings.Join(lines, "")), restore
}

// isUDPTL reports a T.38 stream the SBC relays: image over udptl (any
// case) carrying t38. T.38 over TCP (tcptl) is not relayed.
func isUDPTL(m *Media) bool {
	if m.Type != "image" || !strings.EqualFold(m.Proto, "udptl") {
		return false
	}
	for _, f := range m.Formats {
		if strings.EqualFold(f, "t38") {
			return true
		}
	}
	return false
}

// HasUDPTL reports whether d has an enabled T.38 (UDPTL) m-line.
func (d *Description) HasUDPTL() bool {
	for i := range d.Media {
		if d.Media[i].UDPTL && d.Media[i].Port > 0 {
			return true
		}
	}
	return false
}
