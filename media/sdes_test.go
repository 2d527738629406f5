package media

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/sbc-project/sbc/media/rtpproc"
	"github.com/sbc-project/sbc/media/sdpconv"
)

// TestSDESTrunk: a plain RTP caller toward a trunk configured for SDES-SRTP.
// The trunk gets an RTP/SAVP offer with the SBC's key; media leaves the SBC
// encrypted with that key and what the trunk encrypts with its own key
// reaches the caller in the clear. A packet with a broken tag is dropped
// and counted.
func TestSDESTrunk(t *testing.T) {
	for _, suite := range []string{"AES_CM_128_HMAC_SHA1_80", "AEAD_AES_128_GCM"} {
		t.Run(suite, func(t *testing.T) { testSDESTrunk(t, suite) })
	}
}

func testSDESTrunk(t *testing.T, suite string) {
	m := newTestManager(t, 8, public, nil)
	s := m.NewSession("call-sdes")
	defer s.Close()
	s.Configure(SideB, SideOptions{Kind: KindSRTP})
	a, b := newPeer(t, true), newPeer(t, true)

	offer, err := s.Offer(SideA, a.sdp())
	if err != nil {
		t.Fatalf("Offer: %v", err)
	}
	d, err := sdpconv.Parse(offer)
	if err != nil {
		t.Fatalf("offer toward the trunk does not parse: %v\n%s", err, offer)
	}
	if d.Kind != KindSRTP || d.Media[0].Proto != "RTP/SAVP" || len(d.Media[0].Crypto) == 0 {
		t.Fatalf("offer toward an SDES trunk: kind %s proto %s crypto %q\n%s", d.Kind, d.Media[0].Proto, d.Media[0].Crypto, offer)
	}
	sbcKey, err := rtpproc.ParseCrypto(d.Media[0].Crypto[0])
	if err != nil {
		t.Fatalf("SBC's a=crypto: %v", err)
	}
	// The trunk answers with the suite it likes and its own key.
	peerKey, err := rtpproc.NewCrypto(sbcKey.Tag, suite)
	if err != nil {
		t.Fatal(err)
	}
	if suite != sbcKey.Suite {
		// The SBC offered one suite; a trunk that wants another offers it
		// itself. Re-offer from the trunk's side with that suite.
		t.Logf("SBC offered %s; answering with it and checking %s as the trunk's offer below", sbcKey.Suite, suite)
		peerKey, _ = rtpproc.NewCrypto(sbcKey.Tag, sbcKey.Suite)
	}
	answer := fmt.Appendf(nil, "v=0\r\no=trunk 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"+
		"m=audio %d RTP/SAVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=crypto:%s\r\n",
		portOfConn(b.rtp), peerKey.String())
	toA, err := s.Answer(SideB, answer)
	if err != nil {
		t.Fatalf("Answer: %v", err)
	}
	if bytes.Contains(toA, []byte("crypto")) || bytes.Contains(toA, []byte("SAVP")) {
		t.Fatalf("plain caller got SRTP attributes:\n%s", toA)
	}
	portA, portB := mPort(t, toA, 0), mPort(t, offer, 0)
	exchangeSDES(t, s, a, b, portA, portB, sbcKey, peerKey)

	if suite != sbcKey.Suite {
		// The trunk re-offers with its suite: the SBC follows it.
		trunkKey, _ := rtpproc.NewCrypto(1, suite)
		reoffer := fmt.Appendf(nil, "v=0\r\no=trunk 1 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"+
			"m=audio %d RTP/SAVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=crypto:%s\r\n",
			portOfConn(b.rtp), trunkKey.String())
		if _, err := s.Offer(SideB, reoffer); err != nil {
			t.Fatalf("trunk re-offer: %v", err)
		}
		if _, err := s.Answer(SideA, a.sdp()); err != nil {
			t.Fatalf("caller's answer: %v", err)
		}
		s.mu.Lock()
		local := s.streams[0].ends[SideB].(*rtpEndpoint).sdes.local
		s.mu.Unlock()
		if local.Suite != suite {
			t.Fatalf("SBC kept suite %s after the trunk offered %s", local.Suite, suite)
		}
		exchangeSDES(t, s, a, b, portA, portB, local, trunkKey)
	}
}

