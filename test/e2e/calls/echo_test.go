package calls

import (
	"bytes"
	"github.com/sbc-project/sbc/test/e2e"
	"net"
	"regexp"
	"strconv"
	"testing"
	"time"
)

var reAudio = regexp.MustCompile(`(?m)^m=audio (\d+) `)
var reConn = regexp.MustCompile(`(?m)^c=IN IP4 (\S+)`)

// TestEchoDestination calls sip:echo through the SBC on the default route
// and checks that RTP sent to the address in the answer comes back, relayed
// through the SBC both ways.
func TestEchoDestination(t *testing.T) {
	sbc := e2e.StartSBC(t, e2e.SBCOptions{})
	rtp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(e2e.CallerIP()), Port: 49170})
	if err != nil {
		t.Skipf("caller media port busy: %v", err)
	}
	defer rtp.Close()
	ua := e2e.DialUA(t, "UDP", sbc.UDP.String())
	call := ua.Invite("echo", "")
	res := ua.Expect(200)
	call.Answered(res)
	call.Ack()
	m := reAudio.FindStringSubmatch(res.Body())
	c := reConn.FindStringSubmatch(res.Body())
	if m == nil || c == nil {
		t.Fatalf("answer without audio or connection:\n%s", res.Body())
	}
	port, _ := strconv.Atoi(m[1])
	dst := &net.UDPAddr{IP: net.ParseIP(c[1]), Port: port}
	pkt := make([]byte, 172)
	pkt[0] = 0x80
	copy(pkt[12:], "echo-through-the-sbc")
	got := make([]byte, 1500)
	for i := 0; i < 5; i++ {
		pkt[3] = byte(i)
		if _, err := rtp.WriteToUDP(pkt, dst); err != nil {
			t.Fatal(err)
		}
		_ = rtp.SetReadDeadline(time.Now().Add(2 * time.Second))
		n, from, err := rtp.ReadFromUDP(got)
		if err != nil {
			t.Fatalf("packet %d not echoed: %v", i, err)
		}
		// The SBC keeps the stream continuous under its own SSRC; the
		// payload type and payload come back as sent.
		if n != len(pkt) || got[1]&0x7f != pkt[1]&0x7f || !bytes.Equal(got[12:n], pkt[12:]) {
			t.Fatalf("packet %d changed on the way", i)
		}
		if from.Port != port {
			t.Fatalf("echo came from %v, want the SBC's port %d", from, port)
		}
	}
	call.Bye()
	ua.Expect(200)
	sbc.WaitIdle(t)
}
