package e2e

import (
	"errors"
	"fmt"
	"net"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ghettovoice/gosip/sip"

	"github.com/sbc-project/sbc/b2bua/sipmsg"
)

// PBXOptions script a MediaPBX.
type PBXOptions struct {
	// stream makes the PBX send its own RTP stream (payload marker "PBX1")
	// instead of echoing what it receives.
	Stream bool
	// early answers 183 with SDP from an early-media port that streams
	// ("PBXE"), then 200 with SDP on a different port that streams
	// ("PBXF") once release is closed (or after 10 s).
	Early bool
	// Ringing answers 180 without SDP, then 200 with SDP from a port that
	// streams ("PBX1") once release is closed (or after 10 s).
	Ringing bool
}

// PBXDTMFPT is the telephone-event payload type the PBX answers with,
// whatever the SBC offered: the payload types of the two legs differ.
const PBXDTMFPT = 101

// MediaPBX is a scripted PBX on PBXIP over UDP with real RTP: it
// answers INVITEs on its own (reader goroutine), echoes or streams RTP from
// Go sockets, records INFO and re-INVITE offers, and sends in-dialog
// requests when the test asks. It handles one call at a time.
type MediaPBX struct {
	t       *testing.T
	conn    *net.UDPConn
	opts    PBXOptions
	release chan struct{}
	res     chan sip.Response
	wg      sync.WaitGroup

	Mu     sync.Mutex
	sbc    *net.UDPAddr
	Call   *pbxCall
	calls  int
	sent   map[string]string // branch -> last response, for retransmitted requests
	infos  []string          // Signal= of each INFO received
	offers []string          // SDP of each INVITE and re-INVITE received
	frags  []string          // sipfrag status line of each NOTIFY received
	byes   int
	peers  []*rtpPeer // every RTP socket opened, closed at cleanup
	trace  []string   // first line of every message received, for failures
}

// pbxCall is the PBX's current dialog.
type pbxCall struct {
	inv     sip.Request
	tag     string
	seq     int
	target  string
	version int
	dir     string // the direction of the PBX's last answer
	SBCRTP  *net.UDPAddr
	sbcDTMF uint8    // telephone-event PT the SBC offered: what the PBX sends with
	peer    *rtpPeer // the media of the last answer
	early   *rtpPeer
	ended   bool
}

func NewMediaPBX(t *testing.T, opts PBXOptions) *MediaPBX {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(PBXIP())})
	if err != nil {
		t.Fatal(err)
	}
	p := &MediaPBX{t: t, conn: c, opts: opts, release: make(chan struct{}), res: make(chan sip.Response, 32),
		sent: map[string]string{}}
	p.wg.Go(p.readLoop)
	t.Cleanup(func() {
		p.ReleaseAnswer()
		c.Close()
		p.wg.Wait()
		for _, peer := range p.peers {
			peer.close()
		}
	})
	return p
}

func (p *MediaPBX) port() int { return p.conn.LocalAddr().(*net.UDPAddr).Port }

func (p *MediaPBX) Trunk() []TrunkSpec {
	return []TrunkSpec{{Name: "pbx", Addr: PBXIP(), Port: p.port()}}
}

// releaseAnswer lets an early-media PBX send its 200.
func (p *MediaPBX) ReleaseAnswer() {
	p.Mu.Lock()
	defer p.Mu.Unlock()
	select {
	case <-p.release:
	default:
		close(p.release)
	}
}