// exchangeSDES sends clear RTP from a and SRTP from b and checks each
// arrives at the other end, decrypted or encrypted with the right keys.
func exchangeSDES(t *testing.T, s *Session, a, b *udpPeer, portA, portB int, sbcKey, peerKey rtpproc.Crypto) {
	t.Helper()
	dec, err := sbcKey.Context()
	if err != nil {
		t.Fatal(err)
	}
	enc, err := peerKey.Context()
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		pkt := rtpPacket(uint16(100 + i))
		pkt[12] = byte(i)
		send(t, a.rtp, pkt, portA)
		got, _ := recv(t, b.rtp)
		plain, err := dec.DecryptRTP(nil, got, nil)
		if err != nil {
			t.Fatalf("trunk cannot decrypt packet %d with the SBC's key: %v", i, err)
		}
		if !sameRTPPayload(plain, pkt) {
			t.Fatalf("A→B packet %d payload differs", i)
		}

		var h rtp.Header
		if _, err := h.Unmarshal(pkt); err != nil {
			t.Fatal(err)
		}
		h.SSRC, h.SequenceNumber = 0x1234, uint16(7+i)+uint16(s.Stats().BtoA.Packets)
		clear := append(must(h.Marshal()), pkt[12:]...)
		sec, err := enc.EncryptRTP(nil, clear, nil)
		if err != nil {
			t.Fatal(err)
		}
		send(t, b.rtp, sec, portB)
		got, _ = recv(t, a.rtp)
		if !sameRTPPayload(got, clear) {
			t.Fatalf("B→A packet %d did not arrive decrypted", i)
		}
	}
	// A forged packet: valid header, broken authentication tag.
	before := s.Stats().BtoA.SRTPFailed
	bad := append(rtpPacket(999), make([]byte, 16)...)
	send(t, b.rtp, bad, portB)
	expectNothing(t, a.rtp, 200*time.Millisecond)
	waitFor(t, "srtp failure counted", func() bool { return s.Stats().BtoA.SRTPFailed > before })
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

// sdesCall is a plain caller A and an SDES-SRTP trunk B (signaling from
// 127.0.0.1) in an answered call.
type sdesCall struct {
	s                *Session
	a, b             *udpPeer
	portA, portB     int // the SBC's RTP ports facing A and B
	sbcKey, trunkKey rtpproc.Crypto
}

func newSDESCall(t *testing.T) *sdesCall {
	t.Helper()
	m := newTestManager(t, 8, public, nil)
	c := &sdesCall{s: m.NewSession("call-sdes-latch"), a: newPeer(t, true), b: newPeer(t, true)}
	t.Cleanup(c.s.Close)
	c.s.Configure(SideB, SideOptions{Kind: KindSRTP, Signaling: loopback})
	offer, err := c.s.Offer(SideA, c.a.sdp())
	if err != nil {
		t.Fatalf("Offer: %v", err)
	}
	d, err := sdpconv.Parse(offer)
	if err != nil {
		t.Fatal(err)
	}
	if c.sbcKey, err = rtpproc.ParseCrypto(d.Media[0].Crypto[0]); err != nil {
		t.Fatal(err)
	}
	c.trunkKey, _ = rtpproc.NewCrypto(c.sbcKey.Tag, c.sbcKey.Suite)
	answer := fmt.Appendf(nil, "v=0\r\no=trunk 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"+
		"m=audio %d RTP/SAVP 0\r\na=rtpmap:0 PCMU/8000\r\na=crypto:%s\r\n", portOfConn(c.b.rtp), c.trunkKey.String())
	toA, err := c.s.Answer(SideB, answer)
	if err != nil {
		t.Fatalf("Answer: %v", err)
	}
	c.portA, c.portB = mPort(t, toA, 0), mPort(t, offer, 0)
	return c
}

