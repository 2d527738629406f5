package baresip

import (
	"crypto/md5"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"math"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ghettovoice/gosip/sip"
	"github.com/gorilla/websocket"
	"github.com/pion/ice/v4"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"

	"github.com/sbc-project/sbc/b2bua/sipmsg"
)

// browserIP is where the browser's WebSocket comes from.
const browserIP = "127.0.1.40"

// browser is a WebRTC phone as a web page is one: SIP over a secure
// WebSocket, a pion PeerConnection with one PCMU audio track (ICE, DTLS-
// SRTP, rtcp-mux) playing toneWeb, and what it hears decoded.
type browser struct {
	t    *testing.T
	ws   *websocket.Conn
	host string // the .invalid host in its Via and Contact
	wmu  sync.Mutex
	res  chan sip.Response
	reqs chan sip.Request // INVITE, ACK and BYE from the SBC
	pc   *webrtc.PeerConnection
	out  *webrtc.TrackLocalStaticSample

	mu    sync.Mutex
	heard []int16
	done  chan struct{}
	wg    sync.WaitGroup
}

// newBrowser connects a browser that trusts ca to the SBC's WSS
// listener.
func newBrowser(t *testing.T, sbc *sbcUnderTest, ca *testCA) *browser {
	t.Helper()
	roots := x509.NewCertPool()
	roots.AddCert(ca.cert)
	d := websocket.Dialer{Subprotocols: []string{"sip"}, HandshakeTimeout: 5 * time.Second,
		TLSClientConfig: &tls.Config{RootCAs: roots},
		NetDial: func(network, addr string) (net.Conn, error) {
			return (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(browserIP)}}).Dial(network, addr)
		}}
	ws, resp, err := d.Dial("wss://"+sbc.wss.String()+"/", http.Header{})
	if err != nil {
		t.Fatalf("browser: websocket: %v (%v)", err, resp)
	}
	b := &browser{t: t, ws: ws, host: sipmsg.NewToken(8) + ".invalid", res: make(chan sip.Response, 32),
		reqs: make(chan sip.Request, 32), done: make(chan struct{})}
	b.pc = b.peerConnection()
	b.wg.Go(b.readSIP)
	b.wg.Go(b.play)
	t.Cleanup(b.close)
	return b
}

// peerConnection is a browser's: PCMU, host candidates over UDP4 on
// loopback, no mDNS.
func (b *browser) peerConnection() *webrtc.PeerConnection {
	me := &webrtc.MediaEngine{}
	if err := me.RegisterCodec(webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{
		MimeType: webrtc.MimeTypePCMU, ClockRate: 8000, Channels: 1}, PayloadType: 0}, webrtc.RTPCodecTypeAudio); err != nil {
		b.t.Fatal(err)
	}
	se := webrtc.SettingEngine{}
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	se.SetIncludeLoopbackCandidate(true)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	pc, err := webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithSettingEngine(se)).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		b.t.Fatal(err)
	}
	b.out, err = webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypePCMU, ClockRate: 8000},
		"audio", "browser")
	if err != nil {
		b.t.Fatal(err)
	}
	if _, err := pc.AddTrack(b.out); err != nil {
		b.t.Fatal(err)
	}
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		b.wg.Go(func() { b.listen(tr) })
	})
	return pc
}

// play sends toneWeb, 20 ms a packet, until close.
func (b *browser) play() {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for n := 0; ; n++ {
		select {
		case <-b.done:
			return
		case <-tick.C:
		}
		frame := make([]byte, block)
		for i := range frame {
			frame[i] = linearToULaw(int16(8000 * math.Sin(2*math.Pi*toneWeb*float64(n*block+i)/rate)))
		}
		_ = b.out.WriteSample(media.Sample{Data: frame, Duration: 20 * time.Millisecond})
	}
}

