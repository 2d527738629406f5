package wrtc

import (
	"net"
	"testing"
	"time"
)

// TestDirectPath: once the peer's check validated its address, its media
// reaches the transport straight from the Mux's reader, not through pion's
// mux, and our SRTP leaves from the Mux's socket directly; a datagram from
// an address no check validated still goes to pion, which drops it.
func TestDirectPath(t *testing.T) {
	m := newTestMux(t, false)
	tr := newTestTransport(t, m)
	states := watchState(tr)
	pc := newPeer(t, peerOpts{})
	track := addTrack(t, pc, "opus")
	got := peerTracks(pc)
	rm := answerPion(t, tr, pc, offerFrom(t, pc, false), []mediaLine{opusLine})
	sink := newChanSink()
	tr.SetRoutes([]Route{{PTs: []uint8{opusLine.pt}, SSRCs: rm[0].ssrcs, Sink: sink}})
	states.connected(t)
	var seqIn, seqOut uint16
	expectPeerToUs(t, track, sink, opusLine.pt, &seqIn)

	const n = 50
	before, inBefore := m.Counters(), tr.Counters().RTPIn
	for range n {
		expectPeerToUs(t, track, sink, opusLine.pt, &seqIn)
	}
	after, in := m.Counters(), tr.Counters().RTPIn-inBefore
	if direct := after.Direct - before.Direct; direct < in || in < n {
		t.Fatalf("%d packets direct for %d RTP in (want at least %d and all direct)", direct, in, n)
	}
	if fed := after.ToPion - before.ToPion; fed > n/5 { // STUN consent checks only
		t.Fatalf("%d datagrams went through pion's mux while %d RTP came in", fed, in)
	}

	deadline := time.Now().Add(waitLong) // the pair notification is asynchronous
	for tr.dst.Load() == nil && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if tr.dst.Load() == nil {
		t.Fatal("no direct send address after connecting over UDP")
	}
	expectUsToPeer(t, tr, got, opusLine, &seqOut)

	stranger, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer stranger.Close()
	before, c := m.Counters(), tr.Counters()
	pkt := rtpPacket(t, opusLine.ssrc, opusLine.pt, 1, payloadN(1))
	if _, err := stranger.WriteToUDPAddrPort(pkt, m.Addr()); err != nil {
		t.Fatal(err)
	}
	for m.Counters().ToPion == before.ToPion && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if m.Counters().ToPion == before.ToPion {
		t.Fatal("a stranger's datagram did not go to pion's mux")
	}
	if d := m.Counters().Direct - before.Direct; d > uint64(n) {
		t.Fatalf("%d datagrams direct while only a stranger sent", d)
	}
	if now := tr.Counters(); now.Unknown != c.Unknown || now.SRTPAuthFail != c.SRTPAuthFail || now.Malformed != c.Malformed {
		t.Fatalf("a stranger's datagram reached the transport: %+v", now)
	}
}

// TestTotals: the process totals hold a transport's and its Mux's counters
// while they live and after they close; a closed transport leaves no route
// on the Mux.
func TestTotals(t *testing.T) {
	before := ReadTotals()
	m := newTestMux(t, false)
	tr := newTestTransport(t, m)
	states := watchState(tr)
	pc := newPeer(t, peerOpts{})
	track := addTrack(t, pc, "opus")
	rm := answerPion(t, tr, pc, offerFrom(t, pc, false), []mediaLine{opusLine})
	sink := newChanSink()
	tr.SetRoutes([]Route{{PTs: []uint8{opusLine.pt}, SSRCs: rm[0].ssrcs, Sink: sink}})
	states.connected(t)
	var seq uint16
	expectPeerToUs(t, track, sink, opusLine.pt, &seq)
	check := func(when string) {
		t.Helper()
		got, c, mc := ReadTotals(), tr.Counters(), m.Counters()
		if got.Transports.RTPIn-before.Transports.RTPIn < c.RTPIn || got.Transports.DTLSPackets-before.Transports.DTLSPackets < c.DTLSPackets {
			t.Fatalf("%s: totals %+v do not hold the transport's %+v", when, got.Transports, c)
		}
		if got.Mux.Direct-before.Mux.Direct < mc.Direct || got.Mux.ToPion-before.Mux.ToPion < mc.ToPion {
			t.Fatalf("%s: totals %+v do not hold the mux's %+v", when, got.Mux, mc)
		}
	}
	check("live")
	if err := pc.Close(); err != nil {
		t.Fatal(err)
	}
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	for a, to := range m.routes.Load().all {
		if to == tr {
			t.Fatalf("%s still routed to the closed transport", a)
		}
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	check("closed")
}

// TestRouteTableSSRCs: an SSRC finds its route whether the table scans its
// few SSRCs in place or, past smallSSRCs, uses its map; the earlier route
// keeps a duplicate SSRC.
func TestRouteTableSSRCs(t *testing.T) {
	a, b := &countSink{}, &countSink{}
	for _, tc := range []struct {
		name   string
		aSSRCs []uint32
		bSSRCs []uint32
	}{
		{"few", []uint32{1}, []uint32{2, 1}},
		{"exactly small", []uint32{1, 3}, []uint32{2, 4}},
		{"many", []uint32{1, 3, 5}, []uint32{2, 4, 6, 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rt := newRouteTable([]Route{{SSRCs: tc.aSSRCs, Sink: a}, {SSRCs: tc.bSSRCs, Sink: b}})
			for _, s := range tc.aSSRCs {
				if rt.rtpSink(s, 0) != Sink(a) {
					t.Errorf("SSRC %d not routed to the first route", s)
				}
			}
			for _, s := range tc.bSSRCs {
				if want := Sink(b); s != 1 && rt.rtpSink(s, 0) != want {
					t.Errorf("SSRC %d not routed to the second route", s)
				}
			}
			if rt.rtpSink(99, 0) != nil {
				t.Error("an unknown SSRC found a route")
			}
		})
	}
}