// TestSDESLatchNeedsAuthentication: toward an SDES-SRTP trunk, packets
// that do not authenticate never latch the SBC's port, whatever their
// source and however long the trunk has been silent; the trunk's own
// packets do, and its media then flows both ways.
func TestSDESLatchNeedsAuthentication(t *testing.T) {
	c := newSDESCall(t)
	s, a, b, portA, portB := c.s, c.a, c.b, c.portA, c.portB
	attacker := newPeerAt(t, "127.0.0.66", true)
	forged := append(rtpPacket(1), make([]byte, 10)...) // valid header, PCMU, a zero tag
	forgedRTCP := append(rtcpPacket(), 0x80, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
	attack := func() {
		t.Helper()
		send(t, attacker.rtp, forged, portB)
		send(t, attacker.rtcp, forgedRTCP, portB+1)
	}
	// Before the trunk sent anything, and after the grace for strangers.
	attack()
	waitFor(t, "forged packets refused", func() bool { return s.Stats().BtoA.RefusedAuth == 2 })
	e := s.streams[0].ends[SideB].(*rtpEndpoint)
	for _, k := range []*sock{e.rtp, e.rtcp} {
		k.update(func(p peer) peer { p.since -= int64(strangerGrace); return p })
	}
	attack()
	waitFor(t, "forged packets refused after the grace", func() bool { return s.Stats().BtoA.RefusedAuth == 4 })
	// A's media goes to the trunk's SDP address, never to the attacker.
	send(t, a.rtp, rtpPacket(1), portA)
	recv(t, b.rtp)

	enc, _ := c.trunkKey.Context()
	sec, err := enc.EncryptRTP(nil, withSSRC(rtpPacket(50), 0x1234), nil)
	if err != nil {
		t.Fatal(err)
	}
	send(t, b.rtp, sec, portB)
	if got, _ := recv(t, a.rtp); len(got) != 172 {
		t.Fatalf("caller got %d bytes", len(got))
	}
	attack()
	waitFor(t, "forged packets refused while latched", func() bool { return s.Stats().BtoA.RefusedAuth == 6 })
	send(t, a.rtp, rtpPacket(2), portA)
	recv(t, b.rtp)
	expectNothing(t, a.rtp, 50*time.Millisecond)
	expectNothing(t, attacker.rtp, time.Millisecond)
	if st := s.Stats().BtoA; st.Foreign != 6 || st.Packets != 1 || st.SRTPFailed != 0 {
		t.Fatalf("B→A: %+v; want 6 refused, 1 relayed, no failure of the latched source", st)
	}
}

// TestSDESRewritesRTCPSDES: RTCP between a plain caller and an SDES-SRTP
// trunk carries, each way, only the SBC's CNAME toward the receiver.
func TestSDESRewritesRTCPSDES(t *testing.T) {
	c := newSDESCall(t)
	enc, _ := c.trunkKey.Context()
	dec, _ := c.sbcKey.Context()
	send(t, c.a.rtp, rtpPacket(1), c.portA)
	recv(t, c.b.rtp)
	sec, err := enc.EncryptRTP(nil, withSSRC(rtpPacket(50), 0x1234), nil)
	if err != nil {
		t.Fatal(err)
	}
	send(t, c.b.rtp, sec, c.portB)
	recv(t, c.a.rtp)

	send(t, c.a.rtcp, rtcpWithSDES(t, 0xdeadbeef, "alice@192.0.2.10", "Linphone/5.2"), c.portA+1)
	got, _ := recv(t, c.b.rtcp)
	plain, err := dec.DecryptRTCP(nil, got, nil)
	if err != nil {
		t.Fatalf("trunk cannot decrypt the SBC's SRTCP: %v", err)
	}
	checkSDESItems(t, "A→B", plain, c.s.streams[0].flows[SideA].norm.OutSSRC(), c.s.cname[SideB])

	sec, err = enc.EncryptRTCP(nil, rtcpWithSDES(t, 0x1234, "gw7@carrier.example", "SBC-X 3.1"), nil)
	if err != nil {
		t.Fatal(err)
	}
	send(t, c.b.rtcp, sec, c.portB+1)
	checkSDES(t, c.a.rtcp, "B→A", c.s.streams[0].flows[SideB].norm.OutSSRC(), c.s.cname[SideA])
}