// listen decodes what the browser receives.
func (b *browser) listen(tr *webrtc.TrackRemote) {
	for {
		p, _, err := tr.ReadRTP()
		if err != nil {
			return
		}
		if p.PayloadType != 0 {
			continue
		}
		b.mu.Lock()
		for _, c := range p.Payload {
			b.heard = append(b.heard, uLawToLinear(c))
		}
		b.mu.Unlock()
	}
}

// heardBlocks counts the blocks of freq the browser heard so far.
func (b *browser) heardBlocks(freq float64) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return toneBlocks(b.heard, freq)
}

func (b *browser) close() {
	select {
	case <-b.done:
		return
	default:
	}
	close(b.done)
	_ = b.pc.Close()
	b.ws.Close()
	b.wg.Wait()
}

// readSIP sorts what the SBC sends: responses, the requests a test
// handles, and anything else answered 200.
func (b *browser) readSIP() {
	parser := sipmsg.NewParser(sipmsg.Limits{})
	for {
		_, data, err := b.ws.ReadMessage()
		if err != nil {
			return
		}
		m, err := parser.Parse(data)
		if err != nil {
			b.t.Errorf("browser: bad message from the SBC: %v\n%s", err, data)
			continue
		}
		switch m := m.(type) {
		case sip.Response:
			b.res <- m
		case sip.Request:
			switch m.Method() {
			case sip.INVITE, sip.ACK, sip.BYE:
				b.reqs <- m
			default:
				b.write(b.response(m, 200, ""))
			}
		}
	}
}

func (b *browser) write(msg string) {
	b.wmu.Lock()
	defer b.wmu.Unlock()
	if err := b.ws.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
		b.t.Errorf("browser: send: %v", err)
	}
}

// response answers req; a 2xx to an INVITE carries the Contact and sdp.
func (b *browser) response(req sip.Request, code int, sdp string) string {
	var s strings.Builder
	fmt.Fprintf(&s, "SIP/2.0 %d %s\r\n", code, map[int]string{200: "OK"}[code])
	for _, h := range req.GetHeaders("Via") {
		s.WriteString(h.String() + "\r\n")
	}
	from, _ := req.From()
	to, _ := req.To()
	toStr := to.String()
	if sipmsg.ToTag(req) == "" {
		toStr += ";tag=browser"
	}
	cseq, _ := req.CSeq()
	fmt.Fprintf(&s, "%s\r\n%s\r\nCall-ID: %s\r\n%s\r\n", from, toStr, sipmsg.CallID(req), cseq)
	if req.Method() == sip.INVITE {
		fmt.Fprintf(&s, "Contact: <sip:web@%s;transport=ws>\r\n", b.host)
	}
	return s.String() + body(sdp)
}

// request is a request of the browser's with the given dialog fields.
func (b *browser) request(method, ruri, callID, fromTag, to string, seq int, extra, sdp string) string {
	return fmt.Sprintf("%s %s SIP/2.0\r\nVia: SIP/2.0/WSS %s;branch=z9hG4bK%s;rport\r\nMax-Forwards: 70\r\n"+
		"From: <sip:web@example.com>;tag=%s\r\nTo: %s\r\nCall-ID: %s\r\nCSeq: %d %s\r\n"+
		"Contact: <sip:web@%s;transport=ws>\r\n%s%s",
		method, ruri, b.host, sipmsg.NewToken(6), fromTag, to, callID, seq, method, b.host, extra, body(sdp))
}

func body(sdp string) string {
	if sdp == "" {
		return "Content-Length: 0\r\n\r\n"
	}
	return fmt.Sprintf("Content-Type: application/sdp\r\nContent-Length: %d\r\n\r\n%s", len(sdp), sdp)
}

// final waits for the final response to the request with Call-ID and
// CSeq seq.
func (b *browser) final(callID string, seq uint32) sip.Response {
	b.t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case res := <-b.res:
			if n, _ := sipmsg.CSeq(res); sipmsg.CallID(res) == callID && n == seq && res.StatusCode() >= 200 {
				return res
			}
		case <-deadline:
			b.t.Fatalf("browser: no final response to CSeq %d of %s", seq, callID)
		}
	}
}

