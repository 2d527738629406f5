package security

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"

	"github.com/sbc-project/sbc/internal/config"
	"github.com/sbc-project/sbc/media"
	"github.com/sbc-project/sbc/media/rtpproc"
	"github.com/sbc-project/sbc/test/e2e"
)

// The media attack tests (issue 13, points 3 and 11): an attacker on
// e2e.IP(66), which is neither endpoint's SDP nor signaling address,
// sends what an off-path attacker can to the SBC's media ports of a call
// in progress, and an endpoint that moves is followed. Every check is on
// real sockets: what the attacker receives (nothing), what the legitimate
// endpoints keep receiving, and the call's refusal counters.

var attackerIP = e2e.IP(66)

// attackMarker is the payload marker of the attacker's well-formed RTP.
const attackMarker = "EVIL"

// udpRecorder is a UDP socket that keeps every datagram it receives.
type udpRecorder struct {
	conn *net.UDPConn
	wg   sync.WaitGroup
	mu   sync.Mutex
	got  [][]byte
}

// newUDPRecorder binds ip:port (port 0: any) until the test ends.
func newUDPRecorder(t *testing.T, ip string, port int) *udpRecorder {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(ip), Port: port})
	if err != nil {
		t.Fatalf("listen %s:%d: %v", ip, port, err)
	}
	r := &udpRecorder{conn: c}
	r.wg.Go(func() {
		buf := make([]byte, 2048)
		for {
			n, _, err := c.ReadFromUDP(buf)
			if err != nil {
				if errors.Is(err, net.ErrClosed) {
					return
				}
				continue
			}
			r.mu.Lock()
			r.got = append(r.got, bytes.Clone(buf[:n]))
			r.mu.Unlock()
		}
	})
	t.Cleanup(func() { c.Close(); r.wg.Wait() })
	return r
}

func (r *udpRecorder) packets() [][]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([][]byte(nil), r.got...)
}

func (r *udpRecorder) send(t *testing.T, b []byte, to *net.UDPAddr) {
	t.Helper()
	if _, err := r.conn.WriteToUDP(b, to); err != nil {
		t.Fatalf("send to %s: %v", to, err)
	}
}

// attacker is an off-path attacker with an RTP and an RTCP socket.
type attacker struct {
	rtp, rtcp *udpRecorder
	seq       uint16
}

func newAttacker(t *testing.T) *attacker {
	return &attacker{rtp: newUDPRecorder(t, attackerIP, 0), rtcp: newUDPRecorder(t, attackerIP, 0)}
}

// attackRounds is how many packets of each kind one burst sends.
const attackRounds = 5

// burst sends to the SBC's RTP port to (and RTCP port above it), per
// round: a 1-byte datagram, RTP of payload type 96 (not negotiated),
// well-formed PCMU RTP with the attacker's own SSRC, and a receiver
// report.
func (a *attacker) burst(t *testing.T, to *net.UDPAddr) {
	t.Helper()
	rtcpTo := &net.UDPAddr{IP: to.IP, Port: to.Port + 1}
	for range attackRounds {
		a.seq++
		a.rtp.send(t, []byte{0x42}, to)
		a.rtp.send(t, attackRTP(96, a.seq), to)
		a.rtp.send(t, attackRTP(e2e.PTPCMU, a.seq), to)
		a.rtcp.send(t, []byte{0x80, 201, 0, 1, 0x66, 0x66, 0x66, 0x66}, rtcpTo)
	}
}

// checkGotNothing fails if the attacker received a single datagram.
func (a *attacker) checkGotNothing(t *testing.T) {
	t.Helper()
	if n, m := a.got(); n+m > 0 {
		t.Errorf("the attacker received %d RTP and %d RTCP datagrams from the SBC", n, m)
	}
}

// got returns how many RTP and RTCP datagrams the attacker received.
func (a *attacker) got() (rtp, rtcp int) { return len(a.rtp.packets()), len(a.rtcp.packets()) }

