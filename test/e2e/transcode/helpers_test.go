// Package transcode tests calls whose two sides share no codec once the
// trunk's codecs and the route's webrtc_codecs apply: the SBC transcodes
// both directions (a tone keeps its frequency and energy), converts RFC
// 4733 digits to the other side's payload type and clock, counts the
// calls in metrics and CDRs, and caps them with
// media.transcoding.max_calls.
package transcode

import (
	"encoding/binary"
	"fmt"
	"math"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/sbc-project/sbc/b2bua/sipmsg"
	"github.com/sbc-project/sbc/media/codec"
	"github.com/sbc-project/sbc/test/e2e"
)

// sdpFor is an offer or answer from ip:port with the codecs given as
// "pt name/rate".
func sdpFor(ip string, port int, codecs ...string) string {
	var pts, attrs []string
	for _, c := range codecs {
		pt, rtpmap, _ := strings.Cut(c, " ")
		pts = append(pts, pt)
		attrs = append(attrs, "a=rtpmap:"+pt+" "+rtpmap)
	}
	return fmt.Sprintf("v=0\no=peer 1 1 IN IP4 %s\ns=-\nc=IN IP4 %[1]s\nt=0 0\nm=audio %d RTP/AVP %s\n%s\na=ptime:20\na=sendrecv\n",
		ip, port, strings.Join(pts, " "), strings.Join(attrs, "\n"))
}

// invite sends an INVITE for user with body as its offer.
func invite(u *e2e.UA, user, body string) *e2e.UACall {
	// Send writes every line with CRLF, the body's too.
	size := len(strings.ReplaceAll(body, "\n", "\r\n"))
	c := &e2e.UACall{U: u, CallID: sipmsg.NewToken(8) + "@caller.example", FromTag: sipmsg.NewToken(4),
		Branch: "z9hG4bK" + sipmsg.NewToken(6), To: "sip:" + user + "@" + u.SBC, Seq: 1}
	u.Send(fmt.Sprintf("INVITE %s SIP/2.0\nVia: SIP/2.0/%s %s;branch=%s;rport\nMax-Forwards: 70\n"+
		"From: \"Alice\" <sip:alice@caller.example>;tag=%s\nTo: <%s>\nCall-ID: %s\nCSeq: 1 INVITE\n"+
		"Contact: <sip:alice@%s;transport=%s>\nContent-Type: application/sdp\nContent-Length: %d\n\n",
		c.To, u.Kind, u.Host, c.Branch, c.FromTag, c.To, c.CallID, u.Host, strings.ToLower(u.Kind), size) + body)
	return c
}

// rtpmaps are the a=rtpmap values of body, in order.
func rtpmaps(body string) []string {
	var out []string
	for _, l := range strings.Split(strings.ReplaceAll(body, "\r\n", "\n"), "\n") {
		if v, ok := strings.CutPrefix(l, "a=rtpmap:"); ok {
			out = append(out, v)
		}
	}
	return out
}

// mediaPort is the port of body's first m-line.
func mediaPort(t *testing.T, body string) int {
	t.Helper()
	info, err := e2e.ParseSDPInfo(body)
	if err != nil {
		t.Fatalf("sdp %q: %v", body, err)
	}
	return info.Addr.Port
}

// udpOn is a UDP socket on ip.
func udpOn(t *testing.T, ip string) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(ip)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func portOf(c *net.UDPConn) int { return c.LocalAddr().(*net.UDPAddr).Port }

// sine is n samples of a tone of freq Hz at rate, from sample start.
func sine(freq float64, rate, start, n int) []int16 {
	pcm := make([]int16, n)
	for i := range pcm {
		pcm[i] = int16(8000 * math.Sin(2*math.Pi*freq*float64(start+i)/float64(rate)))
	}
	return pcm
}

// analyze returns the frequency of pcm (from its zero crossings) and its
// RMS level.
func analyze(pcm []int16, rate int) (freq, rms float64) {
	crossings := 0
	var sum float64
	for i, s := range pcm {
		sum += float64(s) * float64(s)
		if i > 0 && (pcm[i-1] < 0) != (s < 0) {
			crossings++
		}
	}
	if len(pcm) == 0 {
		return 0, 0
	}
	return float64(crossings) / 2 / (float64(len(pcm)) / float64(rate)), math.Sqrt(sum / float64(len(pcm)))
}

// streamTone sends 20 ms packets of a 1 kHz tone in name (payload type
// pt; PCMU, PCMA or G722, all with an 8000 RTP clock, G.722's audio at
// 16 kHz) from c to dst every 20 ms until stop is closed.
func streamTone(t *testing.T, c *net.UDPConn, dst *net.UDPAddr, name string, pt uint8, stop <-chan struct{}) {
	enc, err := codec.NewEncoder(codec.Format{Name: name, ClockRate: 8000})
	if err != nil {
		t.Error(err)
		return
	}
	rate := enc.SampleRate()
	n := rate / 50 // samples per 20 ms
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for i := 0; ; i++ {
		pkt := make([]byte, 12, 12+n)
		pkt[0], pkt[1] = 0x80, pt
		binary.BigEndian.PutUint16(pkt[2:], uint16(i))
		binary.BigEndian.PutUint32(pkt[4:], uint32(i*160))
		binary.BigEndian.PutUint32(pkt[8:], 0x5ca1ab1e)
		pkt, _ = enc.Encode(pkt, sine(1000, rate, i*n, n))
		c.WriteToUDP(pkt, dst)
		select {
		case <-stop:
			return
		case <-tick.C:
		}
	}
}

// receiveTone reads RTP on c until it holds n packets of payload type pt,
// decodes them as name and returns the samples.
func receiveTone(t *testing.T, c *net.UDPConn, name string, pt uint8, n int) []int16 {
	t.Helper()
	dec, err := codec.NewDecoder(codec.Format{Name: name, ClockRate: 8000})
	if err != nil {
		t.Fatal(err)
	}
	var pcm []int16
	buf := make([]byte, 2048)
	deadline := time.Now().Add(10 * time.Second)
	for got := 0; got < n; {
		c.SetReadDeadline(deadline)
		k, _, err := c.ReadFromUDP(buf)
		if err != nil {
			t.Fatalf("%d of %d %s packets received: %v", got, n, name, err)
		}
		if k < 12 || buf[1]&0x7f != pt {
			continue
		}
		if pcm, err = dec.Decode(pcm, buf[12:k]); err != nil {
			t.Fatal(err)
		}
		got++
	}
	return pcm
}

// checkTone fails unless pcm is a ~1 kHz tone with energy.
func checkTone(t *testing.T, what string, pcm []int16, rate int) {
	t.Helper()
	freq, rms := analyze(pcm, rate)
	if math.Abs(freq-1000) > 50 || rms < 2000 {
		t.Errorf("%s: %.0f Hz at RMS %.0f, want ~1000 Hz with energy (RMS ≥ 2000)", what, freq, rms)
	} else {
		t.Logf("%s: %.0f Hz at RMS %.0f", what, freq, rms)
	}
}