// next waits for the SBC's next request of method.
func (b *browser) next(method sip.RequestMethod) sip.Request {
	b.t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case req := <-b.reqs:
			if req.Method() == method {
				return req
			}
		case <-deadline:
			b.t.Fatalf("browser: no %s from the SBC", method)
		}
	}
}

var reParam = regexp.MustCompile(`(\w+)="?([^",]*)"?`)

// register registers web with password (digest MD5) at the SBC.
func (b *browser) register(password string) {
	b.t.Helper()
	const user = "web"
	callID, tag := sipmsg.NewToken(8), sipmsg.NewToken(4)
	to := "<sip:" + user + "@example.com>"
	b.write(b.request("REGISTER", "sip:example.com", callID, tag, to, 1, "Expires: 600\r\n", ""))
	res := b.final(callID, 1)
	if res.StatusCode() != 401 {
		b.t.Fatalf("browser: REGISTER answered %d, want a 401 challenge", res.StatusCode())
	}
	var chal map[string]string
	for _, h := range res.GetHeaders("WWW-Authenticate") {
		if strings.Contains(strings.ToUpper(h.Value()), "ALGORITHM=MD5") {
			chal = map[string]string{}
			for _, m := range reParam.FindAllStringSubmatch(h.Value(), -1) {
				chal[strings.ToLower(m[1])] = m[2]
			}
		}
	}
	if chal == nil {
		b.t.Fatalf("browser: no MD5 challenge in %v", res.GetHeaders("WWW-Authenticate"))
	}
	h := func(s string) string { sum := md5.Sum([]byte(s)); return hex.EncodeToString(sum[:]) }
	cnonce := sipmsg.NewToken(8)
	resp := h(h(user+":"+chal["realm"]+":"+password) + ":" + chal["nonce"] + ":00000001:" + cnonce + ":auth:" +
		h("REGISTER:sip:example.com"))
	auth := fmt.Sprintf("Authorization: Digest username=\"%s\", realm=\"%s\", nonce=\"%s\", uri=\"sip:example.com\", "+
		"response=\"%s\", algorithm=MD5, cnonce=\"%s\", qop=auth, nc=00000001", user, chal["realm"], chal["nonce"], resp, cnonce)
	if o := chal["opaque"]; o != "" {
		auth += ", opaque=\"" + o + "\""
	}
	b.write(b.request("REGISTER", "sip:example.com", callID, tag, to, 2, "Expires: 600\r\n"+auth+"\r\n", ""))
	if res := b.final(callID, 2); res.StatusCode() != 200 {
		b.t.Fatalf("browser: REGISTER with credentials answered %d", res.StatusCode())
	}
}

// localSDP applies d and returns the local description with every
// candidate (no trickle ICE over SIP).
func (b *browser) localSDP(d webrtc.SessionDescription) string {
	b.t.Helper()
	gathered := webrtc.GatheringCompletePromise(b.pc)
	if err := b.pc.SetLocalDescription(d); err != nil {
		b.t.Fatalf("browser: local description: %v", err)
	}
	select {
	case <-gathered:
	case <-time.After(10 * time.Second):
		b.t.Fatal("browser: ICE gathering did not complete")
	}
	return b.pc.LocalDescription().SDP
}

// linearToULaw is G.711 µ-law encoding.
func linearToULaw(s int16) byte {
	const bias, clip = 0x84, 32635
	v := int(s)
	sign := 0
	if v < 0 {
		v, sign = -v, 0x80
	}
	v = min(v, clip) + bias
	exp := 7
	for mask := 0x4000; v&mask == 0 && exp > 0; mask >>= 1 {
		exp--
	}
	return ^byte(sign | exp<<4 | (v>>(exp+3))&0x0f)
}

// uLawToLinear is G.711 µ-law decoding.
func uLawToLinear(c byte) int16 {
	c = ^c
	v := (int(c&0x0f)<<3 + 0x84) << (int(c&0x70) >> 4)
	if c&0x80 != 0 {
		return int16(0x84 - v)
	}
	return int16(v - 0x84)
}
