package echo

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pion/sdp/v3"

	"github.com/sbc-project/sbc/media/rtpproc"
)

func TestSetEvents(t *testing.T) {
	tests := []struct {
		name  string
		attrs []string
		want  map[uint8]uint32 // payload type: clock
	}{
		{"none", []string{"rtpmap:0 PCMU/8000"}, nil},
		{"8k", []string{"rtpmap:0 PCMU/8000", "rtpmap:101 telephone-event/8000"}, map[uint8]uint32{101: 8000}},
		{"browser", []string{"rtpmap:111 opus/48000/2", "rtpmap:110 telephone-event/48000", "rtpmap:126 telephone-event/8000"},
			map[uint8]uint32{110: 48000, 126: 8000}},
		{"case", []string{"rtpmap:96 Telephone-Event/8000"}, map[uint8]uint32{96: 8000}},
		{"no clock", []string{"rtpmap:96 telephone-event"}, map[uint8]uint32{96: 8000}},
		{"bad pt", []string{"rtpmap:300 telephone-event/8000"}, nil},
		{"no space", []string{"rtpmap:101"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := &sdp.MediaDescription{}
			for _, a := range tt.attrs {
				k, v, _ := strings.Cut(a, ":")
				m.Attributes = append(m.Attributes, sdp.Attribute{Key: k, Value: v})
			}
			var s stream
			s.events.Store(&eventClocks{5: 8000})
			s.setEvents(m)
			for pt := range 128 {
				if got, want := s.eventClock(uint8(pt)), tt.want[uint8(pt)]; got != want {
					t.Errorf("payload type %d: clock %d, want %d", pt, got, want)
				}
			}
		})
	}
}

func TestDigitLogForgetsOldest(t *testing.T) {
	l := newDigitLog()
	for i := range KeptDigitCalls + 1 {
		l.add("call-"+strconv.Itoa(i), '1')
	}
	l.add("call-1", '2')
	if got := l.get("call-0"); got != "" {
		t.Errorf("oldest call kept: %q", got)
	}
	if got := l.get("call-1"); got != "12" {
		t.Errorf("call-1: %q, want 12", got)
	}
	if n := l.total.Load(); n != KeptDigitCalls+2 {
		t.Errorf("total %d", n)
	}
}

var reMediaPort = regexp.MustCompile(`(?m)^m=audio (\d+) `)

// TestDigitsRecorded calls the echo over UDP, sends RFC 4733 events on the
// negotiated payload type and SIP INFO digits, and reads them back through
// Digits; the events are still echoed.
func TestDigitsRecorded(t *testing.T) {
	ip := netip.MustParseAddr("127.0.0.1")
	u, err := Start(ip, 0, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	sipc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer sipc.Close()
	rtp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer rtp.Close()
	const callID = "dtmf-test-call"
	offer := fmt.Sprintf("v=0\r\no=t 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"+
		"m=audio %d RTP/AVP 0 96\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:96 telephone-event/8000\r\na=sendrecv\r\n",
		rtp.LocalAddr().(*net.UDPAddr).Port)
	res := request(t, sipc, u.Addr(), "INVITE", callID, 1, "application/sdp", offer)
	m := reMediaPort.FindStringSubmatch(res)
	if !strings.HasPrefix(res, "SIP/2.0 200") || m == nil {
		t.Fatalf("INVITE answered:\n%s", res)
	}
	port, _ := strconv.Atoi(m[1])
	dst := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port}
	buf := make([]byte, 1500)
	for i, d := range []byte("4#") {
		pkts, err := rtpproc.EventPackets(d, 100*time.Millisecond, 96, 0x1234, uint16(10*i), uint32(1000*i), 8000, 10)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range pkts {
			if _, err := rtp.WriteToUDP(p, dst); err != nil {
				t.Fatal(err)
			}
			_ = rtp.SetReadDeadline(time.Now().Add(2 * time.Second))
			if _, _, err := rtp.ReadFromUDP(buf); err != nil {
				t.Fatalf("event packet not echoed: %v", err)
			}
		}
	}
	request(t, sipc, u.Addr(), "INFO", callID, 2, "application/dtmf-relay", "Signal=7\r\nDuration=160\r\n")
	request(t, sipc, u.Addr(), "INFO", callID, 3, "application/dtmf", "9")
	request(t, sipc, u.Addr(), "INFO", callID, 4, "application/media_control+xml", "<x/>")
	request(t, sipc, u.Addr(), "BYE", callID, 5, "", "")
	if got := u.Digits(callID); got != "4#79" {
		t.Errorf("digits %q, want 4#79", got)
	}
	if n := u.DigitsReceived(); n != 4 {
		t.Errorf("%d digits received, want 4", n)
	}
	if got := u.Digits("other"); got != "" {
		t.Errorf("unknown call has digits %q", got)
	}
}

// request sends one SIP request of the call and returns the final response.
func request(t *testing.T, c *net.UDPConn, to netip.AddrPort, method, callID string, cseq int, ctype, body string) string {
	t.Helper()
	local := c.LocalAddr().String()
	msg := fmt.Sprintf("%s sip:echo@%s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bK-%s-%d\r\n"+
		"From: <sip:t@%s>;tag=caller\r\nTo: <sip:echo@%s>\r\nCall-ID: %s\r\nCSeq: %d %s\r\n"+
		"Contact: <sip:t@%s>\r\nMax-Forwards: 70\r\n",
		method, to, local, method, cseq, local, to, callID, cseq, method, local)
	if ctype != "" {
		msg += "Content-Type: " + ctype + "\r\n"
	}
	msg += "Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body
	if _, err := c.WriteToUDPAddrPort([]byte(msg), to); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 65535)
	for {
		_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
		n, _, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			t.Fatalf("%s: no final response: %v", method, err)
		}
		res := string(buf[:n])
		if !strings.HasPrefix(res, "SIP/2.0 1") {
			return res
		}
	}
}
