package wrtc

import (
	"net"
	"strings"
	"testing"
)

// TestICETCP: with a TCP listener on the Mux we advertise a passive tcp
// candidate; pion, restricted to tcp4, connects to it as an active ICE-TCP
// client, and media flows over the TCP path.
func TestICETCP(t *testing.T) {
	m := newTestMux(t, true)
	tr := newTestTransport(t, m)
	var udp, tcp bool
	for _, c := range tr.Local().Candidates {
		udp = udp || strings.Contains(c, " udp ")
		tcp = tcp || strings.Contains(c, " tcp ") && strings.Contains(c, "tcptype passive")
	}
	if !udp || !tcp {
		t.Fatalf("candidates %q: want udp and passive tcp", tr.Local().Candidates)
	}
	states := watchState(tr)
	pc := newPeer(t, peerOpts{tcp: true})
	track := addTrack(t, pc, "opus")
	got := peerTracks(pc)
	rm := answerPion(t, tr, pc, offerFrom(t, pc, false), []mediaLine{opusLine})
	sink := newChanSink()
	tr.SetRoutes([]Route{{PTs: []uint8{opusLine.pt}, SSRCs: rm[0].ssrcs, Sink: sink}})
	states.connected(t)
	if _, ok := tr.conn.LocalAddr().(*net.TCPAddr); !ok {
		t.Fatalf("selected path is %v, want TCP", tr.conn.LocalAddr())
	}
	var seqIn, seqOut uint16
	expectPeerToUs(t, track, sink, opusLine.pt, &seqIn)
	expectUsToPeer(t, tr, got, opusLine, &seqOut)
}
