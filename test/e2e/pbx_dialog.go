package e2e

import (
	"fmt"
	"strings"
	"time"

	"github.com/ghettovoice/gosip/sip"

	"github.com/sbc-project/sbc/b2bua/sipmsg"
)

// The requests a MediaPBX originates in its dialog, from the test
// goroutine: re-INVITE to another port, INFO digits, BYE.

// send originates an in-dialog request and returns its final response (a
// 2xx to a re-INVITE is acknowledged). Called from the test goroutine.
func (p *MediaPBX) send(method, ctype, body string) sip.Response {
	p.t.Helper()
	p.Mu.Lock()
	c := p.Call
	if c == nil {
		p.Mu.Unlock()
		p.t.Fatalf("pbx: no call to send %s in", method)
	}
	c.seq++
	seq := c.seq
	p.Mu.Unlock()
	p.write(p.inDialog(c, method, seq, ctype, body))
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	for {
		select {
		case res := <-p.res:
			n, m := sipmsg.CSeq(res)
			if int(n) != seq || string(m) != method || res.StatusCode() < 200 {
				continue
			}
			if method == "INVITE" && res.StatusCode() < 300 {
				p.write(p.inDialog(c, "ACK", seq, "", ""))
			}
			return res
		case <-deadline.C:
			p.t.Fatalf("pbx: no final response to its %s", method)
			return nil
		}
	}
}

func (p *MediaPBX) inDialog(c *pbxCall, method string, seq int, ctype, body string) string {
	from, _ := c.inv.From()
	to, _ := c.inv.To()
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s SIP/2.0\r\n", method, c.target)
	fmt.Fprintf(&b, "Via: SIP/2.0/UDP %s:%d;branch=z9hG4bK%s;rport\r\n", PBXIP(), p.port(), sipmsg.NewToken(6))
	b.WriteString("Max-Forwards: 70\r\n")
	fmt.Fprintf(&b, "From: %s;tag=%s\r\nTo: %s\r\n", to.Address.String(), c.tag, from.Value())
	fmt.Fprintf(&b, "Call-ID: %s\r\nCSeq: %d %s\r\n", sipmsg.CallID(c.inv), seq, method)
	fmt.Fprintf(&b, "Contact: <sip:pbx@%s:%d>\r\n", PBXIP(), p.port())
	return b.String() + bodyPart(ctype, body)
}

// moveMedia re-INVITEs with the same SDP but a new RTP port (marker
// "PBXN", same mode) and returns the new socket. Without overlap the PBX
// moves cleanly: the old port falls silent before the re-INVITE and the
// new one starts at the 200. With overlap it moves the way a PBX tearing
// down one bridge and setting up another does: the new port sends from
// the re-INVITE on and the old one goes on for overlapTail after the 200.
func (p *MediaPBX) MoveMedia(overlap bool) *rtpPeer {
	p.t.Helper()
	p.Mu.Lock()
	c := p.Call
	old := c.peer
	p.Mu.Unlock()
	peer := p.media(c, "PBXN")
	if overlap {
		p.applyDir(c, peer)
	} else {
		old.close()
		// Let its last packets land before the re-INVITE resets the
		// SBC's latch: scripted, not awaited.
		time.Sleep(2 * FrameInterval)
	}
	res := p.send("INVITE", "application/sdp", p.sdp(c, peer))
	if res.StatusCode() != 200 {
		p.t.Fatalf("pbx: re-INVITE with a new port answered %d", res.StatusCode())
	}
	ans, err := ParseSDPInfo(res.Body())
	p.Mu.Lock()
	if err == nil {
		c.SBCRTP = ans.Addr
	}
	c.peer = peer
	p.Mu.Unlock()
	p.applyDir(c, peer)
	if overlap {
		time.Sleep(overlapTail) // the old bridge is not gone yet: scripted, not awaited
	}
	old.close()
	return peer
}

// overlapTail is how long the old port of a moveMedia with overlap keeps
// sending after the 200: three packets.
const overlapTail = 3 * FrameInterval

// SendOffer re-INVITEs with sdp as it is (a T.38 offer, say) and returns
// the final response; a 2xx is acknowledged, and the PBX's media stays as
// it was whatever the answer.
func (p *MediaPBX) SendOffer(sdp string) sip.Response {
	p.t.Helper()
	return p.send("INVITE", "application/sdp", sdp)
}

// sendInfo sends a digit as SIP INFO application/dtmf-relay.
func (p *MediaPBX) SendInfo(digit byte) {
	p.t.Helper()
	res := p.send("INFO", "application/dtmf-relay", fmt.Sprintf("Signal=%c\nDuration=160\n", digit))
	if res.StatusCode() != 200 {
		p.t.Errorf("pbx: INFO answered %d", res.StatusCode())
	}
}

// hangup sends BYE.
func (p *MediaPBX) Hangup() {
	p.t.Helper()
	p.Mu.Lock()
	c := p.Call
	c.ended = true
	p.Mu.Unlock()
	if res := p.send("BYE", "", ""); res.StatusCode() != 200 {
		p.t.Errorf("pbx: BYE answered %d", res.StatusCode())
	}
	p.closeMedia()
}
