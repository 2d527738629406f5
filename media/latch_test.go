package media

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/pion/rtcp"
)

func TestLatchRules(t *testing.T) {
	var (
		sdpAddr  = netip.MustParseAddrPort("192.0.2.10:4000")
		mapped   = netip.MustParseAddrPort("[::ffff:192.0.2.10]:4000")
		sigIP    = netip.MustParseAddr("198.51.100.7")
		sigSrc   = netip.AddrPortFrom(sigIP, 5000)
		sigOther = netip.AddrPortFrom(sigIP, 5002)
		stranger = netip.MustParseAddrPort("203.0.113.9:6000")
		other    = netip.MustParseAddrPort("203.0.113.66:6000")
		// The SDP's port from another address: the side's socket bound
		// to the wildcard, or a NAT that kept the port.
		sdpPort  = netip.MustParseAddrPort("203.0.113.9:4000")
		sdpPort6 = netip.MustParseAddrPort("[2001:db8::9]:4000")
	)
	const t0 = int64(1e12)
	grace := int64(strangerGrace)
	known := peer{addr: sdpAddr, sdp: sdpAddr, signal: sigIP, since: t0}
	latchedTo := func(src netip.AddrPort) peer {
		p := known
		p.addr, p.latched = src, true
		return p
	}
	tests := []struct {
		name    string
		p       peer
		src     netip.AddrPort
		follows bool
		now     int64
		want    bool
		rtcp    bool // the RTCP socket: no grace for strangers
	}{
		{"SDP address latches", known, sdpAddr, false, t0, true, false},
		{"SDP address as IPv4-mapped", known, mapped, false, t0, true, false},
		{"signaling address latches", known, sigSrc, false, t0, true, false},
		{"stranger waits for the grace", known, stranger, false, t0 + grace - 1, false, false},
		{"stranger after the grace", known, stranger, false, t0 + grace, true, false},
		{"stranger when nothing is known", peer{since: t0}, stranger, false, t0, true, false},
		{"stranger with only the signaling known", peer{signal: sigIP, since: t0}, stranger, false, t0, false, false},
		{"old source after the SDP moved", peer{addr: sdpAddr, sdp: sdpAddr, stale: sigSrc, signal: sigIP, since: t0}, sigSrc, false, t0, false, false},
		{"old source while on hold", peer{stale: stranger, since: t0}, stranger, false, t0, true, false},
		{"SDP address takes over from a stranger", latchedTo(stranger), sdpAddr, false, t0, true, false},
		{"SDP address takes over from the signaling address", latchedTo(sigSrc), sdpAddr, false, t0, true, false},
		{"signaling address takes over from a stranger", latchedTo(stranger), sigSrc, false, t0, true, false},
		{"signaling address does not take over from the SDP address", latchedTo(sdpAddr), sigSrc, false, t0, false, false},
		{"another port of the signaling address", latchedTo(sigSrc), sigOther, false, t0, false, false},
		{"another stranger", latchedTo(stranger), other, false, t0 + grace, false, false},
		{"stranger against the SDP address", latchedTo(sdpAddr), stranger, false, t0 + grace, false, false},
		{"stranger continuing the stream (NAT rebinding)", latchedTo(sdpAddr), stranger, true, t0, true, false},
		{"stranger continuing the stream before a latch (RTCP)", known, stranger, true, t0, true, true},
		{"stranger on the RTCP socket after the grace", known, stranger, false, t0 + grace, false, true},
		{"stranger on the RTCP socket when nothing is known", peer{since: t0}, stranger, false, t0, false, true},
		{"signaling address on the RTCP socket", known, sigSrc, false, t0, true, true},
		{"signaling port continuing the stream", latchedTo(sigSrc), sigOther, true, t0, true, false},
		{"SDP port from another address latches", known, sdpPort, false, t0, true, false},
		{"SDP port from another address on the RTCP socket", known, sdpPort, false, t0, true, true},
		{"SDP port takes over from a stranger", latchedTo(stranger), sdpPort, false, t0, true, false},
		{"SDP port does not take over from the signaling address", latchedTo(sigSrc), sdpPort, false, t0, false, false},
		{"signaling address takes over from the SDP port", latchedTo(sdpPort), sigSrc, false, t0, true, false},
		{"SDP port of another family", known, sdpPort6, false, t0, false, false},
		{"SDP port after the SDP moved from it", peer{addr: sdpAddr, sdp: sdpAddr, stale: sdpPort, signal: sigIP, since: t0}, sdpPort, false, t0, false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.p.admits(tc.src, evidence{follows: tc.follows, noGrace: tc.rtcp, now: tc.now}); got != tc.want {
				t.Fatalf("admits(%s, follows=%v) on %+v = %v, want %v", tc.src, tc.follows, tc.p, got, tc.want)
			}
		})
	}
}