func attackRTP(pt uint8, seq uint16) []byte {
	payload := make([]byte, e2e.FrameSamples)
	copy(payload, attackMarker)
	b, _ := (&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: pt, SequenceNumber: seq, SSRC: 0x66666666},
		Payload: payload}).Marshal()
	return b
}

// callMedia returns the media counters of the SBC's only call.
func callMedia(t *testing.T, sbc *e2e.SBC) media.Stats {
	t.Helper()
	calls := sbc.App.Server().Calls()
	if len(calls) != 1 {
		t.Fatalf("%d calls in progress, want 1", len(calls))
	}
	return calls[0].Media
}

// waitRefused waits until the flow picked from the call's stats counts
// at least the refusals of n bursts (junk, payload type, source; for an
// SDES side, authentication instead of payload type and source). It fails
// at once if the attacker received anything meanwhile.
func (a *attacker) waitRefused(t *testing.T, sbc *e2e.SBC, what string, pick func(media.Stats) media.Flow, n int, sdes bool) {
	t.Helper()
	var f media.Flow
	want := uint64(n * attackRounds)
	e2e.WaitFor(t, 10*time.Second, what, func() bool {
		if n, m := a.got(); n+m > 0 {
			t.Fatalf("%s: the attacker received %d RTP and %d RTCP datagrams from the SBC", what, n, m)
		}
		f = pick(callMedia(t, sbc))
		if sdes {
			return f.RefusedAuth >= 3*want
		}
		// RTP of its own and the RTCP report are refused for their source.
		return f.RefusedJunk >= want && f.RefusedPT >= want && f.RefusedSource >= 2*want
	})
	if f.Foreign != f.RefusedJunk+f.RefusedPT+f.RefusedAuth+f.RefusedSource {
		t.Errorf("%s: foreign %d is not the sum of its reasons: %+v", what, f.Foreign, f)
	}
}

func aToB(s media.Stats) media.Flow { return s.AtoB }
func bToA(s media.Stats) media.Flow { return s.BtoA }

// sbcRTP returns the SBC's RTP address facing the PBX, from its offer.
func sbcRTP(p *e2e.MediaPBX) *net.UDPAddr {
	p.Mu.Lock()
	defer p.Mu.Unlock()
	return p.Call.SBCRTP
}

// TestSecurityRTPHijack: a call between a SIP phone (e2e.CallerIP()) and a PBX
// (e2e.PBXIP()) through the SBC. The attacker sends junk, RTP of a payload
// type not negotiated and well-formed RTP of its own to the SBC's port
// facing the phone before the phone sends anything, and again after; then
// to the port facing the PBX. The attacker gets nothing, the phone and the
// PBX keep getting each other's media, and the call counts every refusal.
func TestSecurityRTPHijack(t *testing.T) {
	pbx := e2e.NewMediaPBX(t, e2e.PBXOptions{Stream: true})
	sbc := e2e.StartSBC(t, e2e.SBCOptions{Trunks: pbx.Trunk()})
	phone := e2e.NewPlainPhone(t, sbc)
	phone.RTP.Src.Pause(true) // the phone sends nothing until told
	phone.Call("1000")
	toPhone := phone.RTP.Dst.Load()
	evil := newAttacker(t)

	evil.burst(t, toPhone)
	evil.waitRefused(t, sbc, "refusals before the phone sent", aToB, 1, false)
	e2e.WaitCount(t, "the phone gets the pbx while attacked", phone.RTP.Rx, "PBX1", 25)

	phone.RTP.Src.Pause(false)
	peer, _ := pbx.Current()
	e2e.WaitCount(t, "the pbx gets the phone", peer.Rx, "PLN1", 25)
	evil.burst(t, toPhone)
	evil.waitRefused(t, sbc, "refusals after the phone sent", aToB, 2, false)

	evil.burst(t, sbcRTP(pbx))
	evil.waitRefused(t, sbc, "refusals on the pbx's port", bToA, 1, false)
	n, m := peer.Rx.Marker("PLN1"), phone.RTP.Rx.Marker("PBX1")
	e2e.WaitCount(t, "the pbx still gets the phone", peer.Rx, "PLN1", n+25)
	e2e.WaitCount(t, "the phone still gets the pbx", phone.RTP.Rx, "PBX1", m+25)

	evil.checkGotNothing(t)
	if got := peer.Rx.Marker(attackMarker) + phone.RTP.Rx.Marker(attackMarker); got > 0 {
		t.Errorf("%d of the attacker's packets were relayed", got)
	}
	if st := callMedia(t, sbc); st.AtoB.Relatched+st.BtoA.Relatched > 0 {
		t.Errorf("the latch moved: %+v", st)
	}
	phone.Dlg.Bye()
	sbc.WaitCallsIdle(t)
}

