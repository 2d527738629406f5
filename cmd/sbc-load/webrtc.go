package main

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/logging"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// newBrowserAPI is the pion API every simulated browser shares: PCMU and
// Opus as a browser offers them, host candidates over UDP4 on loopback
// without mDNS, and no interceptors (no NACK, reports or TWCC: the tool
// measures the SBC's relay, not congestion control, and the peers must be
// cheap to run by the hundred).
func newBrowserAPI() (*webrtc.API, error) {
	me := &webrtc.MediaEngine{}
	for _, c := range []webrtc.RTPCodecParameters{
		{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2,
			SDPFmtpLine: "minptime=10;useinbandfec=1"}, PayloadType: 111},
		{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypePCMU, ClockRate: 8000, Channels: 1}, PayloadType: 0},
	} {
		if err := me.RegisterCodec(c, webrtc.RTPCodecTypeAudio); err != nil {
			return nil, fmt.Errorf("register codec: %w", err)
		}
	}
	se := webrtc.SettingEngine{}
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	se.SetIncludeLoopbackCandidate(true)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	lf := logging.NewDefaultLoggerFactory()
	lf.DefaultLogLevel = logging.LogLevelError
	se.LoggerFactory = lf
	return webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithSettingEngine(se),
		webrtc.WithInterceptorRegistry(&interceptor.Registry{})), nil
}

// wsLink is a browser's SIP over its own secure WebSocket (RFC 7118).
type wsLink struct {
	c  *websocket.Conn
	mu sync.Mutex
}

func (l *wsLink) send(b []byte) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	_ = l.c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	return l.c.WriteMessage(websocket.TextMessage, b)
}

func (l *wsLink) reliable() bool { return true }

// webCall is one browser: a WSS connection, a PeerConnection with one
// sendrecv audio track sending PCMU, and the call through the SBC.
type webCall struct {
	base
	ws    *wsLink
	pc    *webrtc.PeerConnection
	track *webrtc.TrackLocalStaticRTP
	pkt   rtp.Packet
	wg    sync.WaitGroup

	mu      sync.Mutex // guards the times and closed against OnTrack
	answer  time.Time
	iceAt   time.Time
	dtlsAt  time.Time
	closed  bool
	dtlsUp  chan struct{}
	failed  chan struct{}
	payload [pcmuFrame]byte
}

// dialWeb connects a browser from src to the SBC's WSS listener and places
// a call to user; it returns once DTLS is connected.
func dialWeb(ctx context.Context, api *webrtc.API, src, wss, user string, o *options) (*webCall, error) {
	c := &webCall{dtlsUp: make(chan struct{}), failed: make(chan struct{})}
	for i := range c.payload {
		c.payload[i] = 0xff
	}
	if err := c.connect(src, wss, user); err != nil {
		return nil, err
	}
	if err := c.newPeer(api); err != nil {
		c.close()
		return nil, err
	}
	offer, err := c.offer()
	if err != nil {
		c.close()
		return nil, err
	}
	start := time.Now()
	res, err := c.d.invite(ctx, offer, o.setupTimeout)
	if err != nil {
		c.close()
		return nil, err
	}
	c.mu.Lock()
	c.answer = time.Now()
	c.mu.Unlock()
	c.setup, c.answered = c.answer.Sub(start), true
	if err := c.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: res.body}); err != nil {
		return c, fmt.Errorf("apply the answer: %w", err)
	}
	return c, c.awaitDTLS(ctx, o.setupTimeout)
}

// connect opens the WebSocket from src and starts its reader.
func (c *webCall) connect(src, wss, user string) error {
	d := websocket.Dialer{Subprotocols: []string{"sip"}, HandshakeTimeout: 10 * time.Second,
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, // a load test against a self-signed SBC
		NetDial: func(network, addr string) (net.Conn, error) {
			return (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}).Dial(network, addr)
		}}
	ws, _, err := d.Dial("wss://"+wss+"/", http.Header{})
	if err != nil {
		return fmt.Errorf("websocket: %w", err)
	}
	if ws.Subprotocol() != "sip" {
		ws.Close()
		return fmt.Errorf("websocket: subprotocol %q, want sip", ws.Subprotocol())
	}
	c.ws = &wsLink{c: ws}
	c.d = newDialog(c.ws, "WSS", token(6)+".invalid", user, wss)
	c.wg.Go(c.readSIP)
	return nil
}

func (c *webCall) readSIP() {
	for {
		_, data, err := c.ws.c.ReadMessage()
		if err != nil {
			return
		}
		if m, err := parseSIP(data); err == nil {
			c.d.deliver(m)
		}
	}
}

