package echo

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/pion/sdp/v3"
)

// answer builds the echo's SDP for an offer (or its own offer when the
// INVITE had none): every audio and video stream is accepted with the
// offered codecs and an echo socket of its own; anything else is refused
// with port 0. u.mu is held.
func (u *UA) answer(c *call, offer string) (string, error) {
	c.version++
	if strings.TrimSpace(offer) == "" {
		s, err := u.sock(c, 0)
		if err != nil {
			return "", err
		}
		var ev eventClocks
		ev[101] = 8000
		s.events.Store(&ev)
		return u.header(c) + fmt.Sprintf("m=audio %d RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n"+
			"a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=sendrecv\r\n", s.conn.LocalAddr().(*net.UDPAddr).Port), nil
	}
	var sd sdp.SessionDescription
	if err := sd.UnmarshalString(offer); err != nil {
		return "", fmt.Errorf("echo: parse offer: %w", err)
	}
	var b strings.Builder
	b.WriteString(u.header(c))
	usable := 0
	for i, m := range sd.MediaDescriptions {
		name := m.MediaName
		if (name.Media != "audio" && name.Media != "video") || name.Port.Value == 0 || len(name.Formats) == 0 {
			fmt.Fprintf(&b, "m=%s 0 %s %s\r\n", name.Media, strings.Join(name.Protos, "/"), strings.Join(name.Formats, " "))
			continue
		}
		s, err := u.sock(c, i)
		if err != nil {
			return "", err
		}
		usable++
		s.setEvents(m)
		fmt.Fprintf(&b, "m=%s %d %s %s\r\n", name.Media, s.conn.LocalAddr().(*net.UDPAddr).Port,
			strings.Join(name.Protos, "/"), strings.Join(name.Formats, " "))
		dir := "sendrecv"
		for _, a := range m.Attributes {
			switch a.Key {
			case "rtpmap", "fmtp", "ptime", "maxptime":
				fmt.Fprintf(&b, "a=%s:%s\r\n", a.Key, a.Value)
			case "sendonly":
				dir = "recvonly"
			case "recvonly":
				dir = "sendonly"
			case "inactive":
				dir = "inactive"
			}
		}
		b.WriteString("a=" + dir + "\r\n")
	}
	if usable == 0 {
		return "", errors.New("echo: no audio or video stream offered")
	}
	return b.String(), nil
}

func (u *UA) header(c *call) string {
	ip := u.ip.String()
	family := "IP4"
	if u.ip.Is6() {
		family = "IP6"
	}
	return "v=0\r\no=echo 1 " + strconv.Itoa(c.version) + " IN " + family + " " + ip + "\r\ns=echo\r\nc=IN " + family + " " + ip + "\r\nt=0 0\r\n"
}

// sock returns the echo stream i, opening its socket on first use.
func (u *UA) sock(c *call, i int) (*stream, error) {
	for len(c.streams) <= i {
		c.streams = append(c.streams, nil)
	}
	if c.streams[i] != nil {
		return c.streams[i], nil
	}
	conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(u.ip, 0)))
	if err != nil {
		return nil, fmt.Errorf("echo: rtp socket: %w", err)
	}
	s := &stream{conn: conn}
	c.streams[i] = s
	u.wg.Add(1)
	go u.echoRTP(c.id, s)
	return s, nil
}