// TestSecurityRTPRebinding: the phone's NAT moves its media to a new
// source port mid-call; the stream (same SSRC, sequence numbers going on)
// from there is followed once the old port is silent, both ways, while
// the attacker's stream still is not.
func TestSecurityRTPRebinding(t *testing.T) {
	pbx := e2e.NewMediaPBX(t, e2e.PBXOptions{Stream: true})
	sbc := e2e.StartSBC(t, e2e.SBCOptions{Trunks: pbx.Trunk()})
	phone := e2e.NewPlainPhone(t, sbc)
	phone.Call("1000")
	peer, _ := pbx.Current()
	e2e.WaitCount(t, "the pbx gets the phone", peer.Rx, "PLN1", 10)
	e2e.WaitCount(t, "the phone gets the pbx", phone.RTP.Rx, "PBX1", 10)

	old := phone.RTP
	moved := e2e.NewRTPPeer(t, e2e.CallerIP(), old.Src, e2e.PBXDTMFPT) // the same stream
	old.Stop()
	moved.Start(old.Dst.Load())
	n := peer.Rx.Marker("PLN1")
	e2e.WaitCount(t, "the pbx gets the phone from its new port", peer.Rx, "PLN1", n+25)
	e2e.WaitCount(t, "the phone's new port gets the pbx", moved.Rx, "PBX1", 25)
	if st := callMedia(t, sbc).AtoB; st.Relatched != 1 {
		t.Errorf("relatched %d times, want 1", st.Relatched)
	}

	evil := newAttacker(t)
	evil.burst(t, old.Dst.Load())
	evil.waitRefused(t, sbc, "refusals after the move", aToB, 1, false)
	m := moved.Rx.Marker("PBX1")
	e2e.WaitCount(t, "the new port still gets the pbx", moved.Rx, "PBX1", m+25)
	evil.checkGotNothing(t)
	phone.Dlg.Bye()
	sbc.WaitCallsIdle(t)
}

// reCrypto finds the a=crypto line of an SDP body.
var reCrypto = regexp.MustCompile(`(?m)^a=crypto:(.+?)\s*$`)

