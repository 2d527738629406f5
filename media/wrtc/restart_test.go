package wrtc

import (
	"strings"
	"sync/atomic"
	"testing"
)

// TestICERestart: pion restarts ICE with a new offer; we restart with new
// local credentials, keep DTLS and SRTP (no second handshake) and media
// resumes over the new path.
func TestICERestart(t *testing.T) {
	m := newTestMux(t, false)
	tr := newTestTransport(t, m)
	states := watchState(tr)
	var clientHellos atomic.Int32
	pc := newPeer(t, peerOpts{clientHellos: &clientHellos})
	track := addTrack(t, pc, "opus")
	got := peerTracks(pc)
	rm := answerPion(t, tr, pc, offerFrom(t, pc, false), []mediaLine{opusLine})
	sink := newChanSink()
	tr.SetRoutes([]Route{{PTs: []uint8{opusLine.pt}, SSRCs: rm[0].ssrcs, Sink: sink}})
	states.connected(t)
	var seqIn, seqOut uint16
	expectPeerToUs(t, track, sink, opusLine.pt, &seqIn)
	expectUsToPeer(t, tr, got, opusLine, &seqOut)

	before := tr.Local()
	oldPath := tr.conn.RemoteAddr().String()
	offer := offerFrom(t, pc, true)
	if r, _ := parseRemote(t, offer); r.Ufrag == "" || strings.Contains(offer, "ice-ufrag:"+before.Ufrag) {
		t.Fatal("pion's restart offer is unusable")
	}
	answerPion(t, tr, pc, offer, []mediaLine{opusLine})
	after := tr.Local()
	if after.Ufrag == before.Ufrag || after.Pwd == before.Pwd {
		t.Fatalf("local credentials unchanged by the restart: %q", after.Ufrag)
	}
	if after.Fingerprint != before.Fingerprint {
		t.Fatal("fingerprint changed on an ICE restart")
	}
	for len(sink.rtp) > 0 { // only packets sent after the restart count
		<-sink.rtp
	}
	for len(got) > 0 {
		<-got
	}
	inBefore := tr.Counters().RTPIn
	expectPeerToUs(t, track, sink, opusLine.pt, &seqIn)
	expectUsToPeer(t, tr, got, opusLine, &seqOut)
	if tr.Counters().RTPIn <= inBefore {
		t.Fatal("no RTP counted after the restart")
	}
	newPath := tr.conn.RemoteAddr().String()
	t.Logf("ICE path %s -> %s", oldPath, newPath)
	if newPath == oldPath {
		t.Fatalf("selected pair still %s after the restart", oldPath)
	}
	if n := clientHellos.Load(); n != 1 {
		t.Fatalf("%d DTLS handshakes, want 1", n)
	}
	select {
	case ev := <-states.ch:
		t.Fatalf("state changed to %v (%s) across the restart", ev.state, ev.reason)
	default:
	}
}