func TestTrailFollows(t *testing.T) {
	const t0, ssrc = int64(1e12), uint32(0xdeadbeef)
	silent := t0 + int64(relatchSilence)
	pkt := func(ssrc uint32, seq uint16) []byte { return withSSRC(rtpPacket(seq), ssrc) }
	tests := []struct {
		name string
		tr   trail
		pkt  []byte
		now  int64
		want bool
	}{
		{"next packet after the silence", trail{ssrc: ssrc, seq: 100, rtp: true, at: t0}, pkt(ssrc, 101), silent, true},
		{"a minute lost on the way", trail{ssrc: ssrc, seq: 100, rtp: true, at: t0}, pkt(ssrc, 100+relatchMaxAhead), silent, true},
		{"too far ahead", trail{ssrc: ssrc, seq: 100, rtp: true, at: t0}, pkt(ssrc, 101+relatchMaxAhead), silent, false},
		{"across the wrap", trail{ssrc: ssrc, seq: 65535, rtp: true, at: t0}, pkt(ssrc, 2), silent, true},
		{"the same sequence number (a copy)", trail{ssrc: ssrc, seq: 100, rtp: true, at: t0}, pkt(ssrc, 100), silent, false},
		{"behind", trail{ssrc: ssrc, seq: 100, rtp: true, at: t0}, pkt(ssrc, 99), silent, false},
		{"another SSRC", trail{ssrc: ssrc, seq: 100, rtp: true, at: t0}, pkt(ssrc+1, 101), silent, false},
		{"the latched source is still sending", trail{ssrc: ssrc, seq: 100, rtp: true, at: t0}, pkt(ssrc, 101), silent - 1, false},
		{"no RTP from the latched source yet", trail{at: t0}, pkt(0, 1), silent, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.tr.follows(tc.pkt, tc.now); got != tc.want {
				t.Fatalf("follows = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestLatchRefusesAttacker: an attacker on another address sends junk,
// RTP of a payload type the call did not negotiate, and well-formed RTP
// of its own to the SBC's port facing A, before A sent anything and after.
// Nothing is latched by it, nothing reaches B, the attacker receives
// nothing, and every packet is counted with its reason.
func TestLatchRefusesAttacker(t *testing.T) {
	m := newTestManager(t, 4, netip.Addr{}, nil)
	c := setupCallOpts(t, m, SideOptions{Signaling: loopback}, SideOptions{Signaling: loopback})
	attacker := newPeerAt(t, "127.0.0.66", true)
	attack := func() {
		t.Helper()
		send(t, attacker.rtp, []byte{0x42}, c.portA)
		send(t, attacker.rtp, withPT(withSSRC(rtpPacket(7), 0x66), 96), c.portA)
		send(t, attacker.rtp, withSSRC(rtpPacket(8), 0x66), c.portA)
		send(t, attacker.rtp, rtcpPacket(), c.portA+1)
	}
	want := Flow{Foreign: 4, RefusedJunk: 1, RefusedPT: 1, RefusedSource: 2}
	attack()
	waitFor(t, "refusals before A sent", func() bool { return refusals(c.s.Stats().AtoB) == want })
	// B's media goes to A's SDP address meanwhile, never to the attacker.
	send(t, c.b.rtp, rtpPacket(1), c.portB)
	recv(t, c.a.rtp)

	send(t, c.a.rtp, rtpPacket(2), c.portA)
	recv(t, c.b.rtp)
	attack()
	want = Flow{Foreign: 8, RefusedJunk: 2, RefusedPT: 2, RefusedSource: 4}
	waitFor(t, "refusals after A sent", func() bool { return refusals(c.s.Stats().AtoB) == want })
	send(t, c.b.rtp, rtpPacket(3), c.portB)
	recv(t, c.a.rtp)
	expectNothing(t, c.b.rtp, 50*time.Millisecond)
	expectNothing(t, attacker.rtp, 50*time.Millisecond)
	expectNothing(t, attacker.rtcp, time.Millisecond)
	if st := c.s.Stats(); st.AtoB.Packets != 1 || st.BtoA.Packets != 2 || st.AtoB.Relatched != 0 {
		t.Fatalf("relayed %d A→B and %d B→A, relatched %d; want 1, 2, 0", st.AtoB.Packets, st.BtoA.Packets, st.AtoB.Relatched)
	}
}

// refusals keeps the refusal counters of f.
func refusals(f Flow) Flow {
	return Flow{Foreign: f.Foreign, RefusedJunk: f.RefusedJunk, RefusedPT: f.RefusedPT, RefusedAuth: f.RefusedAuth,
		RefusedSource: f.RefusedSource}
}

func withPT(pkt []byte, pt uint8) []byte {
	pkt[1] = pkt[1]&0x80 | pt
	return pkt
}

// TestLatchStrangerAfterGrace: a host that sends from neither its SDP
// nor its signaling address gets its media through once strangerGrace
// passed; its SDP address, once it sends, takes the latch back.
func TestLatchStrangerAfterGrace(t *testing.T) {
	m := newTestManager(t, 4, netip.Addr{}, nil)
	c := setupCallOpts(t, m, SideOptions{Signaling: netip.MustParseAddr("127.0.0.9")}, SideOptions{})
	third := newPeerAt(t, "127.0.0.77", true)
	send(t, third.rtp, rtpPacket(1), c.portA)
	waitFor(t, "refused within the grace", func() bool { return c.s.Stats().AtoB.RefusedSource == 1 })
	// Let the grace pass without waiting for it.
	e := c.s.streams[0].ends[SideA].(*rtpEndpoint)
	e.rtp.update(func(p peer) peer { p.since -= int64(strangerGrace); return p })
	send(t, third.rtp, rtpPacket(2), c.portA)
	recv(t, c.b.rtp)
	send(t, c.b.rtp, rtpPacket(3), c.portB)
	recv(t, third.rtp)

	send(t, c.a.rtp, rtpPacket(4), c.portA)
	recv(t, c.b.rtp)
	send(t, c.b.rtp, rtpPacket(5), c.portB)
	recv(t, c.a.rtp)
	expectNothing(t, third.rtp, 50*time.Millisecond)
	if st := c.s.Stats().AtoB; st.Relatched != 1 {
		t.Fatalf("relatched %d times, want 1", st.Relatched)
	}
}

// TestLatchSDPPortAtOnce: A announces 127.0.0.4 in its SDP and signals
// from 127.0.0.9, but its socket, bound to the wildcard as baresip's is,
// sends from 127.0.0.1 (the source the route to the SBC picks) with the
// port its SDP named. Its media goes through from the first packet, both
// ways, not after strangerGrace; an attacker on another address and port
// gets nothing, and A's SDP address, once it sends, takes the latch.
func TestLatchSDPPortAtOnce(t *testing.T) {
	m := newTestManager(t, 4, netip.Addr{}, nil)
	s := m.NewSession("call-sdp-port")
	t.Cleanup(s.Close)
	a, b := newPeer(t, true), newPeer(t, true)
	s.Configure(SideA, SideOptions{Signaling: netip.MustParseAddr("127.0.0.9")})
	s.Configure(SideB, SideOptions{Signaling: loopback})
	toB, err := s.Offer(SideA, sipSDP("127.0.0.4", portOfConn(a.rtp)))
	if err != nil {
		t.Fatalf("Offer: %v", err)
	}
	toA, err := s.Answer(SideB, b.sdp())
	if err != nil {
		t.Fatalf("Answer: %v", err)
	}
	portA, portB := mPort(t, toA, 0), mPort(t, toB, 0)
	attacker := newPeerAt(t, "127.0.0.66", true)
	send(t, attacker.rtp, withSSRC(rtpPacket(9), 0x66), portA)
	waitFor(t, "the attacker refused", func() bool { return s.Stats().AtoB.RefusedSource == 1 })
	send(t, a.rtp, rtpPacket(1), portA)
	recv(t, b.rtp)
	send(t, b.rtp, rtpPacket(2), portB)
	recv(t, a.rtp)
	send(t, a.rtcp, rtcpPacket(), portA+1)
	recv(t, b.rtcp)
	send(t, attacker.rtp, withSSRC(rtpPacket(10), 0x66), portA)
	waitFor(t, "the attacker refused again", func() bool { return s.Stats().AtoB.RefusedSource == 2 })
	expectNothing(t, attacker.rtp, 50*time.Millisecond)
	expectNothing(t, b.rtp, time.Millisecond)

	sdpSide, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 4), Port: portOfConn(a.rtp)})
	if err != nil {
		t.Fatalf("listen on A's SDP address: %v", err)
	}
	t.Cleanup(func() { sdpSide.Close() })
	send(t, sdpSide, rtpPacket(3), portA)
	recv(t, b.rtp)
	send(t, b.rtp, rtpPacket(4), portB)
	recv(t, sdpSide)
	if st := s.Stats().AtoB; st.Packets != 2 || st.Relatched != 1 {
		t.Fatalf("relayed %d A→B, relatched %d; want 2 and 1", st.Packets, st.Relatched)
	}
}

// TestLatchFollowsRebinding: A's NAT gives it a new address mid-call. Its
// stream (same SSRC, next sequence numbers) from the new address is
// refused while the old one may still be sending, then taken once the
// old one has been silent for relatchSilence; RTCP follows from the new
// address with the stream's SSRC. A stranger with another SSRC, or too
// far in the sequence, does not.
func TestLatchFollowsRebinding(t *testing.T) {
	m := newTestManager(t, 4, netip.Addr{}, nil)
	c := setupCallOpts(t, m, SideOptions{Signaling: loopback}, SideOptions{})
	for seq := range uint16(3) {
		send(t, c.a.rtp, rtpPacket(seq), c.portA)
		recv(t, c.b.rtp)
	}
	// The new address keeps sending every 20 ms until its packets pass;
	// so does an attacker, with another SSRC and with the stream's SSRC
	// too far ahead.
	attacker := newPeerAt(t, "127.0.0.66", true)
	nat := newPeerAt(t, "127.0.0.88", true)
	seq := uint16(3)
	deadline := time.Now().Add(5 * time.Second)
	for c.s.Stats().AtoB.Relatched == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the rebound stream was never followed: %+v", c.s.Stats().AtoB)
		}
		send(t, attacker.rtp, withSSRC(rtpPacket(seq), 0x66), c.portA)
		send(t, attacker.rtp, rtpPacket(2+relatchMaxAhead+1), c.portA)
		send(t, nat.rtp, rtpPacket(seq), c.portA)
		seq++
		time.Sleep(20 * time.Millisecond)
	}
	if got, _ := recv(t, c.b.rtp); len(got) != 172 {
		t.Fatalf("B got %d bytes", len(got))
	}
	send(t, c.b.rtp, rtpPacket(100), c.portB)
	recv(t, nat.rtp)
	expectNothing(t, c.a.rtp, 50*time.Millisecond)

	rr := rtcpPacket() // sender SSRC 0xdeadbeef, the stream's
	send(t, attacker.rtcp, rr, c.portA+1)
	send(t, nat.rtcp, rr, c.portA+1)
	if got, _ := recv(t, c.b.rtcp); len(got) != len(rr) {
		t.Fatalf("B got %d bytes of RTCP", len(got))
	}
	send(t, c.b.rtcp, rtcpPacket(), c.portB+1)
	recv(t, nat.rtcp)
	expectNothing(t, attacker.rtcp, 50*time.Millisecond)
	expectNothing(t, attacker.rtp, time.Millisecond)
	// The RTCP socket had no source yet: its first latch is no move.
	if st := c.s.Stats().AtoB; st.Relatched != 1 || st.RefusedSource < 3 {
		t.Fatalf("relatched %d times, refused %d for their source; want 1 and at least 3", st.Relatched, st.RefusedSource)
	}
}