// TestSecuritySDESLatch: a carrier whose trunk speaks SDES-SRTP calls the
// PBX. The attacker's packets, which cannot authenticate, never latch the
// SBC's port facing the carrier, before the carrier sends and after;
// the carrier's SRTP is relayed both ways.
func TestSecuritySDESLatch(t *testing.T) {
	pbx := e2e.NewMediaPBX(t, e2e.PBXOptions{Stream: true})
	sbc := e2e.StartSBC(t, e2e.SBCOptions{Trunks: pbx.Trunk(), Mutate: func(c *config.Config) {
		// Calls from e2e.CallerIP() come from this trunk; the route does not
		// send calls to it.
		c.Trunks = append(c.Trunks, config.Trunk{Name: "carrier", URI: "sip:" + e2e.CallerIP() + ":5999", Media: config.MediaSRTP,
			OptionsTimeout: time.Second, FailureThreshold: 1})
	}})
	key, err := rtpproc.NewCrypto(1, rtpproc.SuiteAES128HMACSHA1_80)
	if err != nil {
		t.Fatal(err)
	}
	carrier := newUDPRecorder(t, e2e.CallerIP(), 0)
	client := e2e.NewSIPClient(t, "UDP", sbc.UDP.String())
	offer := fmt.Sprintf("v=0\no=carrier 1 1 IN IP4 %s\ns=-\nc=IN IP4 %[1]s\nt=0 0\n"+
		"m=audio %d RTP/SAVP 0\na=rtpmap:0 PCMU/8000\na=ptime:20\na=crypto:%s\n", e2e.CallerIP(), carrier.conn.LocalAddr().(*net.UDPAddr).Port, key)
	dlg := client.Invite("1000", offer)
	res := dlg.Await(1, 20*time.Second, nil)
	if res.StatusCode() != 200 {
		t.Fatalf("call answered %d %s", res.StatusCode(), res.Reason())
	}
	dlg.Established(res)
	dlg.Ack()
	info, err := e2e.ParseSDPInfo(res.Body())
	cm := reCrypto.FindStringSubmatch(res.Body())
	if err != nil || cm == nil || info.Proto != "RTP/SAVP" {
		t.Fatalf("answer to an SDES offer: %v\n%s", err, res.Body())
	}
	sbcKey, err := rtpproc.ParseCrypto(cm[1])
	if err != nil {
		t.Fatal(err)
	}
	toCarrier := info.Addr
	evil := newAttacker(t)

	evil.burst(t, toCarrier)
	evil.waitRefused(t, sbc, "refusals before the carrier sent", aToB, 1, true)
	e2e.WaitFor(t, 10*time.Second, "the carrier gets the pbx in SRTP", func() bool { return srtpFrames(t, sbcKey, carrier.packets(), "PBX1") >= 25 })

	enc, _ := key.Context()
	src := e2e.NewRTPSource("SRTP", e2e.PTPCMU, e2e.PBXDTMFPT)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { sendSRTP(carrier, enc, src, toCarrier, stop) })
	defer func() { close(stop); wg.Wait() }()
	peer, _ := pbx.Current()
	e2e.WaitCount(t, "the pbx gets the carrier", peer.Rx, "SRTP", 25)
	evil.burst(t, toCarrier)
	evil.waitRefused(t, sbc, "refusals after the carrier sent", aToB, 2, true)
	n := peer.Rx.Marker("SRTP")
	e2e.WaitCount(t, "the pbx still gets the carrier", peer.Rx, "SRTP", n+25)
	evil.checkGotNothing(t)
	if st := callMedia(t, sbc).AtoB; st.SRTPFailed != 0 || st.Relatched != 0 {
		t.Errorf("carrier side: %+v", st)
	}
	dlg.Bye()
	sbc.WaitCallsIdle(t)
}

// srtpFrames decrypts the SRTP packets received with key and counts the
// frames with the payload marker.
func srtpFrames(t *testing.T, key rtpproc.Crypto, pkts [][]byte, marker string) int {
	dec, err := key.Context()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, p := range pkts {
		if plain, err := dec.DecryptRTP(nil, p, nil); err == nil && len(plain) >= 16 && string(plain[12:16]) == marker {
			n++
		}
	}
	return n
}

// sendSRTP sends the source's frames as SRTP every 20 ms until stop.
func sendSRTP(from *udpRecorder, enc *srtp.Context, src *e2e.RTPSource, to *net.UDPAddr, stop <-chan struct{}) {
	tick := time.NewTicker(e2e.FrameInterval)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		h, payload, ok := src.Next()
		if !ok {
			continue
		}
		plain, err := (&rtp.Packet{Header: h, Payload: payload}).Marshal()
		if err != nil {
			continue
		}
		if sec, err := enc.EncryptRTP(nil, plain, nil); err == nil {
			_, _ = from.conn.WriteToUDP(sec, to)
		}
	}
}