func (p *MediaPBX) readLoop() {
	parser := sipmsg.NewParser(sipmsg.Limits{})
	buf := make([]byte, 65535)
	for {
		n, from, err := p.conn.ReadFromUDP(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		m, err := parser.Parse(buf[:n])
		if err != nil {
			p.t.Errorf("pbx: bad message: %v\n%s", err, buf[:n])
			continue
		}
		p.Mu.Lock()
		p.sbc = from
		line, _, _ := strings.Cut(string(buf[:n]), "\r\n")
		p.trace = append(p.trace, line)
		p.Mu.Unlock()
		switch m := m.(type) {
		case sip.Response:
			select {
			case p.res <- m:
			default:
			}
		case sip.Request:
			p.request(m)
		}
	}
}

func branchOf(req sip.Request) string {
	if via, ok := req.ViaHop(); ok {
		if b, ok := via.Params.Get("branch"); ok {
			return b.String()
		}
	}
	return ""
}

// request handles one request from the SBC; a retransmission gets the last
// response again.
func (p *MediaPBX) request(req sip.Request) {
	key := branchOf(req) + string(req.Method())
	p.Mu.Lock()
	last, seen := p.sent[key]
	p.Mu.Unlock()
	if seen {
		if last != "" {
			p.write(last)
		}
		return
	}
	p.remember(key, "")
	switch req.Method() {
	case sip.INVITE:
		if sipmsg.ToTag(req) == "" {
			p.invite(req, key)
		} else {
			p.reinvite(req, key)
		}
	case sip.ACK:
	case sip.BYE:
		p.bye(req, key)
	case sip.INFO:
		p.info(req, key)
	case sip.NOTIFY:
		line, _, _ := strings.Cut(req.Body(), "\r\n")
		p.Mu.Lock()
		p.frags = append(p.frags, line)
		p.Mu.Unlock()
		p.respond(req, key, 200, "", "")
	default: // OPTIONS, UPDATE, CANCEL: fine
		p.respond(req, key, 200, "", "")
	}
}

func (p *MediaPBX) remember(key, msg string) {
	p.Mu.Lock()
	p.sent[key] = msg
	p.Mu.Unlock()
}

// invite answers a new call: 100, then 200 (or 183 and later 200).
func (p *MediaPBX) invite(req sip.Request, key string) {
	p.respond(req, key, 100, "", "")
	offer, err := ParseSDPInfo(req.Body())
	if err != nil {
		p.t.Errorf("pbx: INVITE offer: %v", err)
		p.respond(req, key, 488, "", "")
		return
	}
	p.Mu.Lock()
	p.calls++
	p.offers = append(p.offers, req.Body())
	c := &pbxCall{inv: req, tag: sipmsg.NewToken(4), seq: 1, target: sipmsg.ContactURI(req).String(),
		SBCRTP: offer.Addr, dir: answerDir(offer.Dir), sbcDTMF: PBXDTMFPT}
	if offer.DTMFPT >= 0 {
		c.sbcDTMF = uint8(offer.DTMFPT)
	}
	p.Call = c
	p.Mu.Unlock()
	if p.opts.Ringing {
		p.ring(req, key, c)
		return
	}
	if !p.opts.Early {
		peer := p.media(c, "PBX1")
		p.applyDir(c, peer)
		p.Mu.Lock()
		c.peer = peer
		p.Mu.Unlock()
		p.respond(req, key, 200, c.tag, p.sdp(c, peer))
		return
	}
	early := p.media(c, "PBXE")
	p.applyDir(c, early)
	p.Mu.Lock()
	c.early = early
	p.Mu.Unlock()
	p.respond(req, key, 183, c.tag, p.sdp(c, early))
	p.afterRelease(c, func() {
		early.Stop()
		final := p.media(c, "PBXF")
		p.applyDir(c, final)
		p.Mu.Lock()
		c.peer = final
		p.Mu.Unlock()
		p.respond(req, key, 200, c.tag, p.sdp(c, final))
	})
}

// ring answers 180 without SDP, and 200 with a streaming port once the
// test releases the answer.
func (p *MediaPBX) ring(req sip.Request, key string, c *pbxCall) {
	p.respond(req, key, 180, c.tag, "")
	p.afterRelease(c, func() {
		peer := p.media(c, "PBX1")
		p.applyDir(c, peer)
		p.Mu.Lock()
		c.peer = peer
		p.Mu.Unlock()
		p.respond(req, key, 200, c.tag, p.sdp(c, peer))
	})
}

// afterRelease runs answer once the test releases the answer (or after
// 10 s), unless the call has ended by then.
func (p *MediaPBX) afterRelease(c *pbxCall, answer func()) {
	p.wg.Go(func() {
		select {
		case <-p.release:
		case <-time.After(10 * time.Second):
		}
		p.Mu.Lock()
		ended := c.ended
		p.Mu.Unlock()
		if ended {
			return
		}
		answer()
	})
}

// media opens the RTP socket of one answer: an echo, or a stream with the
// payload marker when streaming; applyDir starts it. A bind error fails the
// test (after one retry).
func (p *MediaPBX) media(c *pbxCall, marker string) *rtpPeer {
	var src *RTPSource
	if p.opts.Stream || p.opts.Early || p.opts.Ringing {
		src = NewRTPSource(marker, PTPCMU, c.sbcDTMF)
	}
	peer, err := openRTPPeer(PBXIP(), src, PBXDTMFPT)
	if err != nil {
		p.t.Errorf("pbx: rtp socket: %v", err)
		peer, _ = openRTPPeer(PBXIP(), src, PBXDTMFPT)
	}
	p.Mu.Lock()
	p.peers = append(p.peers, peer)
	p.Mu.Unlock()
	return peer
}

// applyDir starts or stops the peer's sending as the answer's direction
// allows.
func (p *MediaPBX) applyDir(c *pbxCall, peer *rtpPeer) {
	p.Mu.Lock()
	send := c.dir == "sendrecv" || c.dir == "sendonly"
	dst := c.SBCRTP
	p.Mu.Unlock()
	peer.echo.Store(send && peer.Src == nil)
	if peer.Src == nil {
		return
	}
	if send {
		peer.Start(dst)
	} else {
		peer.Stop()
	}
}

// answerDir is the direction that answers an offered one.
func answerDir(offered string) string {
	switch offered {
	case "sendonly":
		return "recvonly"
	case "recvonly":
		return "sendonly"
	case "inactive":
		return "inactive"
	}
	return "sendrecv"
}

func (p *MediaPBX) sdp(c *pbxCall, peer *rtpPeer) string {
	p.Mu.Lock()
	c.version++
	v := c.version
	dir := c.dir
	p.Mu.Unlock()
	return fmt.Sprintf("v=0\no=pbx 4242 %d IN IP4 %s\ns=-\nc=IN IP4 %[2]s\nt=0 0\n"+
		"m=audio %d RTP/AVP 0 %d\na=rtpmap:0 PCMU/8000\na=rtpmap:%[4]d telephone-event/8000\na=fmtp:%[4]d 0-16\n"+
		"a=ptime:20\na=%s\n", v, PBXIP(), peer.Port(), PBXDTMFPT, dir)
}

// reinvite answers an in-dialog offer with the same port and the matching
// direction.
func (p *MediaPBX) reinvite(req sip.Request, key string) {
	offer, err := ParseSDPInfo(req.Body())
	p.Mu.Lock()
	c := p.Call
	p.offers = append(p.offers, req.Body())
	var peer *rtpPeer
	if c != nil && err == nil {
		peer = c.peer
		c.dir = answerDir(offer.Dir)
		c.SBCRTP = offer.Addr
	}
	p.Mu.Unlock()
	if peer == nil {
		p.t.Errorf("pbx: re-INVITE without an answered call or SDP: %v", err)
		p.respond(req, key, 488, "", "")
		return
	}
	p.applyDir(c, peer)
	p.respond(req, key, 200, "", p.sdp(c, peer))
}

func (p *MediaPBX) bye(req sip.Request, key string) {
	p.Mu.Lock()
	p.byes++
	c := p.Call
	if c != nil {
		c.ended = true
	}
	p.Mu.Unlock()
	p.respond(req, key, 200, "", "")
	p.closeMedia()
}

// closeMedia closes every RTP socket when a call ends, so that none
// outlives it (the SBC's goroutine check runs before the PBX's cleanup).
// Their stats stay readable.
func (p *MediaPBX) closeMedia() {
	p.Mu.Lock()
	peers := p.peers
	p.peers = nil
	p.Mu.Unlock()
	for _, peer := range peers {
		peer.close()
	}
}

var reSignal = regexp.MustCompile(`(?mi)^Signal\s*=\s*(\S+)`)

func (p *MediaPBX) info(req sip.Request, key string) {
	if m := reSignal.FindStringSubmatch(req.Body()); m != nil {
		p.Mu.Lock()
		p.infos = append(p.infos, m[1])
		p.Mu.Unlock()
	}
	p.respond(req, key, 200, "", "")
}

// respond answers req; tag goes on a To without one.
func (p *MediaPBX) respond(req sip.Request, key string, code int, tag, sdp string) {
	var b strings.Builder
	fmt.Fprintf(&b, "SIP/2.0 %d %s\r\n", code, reasonPhrase(code))
	for _, h := range req.GetHeaders("Via") {
		b.WriteString(h.String() + "\r\n")
	}
	from, _ := req.From()
	to, _ := req.To()
	toStr := to.String()
	if sipmsg.ToTag(req) == "" && tag != "" && code > 100 {
		toStr += ";tag=" + tag
	}
	b.WriteString(from.String() + "\r\n" + toStr + "\r\n")
	fmt.Fprintf(&b, "Call-ID: %s\r\n", sipmsg.CallID(req))
	cseq, _ := req.CSeq()
	b.WriteString(cseq.String() + "\r\n")
	if code > 100 && code < 300 {
		fmt.Fprintf(&b, "Contact: <sip:pbx@%s:%d>\r\n", PBXIP(), p.port())
		b.WriteString("Allow: INVITE, ACK, BYE, CANCEL, UPDATE, INFO, OPTIONS\r\n")
	}
	msg := b.String() + bodyPart("application/sdp", sdp)
	p.remember(key, msg)
	p.write(msg)
}

func (p *MediaPBX) write(msg string) {
	p.Mu.Lock()
	dst := p.sbc
	p.Mu.Unlock()
	if _, err := p.conn.WriteToUDP([]byte(msg), dst); err != nil && !errors.Is(err, net.ErrClosed) {
		p.t.Errorf("pbx: send: %v", err)
	}
}

// current returns the media of the current call's answer.
func (p *MediaPBX) Current() (peer, early *rtpPeer) {
	p.Mu.Lock()
	defer p.Mu.Unlock()
	if p.Call == nil {
		return nil, nil
	}
	return p.Call.peer, p.Call.early
}

// pbxState is a copy of what the PBX recorded.
type pbxState struct {
	Calls, Byes int
	Trace       []string
	Infos       []string
	Offers      []string
	Notifies    []string // sipfrag status lines of the NOTIFYs received
	sbcDTMFPT   int      // telephone-event PT of the SBC's last offer
}

func (p *MediaPBX) State() pbxState {
	p.Mu.Lock()
	defer p.Mu.Unlock()
	s := pbxState{Calls: p.calls, Byes: p.byes, Trace: append([]string(nil), p.trace...), Infos: append([]string(nil), p.infos...),
		Offers: append([]string(nil), p.offers...), Notifies: append([]string(nil), p.frags...), sbcDTMFPT: -1}
	if len(s.Offers) > 0 {
		if info, err := ParseSDPInfo(s.Offers[len(s.Offers)-1]); err == nil {
			s.sbcDTMFPT = info.DTMFPT
		}
	}
	return s
}

// Calls is the number of calls (INVITEs without a To tag) the PBX got.
func (p *MediaPBX) Calls() int {
	p.Mu.Lock()
	defer p.Mu.Unlock()
	return p.calls
}