// TestRelayRewritesSDES: RTCP crossing the SBC carries the SBC's CNAME
// toward each side and nothing of the sender's SDES items.
func TestRelayRewritesSDES(t *testing.T) {
	m := newTestManager(t, 4, netip.Addr{}, nil)
	c := setupCall(t, m)
	send(t, c.a.rtp, rtpPacket(1), c.portA)
	recv(t, c.b.rtp)
	send(t, c.b.rtp, rtpPacket(1), c.portB)
	recv(t, c.a.rtp)
	send(t, c.a.rtcp, rtcpWithSDES(t, 0xdeadbeef, "alice@192.0.2.10", "Linphone/5.2"), c.portA+1)
	checkSDES(t, c.b.rtcp, "A→B", c.s.streams[0].flows[SideA].norm.OutSSRC(), c.s.cname[SideB])
	send(t, c.b.rtcp, rtcpWithSDES(t, 0xdeadbeef, "bob@pbx.internal", "Asterisk PBX 20"), c.portB+1)
	checkSDES(t, c.a.rtcp, "B→A", c.s.streams[0].flows[SideB].norm.OutSSRC(), c.s.cname[SideA])
}

// rtcpWithSDES is a compound of a receiver report and an SDES with a
// CNAME and a TOOL item, from ssrc.
func rtcpWithSDES(t testing.TB, ssrc uint32, cname, tool string) []byte {
	t.Helper()
	b, err := rtcp.Marshal([]rtcp.Packet{
		&rtcp.ReceiverReport{SSRC: ssrc},
		&rtcp.SourceDescription{Chunks: []rtcp.SourceDescriptionChunk{{Source: ssrc, Items: []rtcp.SourceDescriptionItem{
			{Type: rtcp.SDESCNAME, Text: cname}, {Type: rtcp.SDESTool, Text: tool}}}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// checkSDES reads one RTCP compound from conn and fails unless its only
// SDES item is the CNAME cname of ssrc.
func checkSDES(t *testing.T, conn *net.UDPConn, dir string, ssrc uint32, cname string) {
	t.Helper()
	got, _ := recv(t, conn)
	checkSDESItems(t, dir, got, ssrc, cname)
}

// checkSDESItems fails unless the only SDES item of the compound pkt is
// the CNAME cname of ssrc.
func checkSDESItems(t *testing.T, dir string, pkt []byte, ssrc uint32, cname string) {
	t.Helper()
	pkts, err := rtcp.Unmarshal(pkt)
	if err != nil {
		t.Fatalf("%s: %v in %x", dir, err, pkt)
	}
	type item struct {
		ssrc uint32
		typ  rtcp.SDESType
		text string
	}
	var items []item
	for _, p := range pkts {
		if sd, ok := p.(*rtcp.SourceDescription); ok {
			for _, c := range sd.Chunks {
				for _, it := range c.Items {
					items = append(items, item{c.Source, it.Type, it.Text})
				}
			}
		}
	}
	want := item{ssrc, rtcp.SDESCNAME, cname}
	if len(items) != 1 || items[0] != want {
		t.Fatalf("%s: SDES items %+v, want only %+v", dir, items, want)
	}
}

// TestLatchKeepsEarlySource: B answers and sends RTP in the same
// millisecond, from its signaling address (its NAT's) while its SDP names
// another (baresip sends from 127.0.0.1 whatever its SDP says). The SBC
// latches that source before it applies the answer; once it has, the
// source keeps working both ways for the rest of the call, and an
// attacker on another address still takes nothing, within the grace and
// after it.
func TestLatchKeepsEarlySource(t *testing.T) {
	m := newTestManager(t, 4, netip.Addr{}, nil)
	s := m.NewSession("call-early")
	t.Cleanup(s.Close)
	a, b := newPeer(t, true), newPeer(t, true)
	s.Configure(SideA, SideOptions{Signaling: loopback})
	s.Configure(SideB, SideOptions{Signaling: loopback})
	toB, err := s.Offer(SideA, a.sdp())
	if err != nil {
		t.Fatalf("Offer: %v", err)
	}
	portB := mPort(t, toB, 0)
	send(t, b.rtp, rtpPacket(1), portB)
	recv(t, a.rtp)
	// The answer names an address B never sends from, with no one there.
	toA, err := s.Answer(SideB, sipSDP("127.0.0.4", portOfConn(b.rtp)))
	if err != nil {
		t.Fatalf("Answer: %v", err)
	}
	portA := mPort(t, toA, 0)
	for seq := uint16(2); seq < 5; seq++ {
		send(t, b.rtp, rtpPacket(seq), portB)
		recv(t, a.rtp)
		send(t, a.rtp, rtpPacket(seq), portA)
		recv(t, b.rtp)
	}
	attacker := newPeerAt(t, "127.0.0.66", true)
	send(t, attacker.rtp, withSSRC(rtpPacket(9), 0x66), portB)
	e := s.streams[0].ends[SideB].(*rtpEndpoint)
	e.rtp.update(func(p peer) peer { p.since -= int64(strangerGrace); return p })
	send(t, attacker.rtp, withSSRC(rtpPacket(10), 0x66), portB)
	waitFor(t, "the attacker's packets refused", func() bool { return s.Stats().BtoA.RefusedSource == 2 })
	send(t, a.rtp, rtpPacket(5), portA)
	recv(t, b.rtp)
	expectNothing(t, a.rtp, 50*time.Millisecond)
	expectNothing(t, attacker.rtp, time.Millisecond)
	if st := s.Stats(); st.BtoA.Packets != 4 || st.AtoB.Packets != 4 || st.BtoA.Relatched != 0 {
		t.Fatalf("relayed %d B→A and %d A→B, relatched %d; want 4, 4, 0", st.BtoA.Packets, st.AtoB.Packets, st.BtoA.Relatched)
	}
}

// TestLearnFirstSDP: what the side's first SDP, and a later one, leave of
// a latch. A source the signaling vouches for keeps it; a stranger that
// latched before the SDP (after the grace) starts over without being
// barred; a source the SDP moved away from is barred from the new latch.
func TestLearnFirstSDP(t *testing.T) {
	var (
		sdpAddr  = netip.MustParseAddrPort("192.0.2.10:4000")
		moved    = netip.MustParseAddrPort("192.0.2.11:4000")
		sigIP    = netip.MustParseAddr("198.51.100.7")
		sigSrc   = netip.AddrPortFrom(sigIP, 5000)
		stranger = netip.MustParseAddrPort("203.0.113.9:6000")
	)
	tests := []struct {
		name        string
		before      peer
		learn       netip.AddrPort
		wantLatched bool
		wantAddr    netip.AddrPort
		wantStale   netip.AddrPort
	}{
		{"signaling source before the first SDP", peer{addr: sigSrc, latched: true, signal: sigIP}, sdpAddr, true, sigSrc, netip.AddrPort{}},
		{"SDP address before the first SDP", peer{addr: sdpAddr, latched: true, signal: sigIP}, sdpAddr, true, sdpAddr, netip.AddrPort{}},
		{"stranger before the first SDP", peer{addr: stranger, latched: true, signal: sigIP}, sdpAddr, false, sdpAddr, netip.AddrPort{}},
		{"nothing latched before the first SDP", peer{signal: sigIP}, sdpAddr, false, sdpAddr, netip.AddrPort{}},
		{"the SDP moves the stream", peer{addr: sigSrc, latched: true, sdp: sdpAddr, signal: sigIP}, moved, false, moved, sigSrc},
		{"the same SDP again", peer{addr: sigSrc, latched: true, sdp: sdpAddr, signal: sigIP}, sdpAddr, true, sigSrc, netip.AddrPort{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := &sock{}
			before := tc.before
			s.dst.Store(&before)
			s.learn(tc.learn, false, sigIP)
			p := s.dst.Load()
			if p.latched != tc.wantLatched || p.addr != tc.wantAddr || p.stale != tc.wantStale || p.sdp != tc.learn {
				t.Fatalf("after learn(%s): %+v; want latched %v to %s, stale %s", tc.learn, p, tc.wantLatched, tc.wantAddr, tc.wantStale)
			}
			// A stranger after the grace: takes the socket only where
			// nothing is latched and it is not the stale source.
			ev := evidence{now: p.since + int64(strangerGrace)}
			if got, want := p.admits(stranger, ev), !p.latched && p.stale != stranger; got != want {
				t.Fatalf("stranger admitted %v, want %v", got, want)
			}
		})
	}
}
