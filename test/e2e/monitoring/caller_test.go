package monitoring

import (
	"net/netip"
	"testing"
	"time"

	"github.com/ghettovoice/gosip/sip"
	"github.com/pion/rtcp"

	"github.com/sbc-project/sbc/b2bua/sipmsg"
	"github.com/sbc-project/sbc/test/e2e"
)

// caller is the calling side of rtcpCall: a plain RTP phone or a WebRTC
// browser, calling user 1000 (routed to the PBX).
type caller interface {
	// answered waits for the 200, acknowledges it and returns the Call-ID.
	answered(t *testing.T) string
	ssrc() uint32 // of the RTP the caller sends
	sendRTP(t *testing.T)
	// awaitRTP calls send until RTP reaches the caller and returns its
	// SSRC.
	awaitRTP(t *testing.T, send func()) uint32
	sendRTCP(t *testing.T, pkt rtcp.Packet)
	// rtcpPath is the caller's RTCP address and the SBC's facing it.
	rtcpPath(t *testing.T) (side, sbc netip.AddrPort)
	// hangup sends BYE and has pbx answer the SBC's.
	hangup(t *testing.T, pbx *e2e.UAS)
}

// dialog is the part of the e2e SIP client's dialog hangup uses.
type dialog interface {
	Send(method string, seq int, ctype, body string)
	Await(seq int, timeout time.Duration, early func(sip.Response)) sip.Response
}

// bye hangs d up with CSeq 2 (nothing else was sent in the dialog) while
// pbx answers the SBC's BYE.
func bye(t *testing.T, d dialog, pbx *e2e.UAS) {
	t.Helper()
	d.Send("BYE", 2, "", "")
	req := pbx.ExpectReq("BYE")
	pbx.Respond(req, 200, "OK", "", "")
	if res := d.Await(2, 10*time.Second, nil); res.StatusCode() != 200 {
		t.Errorf("BYE answered %d", res.StatusCode())
	}
}

// plainCaller is a SIP phone with plain RTP on CallerIP.
type plainCaller struct {
	media *pair
	sip   *e2e.SIPClient
	dlg   interface {
		dialog
		Established(sip.Response)
		Ack()
	}
	sbc netip.AddrPort // the SBC's RTP address facing the caller
}

func dialPlain(t *testing.T, sbc *e2e.SBC) *plainCaller {
	t.Helper()
	c := &plainCaller{media: openPair(t, e2e.CallerIP()), sip: e2e.NewSIPClient(t, "UDP", sbc.UDP.String())}
	c.dlg = c.sip.Invite("1000", plainSDP(e2e.CallerIP(), c.media.port()))
	return c
}

func (c *plainCaller) answered(t *testing.T) string {
	t.Helper()
	res := c.dlg.Await(1, 10*time.Second, nil)
	if res.StatusCode() != 200 {
		t.Fatalf("call answered %d", res.StatusCode())
	}
	c.dlg.Established(res)
	c.dlg.Ack()
	c.sbc = mediaAddr(t, res.Body())
	return sipmsg.CallID(res)
}

func (c *plainCaller) ssrc() uint32                              { return callerSSRC }
func (c *plainCaller) sendRTP(t *testing.T)                      { c.media.sendRTP(t, c.sbc, callerSSRC) }
func (c *plainCaller) awaitRTP(t *testing.T, send func()) uint32 { return c.media.awaitRTP(t, send) }
func (c *plainCaller) sendRTCP(t *testing.T, pkt rtcp.Packet) {
	c.media.sendRTCP(t, pkt, c.rtcpOfSBC())
}
func (c *plainCaller) hangup(t *testing.T, pbx *e2e.UAS) { bye(t, c.dlg, pbx) }
func (c *plainCaller) rtcpOfSBC() netip.AddrPort {
	return netip.AddrPortFrom(c.sbc.Addr(), c.sbc.Port()+1)
}
func (c *plainCaller) rtcpPath(*testing.T) (side, sbc netip.AddrPort) {
	return c.media.rtcpAddr(), c.rtcpOfSBC()
}

// webCaller is a browser: pion over WebSocket, ICE, DTLS-SRTP and
// rtcp-mux (e2e.WebPhone); its RTP is the phone's own stream.
type webCaller struct {
	p *e2e.WebPhone
}

func dialWeb(t *testing.T, sbc *e2e.SBC) *webCaller {
	t.Helper()
	c := &webCaller{p: e2e.NewWebPhone(t, sbc)}
	c.p.Dial("1000")
	return c
}

func (c *webCaller) answered(t *testing.T) string {
	t.Helper()
	res := c.p.AwaitAnswer()
	if res.StatusCode() != 200 {
		t.Fatalf("call answered %d", res.StatusCode())
	}
	e2e.WaitFor(t, 10*time.Second, "the browser's DTLS", func() bool { return c.p.DTLSConnected.Load() > 0 })
	return sipmsg.CallID(res)
}

func (c *webCaller) ssrc() uint32 {
	c.p.Out.Mu.Lock()
	defer c.p.Out.Mu.Unlock()
	return c.p.Out.SSRC
}

func (c *webCaller) sendRTP(*testing.T) {} // the phone streams on its own

func (c *webCaller) awaitRTP(t *testing.T, send func()) uint32 {
	t.Helper()
	for range 250 {
		send()
		for ssrc := range c.p.Rx.Snapshot().SSRCs {
			return ssrc
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("no RTP reached the browser")
	return 0
}

func (c *webCaller) sendRTCP(t *testing.T, pkt rtcp.Packet) {
	t.Helper()
	if err := c.p.PC.WriteRTCP([]rtcp.Packet{pkt}); err != nil {
		t.Fatalf("browser: write RTCP: %v", err)
	}
}

// rtcpPath is the selected ICE pair: rtcp-mux puts RTCP on it.
func (c *webCaller) rtcpPath(t *testing.T) (side, sbc netip.AddrPort) {
	t.Helper()
	trs := c.p.PC.GetTransceivers()
	if len(trs) == 0 {
		t.Fatal("browser: no transceiver")
	}
	pair, err := trs[0].Sender().Transport().ICETransport().GetSelectedCandidatePair()
	if err != nil || pair == nil {
		t.Fatalf("browser: no selected candidate pair (%v)", err)
	}
	return candidate(t, pair.Local.Address, pair.Local.Port), candidate(t, pair.Remote.Address, pair.Remote.Port)
}

func candidate(t *testing.T, addr string, port uint16) netip.AddrPort {
	t.Helper()
	ip, err := netip.ParseAddr(addr)
	if err != nil {
		t.Fatalf("browser: candidate address %q: %v", addr, err)
	}
	return netip.AddrPortFrom(ip.Unmap(), port)
}

func (c *webCaller) hangup(t *testing.T, pbx *e2e.UAS) { bye(t, c.p.Dlg, pbx) }
