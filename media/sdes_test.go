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