// newPeer makes the PeerConnection and notes when ICE and DTLS connect.
func (c *webCall) newPeer(api *webrtc.API) error {
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return fmt.Errorf("peer connection: %w", err)
	}
	c.pc = pc
	track, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypePCMU, ClockRate: 8000}, "audio", "sbc-load")
	if err != nil {
		return fmt.Errorf("track: %w", err)
	}
	c.track = track
	tr, err := pc.AddTransceiverFromTrack(track, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendrecv})
	if err != nil {
		return fmt.Errorf("transceiver: %w", err)
	}
	pc.OnICEConnectionStateChange(func(s webrtc.ICEConnectionState) {
		if s == webrtc.ICEConnectionStateConnected {
			c.mu.Lock()
			if c.iceAt.IsZero() {
				c.iceAt = time.Now()
			}
			c.mu.Unlock()
		}
	})
	tr.Sender().Transport().OnStateChange(func(s webrtc.DTLSTransportState) {
		c.mu.Lock()
		defer c.mu.Unlock()
		switch {
		case s == webrtc.DTLSTransportStateConnected && c.dtlsAt.IsZero():
			c.dtlsAt = time.Now()
			close(c.dtlsUp)
		case s == webrtc.DTLSTransportStateFailed:
			select {
			case <-c.failed:
			default:
				close(c.failed)
			}
		}
	})
	pc.OnTrack(c.onTrack)
	c.wg.Go(func() { drainRTCP(tr.Sender()) })
	return nil
}

// offer is the local offer with every candidate (no trickle over SIP).
func (c *webCall) offer() (string, error) {
	o, err := c.pc.CreateOffer(nil)
	if err != nil {
		return "", fmt.Errorf("create offer: %w", err)
	}
	gathered := webrtc.GatheringCompletePromise(c.pc)
	if err := c.pc.SetLocalDescription(o); err != nil {
		return "", fmt.Errorf("set local offer: %w", err)
	}
	select {
	case <-gathered:
	case <-time.After(10 * time.Second):
		return "", errors.New("ICE gathering did not complete within 10s")
	}
	return c.pc.LocalDescription().SDP, nil
}

// awaitDTLS waits for DTLS connected and takes the ICE and DTLS times.
func (c *webCall) awaitDTLS(ctx context.Context, timeout time.Duration) error {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-c.dtlsUp:
	case <-c.failed:
		return errors.New("DTLS failed")
	case <-t.C:
		return fmt.Errorf("DTLS not connected within %v of the answer", timeout)
	case <-ctx.Done():
		return ctx.Err()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	ice := c.iceAt
	if ice.IsZero() || ice.After(c.dtlsAt) { // the callback may run late
		ice = c.dtlsAt
	}
	c.ice, c.dtls = ice.Sub(c.answer), c.dtlsAt.Sub(ice)
	return nil
}

func (c *webCall) onTrack(track *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	c.wg.Go(func() {
		buf := make([]byte, 1500)
		for {
			n, _, err := track.Read(buf)
			if err != nil {
				return
			}
			if n >= rtpHeader {
				c.recv.Add(1)
				callerRx.Add(1)
			}
		}
	})
}

func drainRTCP(s *webrtc.RTPSender) {
	buf := make([]byte, 1500)
	for {
		if _, _, err := s.Read(buf); err != nil {
			return
		}
	}
}

// sendFrame writes the next packet through pion (SRTP), pacer only. pion
// sets the SSRC and payload type it negotiated.
func (c *webCall) sendFrame(now time.Time) {
	seq, ts, idx := c.nextFrame(now)
	binary.BigEndian.PutUint32(c.payload[:], idx)
	c.pkt.Header = rtp.Header{Version: 2, SequenceNumber: seq, Timestamp: ts}
	c.pkt.Payload = c.payload[:]
	if err := c.track.WriteRTP(&c.pkt); err == nil {
		c.sent.Add(1)
		callerTx.Add(1)
	}
}

func (c *webCall) hangup(ctx context.Context, timeout time.Duration) error {
	if !c.answered {
		return nil
	}
	return c.d.bye(ctx, timeout)
}

// close stops the PeerConnection and the WebSocket. Idempotent.
func (c *webCall) close() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	c.mu.Unlock()
	if c.pc != nil {
		_ = c.pc.Close()
	}
	if c.ws != nil {
		c.ws.c.Close()
	}
	c.wg.Wait()
}
