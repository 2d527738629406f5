// Package takeover tests that calls survive the crash of their node
// (issue 19 point 2) with processes and a moving service address: two
// nodes in network namespaces of their own, the far ends in a third.
package takeover

import (
	"encoding/json"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"

	"github.com/sbc-project/sbc/media"
)

// maxGap is the bound on the audio a call may lose.
const maxGap = 2 * time.Second

// mediaCall is one call's far ends: a (a phone, or br, a browser) calls b.
type mediaCall struct {
	name string
	a    *rtpEnd
	br   *browser
	b    *rtpEnd
}

// TestMediaTakeover: SIP⇄SIP calls (plain RTP at both far ends) and
// WebRTC calls (pion) relayed by node 1 on the service address; node 1's
// media states are taken (as the B2BUA replicates them), it relays on a
// while and is killed with SIGKILL; node 2 restores every session while
// the service address is not yet on it (IP_FREEBIND), then the address
// moves to node 2 as keepalived would move it. Each far end's audio
// continues (same SSRC, sequence numbers forward) after a gap of at most
// 2 s, the browsers' ICE never leaves connected (node 2 answers their
// consent checks with the same credentials, SRTP continues with the same
// keys), and node 2 ends each session with media relayed both ways.
func TestMediaTakeover(t *testing.T) {
	tp := newTopology(t)
	n1 := startNode(t, "node-1", tp.node1, serviceIP, 30000, 30999)
	n2 := startNode(t, "node-2", tp.node2, node2IP, 30000, 30999)
	calls := setupCalls(t, tp, n1, 8, 2)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	defer wg.Wait()
	defer close(stop)
	for _, c := range calls {
		if c.a != nil {
			c.a.run(stop, &wg)
		} else {
			c.br.run(stop, &wg)
		}
		c.b.run(stop, &wg)
	}
	waitFor(t, "audio both ways on every call through node 1", 10*time.Second, func() bool {
		for _, c := range calls {
			if c.rxA().count() < 25 || c.b.rx.count() < 25 {
				return false
			}
		}
		return true
	})
	states := make([]json.RawMessage, len(calls))
	for i, c := range calls {
		states[i] = n1.do(nodeRequest{Op: "state", Call: c.name}).State
	}
	time.Sleep(500 * time.Millisecond) // node 1 relays past its last replicated state
	n1.kill()
	cut := time.Now()
	for i, c := range calls {
		n2.do(nodeRequest{Op: "restore", Call: c.name, State: states[i]})
	}
	restored := time.Since(cut)
	tp.moveService(t)
	t.Logf("node 2 restored %d calls %v after the kill; the address moved %v after it", len(calls), restored, time.Since(cut))
	waitFor(t, "audio both ways on every call through node 2", 10*time.Second, func() bool {
		for _, c := range calls {
			if c.rxA().gap(cut).after < 50 || c.b.rx.gap(cut).after < 50 {
				return false
			}
		}
		return true
	})
	// The browsers' ICE goes disconnected 3 s without an answered check.
	time.Sleep(time.Until(cut.Add(4 * time.Second)))
	for _, c := range calls {
		checkGap(t, c.name+" toward A", c.rxA().gap(cut))
		checkGap(t, c.name+" toward B", c.b.rx.gap(cut))
		if c.br != nil {
			if bad := c.br.bad(); len(bad) > 0 {
				t.Errorf("%s: the browser's ICE went %v", c.name, bad)
			}
		}
		st := n2.do(nodeRequest{Op: "close", Call: c.name}).Stats
		if st.AtoB.Packets == 0 || st.BtoA.Packets == 0 {
			t.Errorf("%s: node 2 relayed %d packets A→B, %d B→A", c.name, st.AtoB.Packets, st.BtoA.Packets)
		}
	}
}

// rxA is what the A side of c receives.
func (c *mediaCall) rxA() *arrivals {
	if c.br != nil {
		return &c.br.rx
	}
	return &c.a.rx
}

// setupCalls sets up plain calls and WebRTC calls through n.
func setupCalls(t *testing.T, tp *topology, n *node, plain, web int) []*mediaCall {
	t.Helper()
	var calls []*mediaCall
	for i := range plain + web {
		c := &mediaCall{name: "call-" + itoa(i), b: newRTPEnd(t, tp, worldIP2, 0xb0000000+uint32(i))}
		var offer []byte
		if i < plain {
			c.a = newRTPEnd(t, tp, worldIP, 0xa0000000+uint32(i))
			offer = c.a.sdp()
		} else {
			c.br = newBrowser(t, tp, worldIP)
			offer = c.br.offer(t)
		}
		toB := n.do(nodeRequest{Op: "offer", Call: c.name, Side: media.SideA, SDP: string(offer)}).SDP
		toA := n.do(nodeRequest{Op: "answer", Call: c.name, Side: media.SideB, SDP: string(c.b.sdp())}).SDP
		c.b.dst <- servicePort(t, toB)
		if c.a != nil {
			c.a.dst <- servicePort(t, toA)
		} else if err := c.br.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: toA}); err != nil {
			t.Fatalf("%s: browser: set answer: %v\n%s", c.name, err, toA)
		}
		calls = append(calls, c)
	}
	return calls
}

// servicePort is the service address and the port of body's first
// m-line: where the node wants the far end's media.
func servicePort(t *testing.T, body string) netip.AddrPort {
	t.Helper()
	var sd sdp.SessionDescription
	if err := sd.UnmarshalString(body); err != nil || len(sd.MediaDescriptions) == 0 {
		t.Fatalf("node's sdp: %v\n%s", err, body)
	}
	return netip.AddrPortFrom(netip.MustParseAddr(serviceIP), uint16(sd.MediaDescriptions[0].MediaName.Port.Value))
}

// checkGap fails unless the far end's audio went on after the takeover
// within maxGap, as one stream.
func checkGap(t *testing.T, what string, g gap) {
	t.Helper()
	t.Logf("%s: %d packets before the kill, %d after; longest gap %v (%d slots of 20 ms empty)", what, g.before, g.after, g.longest, g.slots)
	if g.problem != "" {
		t.Errorf("%s: %s", what, g.problem)
	}
	if g.longest > maxGap || g.after == 0 {
		t.Errorf("%s: %v without audio, want at most %v", what, g.longest, maxGap)
	}
}

func itoa(i int) string { return string(rune('0'+i/10)) + string(rune('0'+i%10)) }

func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