// currentSSRC is the SSRC the source sends with.
func currentSSRC(s *e2e.RTPSource) uint32 {
	s.Mu.Lock()
	defer s.Mu.Unlock()
	return s.SSRC
}

// sdesReport is RTCP a phone sends: a receiver report and an SDES with
// its identity.
func sdesReport(t *testing.T, ssrc uint32, cname string) []byte {
	t.Helper()
	b, err := rtcp.Marshal([]rtcp.Packet{
		&rtcp.ReceiverReport{SSRC: ssrc},
		&rtcp.SourceDescription{Chunks: []rtcp.SourceDescriptionChunk{{Source: ssrc, Items: []rtcp.SourceDescriptionItem{
			{Type: rtcp.SDESCNAME, Text: cname}, {Type: rtcp.SDESName, Text: "Alice Example"},
			{Type: rtcp.SDESTool, Text: "Linphone/5.2.0"}, {Type: rtcp.SDESEmail, Text: "alice@example.com"}}}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// sdesItems returns every SDES item (as "type:text") of the RTCP
// compounds received, and whether any compound failed to parse.
func sdesItems(pkts [][]byte) (items []string, bad int) {
	for _, b := range pkts {
		ps, err := rtcp.Unmarshal(b)
		if err != nil {
			bad++
			continue
		}
		for _, p := range ps {
			if sd, ok := p.(*rtcp.SourceDescription); ok {
				for _, c := range sd.Chunks {
					for _, it := range c.Items {
						items = append(items, fmt.Sprintf("%d:%s", it.Type, it.Text))
					}
				}
			}
		}
	}
	return items, bad
}

// checkOnlySBCCNAME waits for RTCP with SDES on rec and fails unless
// every SDES item in it is one CNAME of the SBC's, and none of leak.
func checkOnlySBCCNAME(t *testing.T, what string, rec *udpRecorder, leak string) {
	t.Helper()
	var items []string
	e2e.WaitFor(t, 10*time.Second, what, func() bool {
		items, _ = sdesItems(rec.packets())
		return len(items) > 0
	})
	items, bad := sdesItems(rec.packets())
	cname := ""
	for _, it := range items {
		if cname == "" {
			cname = it
		}
		if it != cname || !regexp.MustCompile(`^1:sbc-[0-9a-f]{16}$`).MatchString(it) {
			t.Errorf("%s: SDES items %q, want one CNAME of the SBC's", what, items)
			break
		}
	}
	for _, p := range rec.packets() {
		if bytes.Contains(p, []byte(leak)) {
			t.Errorf("%s: %q crossed the SBC in %x", what, leak, p)
		}
	}
	if bad > 0 {
		t.Errorf("%s: %d RTCP datagrams do not parse", what, bad)
	}
}

// TestSecurityRTCPSDES: RTCP between a SIP phone and the PBX, both ways,
// reaches each with the SBC's CNAME as its only SDES item: no CNAME,
// NAME, TOOL or EMAIL of the other side.
func TestSecurityRTCPSDES(t *testing.T) {
	pbx := e2e.NewMediaPBX(t, e2e.PBXOptions{Stream: true})
	sbc := e2e.StartSBC(t, e2e.SBCOptions{Trunks: pbx.Trunk()})
	phone := e2e.NewPlainPhone(t, sbc)
	phoneRTCP := newUDPRecorder(t, e2e.CallerIP(), phone.RTP.Port()+1)
	phone.Call("1000")
	peer, _ := pbx.Current()
	pbxRTCP := newUDPRecorder(t, e2e.PBXIP(), peer.Port()+1)
	e2e.WaitCount(t, "the pbx gets the phone", peer.Rx, "PLN1", 5)
	e2e.WaitCount(t, "the phone gets the pbx", phone.RTP.Rx, "PBX1", 5)

	toPhone, toPBX := phone.RTP.Dst.Load(), sbcRTP(pbx)
	phoneRTCP.send(t, sdesReport(t, currentSSRC(phone.RTP.Src), "alice@192.0.2.10"), &net.UDPAddr{IP: toPhone.IP, Port: toPhone.Port + 1})
	pbxRTCP.send(t, sdesReport(t, currentSSRC(peer.Src), "pbx-7@10.1.2.3"), &net.UDPAddr{IP: toPBX.IP, Port: toPBX.Port + 1})
	checkOnlySBCCNAME(t, "RTCP at the pbx", pbxRTCP, "alice")
	checkOnlySBCCNAME(t, "RTCP at the phone", phoneRTCP, "pbx-7")
	phone.Dlg.Bye()
	sbc.WaitCallsIdle(t)
}

// TestSecurityWebRTCMedia: a browser calls the PBX. The attacker's
// packets to the SBC's port facing the PBX are refused while both
// streams go on; the browser's SRTCP, carrying its CNAME and more,
// reaches the PBX with only the SBC's CNAME.
func TestSecurityWebRTCMedia(t *testing.T) {
	pbx := e2e.NewMediaPBX(t, e2e.PBXOptions{Stream: true})
	sbc := e2e.StartSBC(t, e2e.SBCOptions{Trunks: pbx.Trunk()})
	web := e2e.NewWebPhone(t, sbc)
	web.Call("1000")
	peer, _ := pbx.Current()
	pbxRTCP := newUDPRecorder(t, e2e.PBXIP(), peer.Port()+1)
	e2e.WaitCount(t, "the browser gets the pbx", web.Rx, "PBX1", 25)
	e2e.WaitCount(t, "the pbx gets the browser", peer.Rx, "WEB1", 25)

	evil := newAttacker(t)
	evil.burst(t, sbcRTP(pbx))
	evil.waitRefused(t, sbc, "refusals on the pbx's port", bToA, 1, false)
	n, m := web.Rx.Marker("PBX1"), peer.Rx.Marker("WEB1")
	e2e.WaitCount(t, "the browser still gets the pbx", web.Rx, "PBX1", n+25)
	e2e.WaitCount(t, "the pbx still gets the browser", peer.Rx, "WEB1", m+25)
	evil.checkGotNothing(t)

	web.Out.Mu.Lock()
	ssrc := web.Out.SSRC
	web.Out.Mu.Unlock()
	report, err := rtcp.Unmarshal(sdesReport(t, ssrc, "browser-7f3a@example.invalid"))
	if err != nil {
		t.Fatal(err)
	}
	if err := web.PC.WriteRTCP(report); err != nil {
		t.Fatalf("browser: write rtcp: %v", err)
	}
	checkOnlySBCCNAME(t, "the browser's RTCP at the pbx", pbxRTCP, "browser-7f3a")
	web.Hangup()
	sbc.WaitCallsIdle(t)
}

// TestSecurityAttackHelpers checks the attack packets themselves, so a
// refusal in the tests above is the SBC's doing: the well-formed RTP is
// valid RTP of the negotiated PCMU type, the other two are not.
func TestSecurityAttackHelpers(t *testing.T) {
	good := attackRTP(e2e.PTPCMU, 1)
	if !rtpproc.ValidRTP(good) || good[1]&0x7f != e2e.PTPCMU || binary.BigEndian.Uint32(good[8:]) != 0x66666666 {
		t.Fatalf("well-formed attack packet %x", good)
	}
	if bad := attackRTP(96, 1); !rtpproc.ValidRTP(bad) || bad[1]&0x7f != 96 {
		t.Fatalf("payload-type attack packet %x", bad)
	}
	if rtpproc.ValidRTP([]byte{0x42}) || !rtpproc.ValidRTCP([]byte{0x80, 201, 0, 1, 0x66, 0x66, 0x66, 0x66}) {
		t.Fatal("junk reads as RTP, or the report does not read as RTCP")
	}
}
