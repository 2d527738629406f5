package wrtc

import (
	"bytes"
	"encoding/binary"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/dtls/v3"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// expectPeerToUs sends RTP on track until sink gets one with the right
// payload, and returns how many packets that took.
func expectPeerToUs(t *testing.T, track *webrtc.TrackLocalStaticRTP, sink *chanSink, pt uint8, seq *uint16) {
	t.Helper()
	deadline := time.Now().Add(waitLong)
	for time.Now().Before(deadline) {
		*seq++
		n := int(*seq)
		err := track.WriteRTP(&rtp.Packet{
			Header:  rtp.Header{Version: 2, SequenceNumber: *seq, Timestamp: uint32(n) * 960},
			Payload: payloadN(n),
		})
		if err != nil {
			t.Fatalf("pion WriteRTP: %v", err)
		}
		select {
		case raw := <-sink.rtp:
			var p rtp.Packet
			if err := p.Unmarshal(raw); err != nil {
				t.Fatalf("sink got unparsable RTP: %v", err)
			}
			if p.PayloadType != pt {
				t.Fatalf("sink got PT %d, want %d", p.PayloadType, pt)
			}
			if !bytes.Equal(p.Payload, payloadN(int(p.SequenceNumber))) {
				t.Fatalf("sink got a corrupted payload for seq %d", p.SequenceNumber)
			}
			return
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatal("no RTP from pion reached the sink")
}

// expectUsToPeer writes RTP until pion's track reader sees one of them.
func expectUsToPeer(t *testing.T, tr *Transport, got chan []byte, line mediaLine, seq *uint16) {
	t.Helper()
	deadline := time.Now().Add(waitLong)
	for time.Now().Before(deadline) {
		*seq++
		err := tr.WriteRTP(rtpPacket(t, line.ssrc, line.pt, *seq, payloadN(int(*seq))))
		if err != nil && !errors.Is(err, ErrNotConnected) { // no path for a moment during an ICE restart
			t.Fatalf("WriteRTP: %v", err)
		}
		select {
		case payload := <-got:
			if !bytes.HasPrefix(payload, []byte("pkt-")) || len(payload) != 160 {
				t.Fatalf("pion got payload %q", payload)
			}
			return
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatal("no RTP from us reached pion")
}

// TestPionOffers: pion offers audio (actpass), we answer passive with
// a=ice-lite; media flows both ways with each SRTP profile, and of a
// browser's profiles (in libwebrtc's order, AES-CM-80 first) we pick
// AES-256-GCM.
func TestPionOffers(t *testing.T) {
	for _, tc := range []struct {
		name     string
		profiles []dtls.SRTPProtectionProfile
		want     dtls.SRTPProtectionProfile
	}{
		{"aead_aes_256_gcm", []dtls.SRTPProtectionProfile{dtls.SRTP_AEAD_AES_256_GCM}, dtls.SRTP_AEAD_AES_256_GCM},
		{"aead_aes_128_gcm", []dtls.SRTPProtectionProfile{dtls.SRTP_AEAD_AES_128_GCM}, dtls.SRTP_AEAD_AES_128_GCM},
		{"aes128_cm_hmac_sha1_80", []dtls.SRTPProtectionProfile{dtls.SRTP_AES128_CM_HMAC_SHA1_80}, dtls.SRTP_AES128_CM_HMAC_SHA1_80},
		{"chrome_order", chromeProfiles, dtls.SRTP_AEAD_AES_256_GCM},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newTestMux(t, false)
			tr := newTestTransport(t, m)
			states := watchState(tr)
			if got := tr.OfferSetup(); got != "actpass" {
				t.Fatalf("OfferSetup before SetRemote = %q, want actpass", got)
			}
			pc := newPeer(t, peerOpts{profiles: tc.profiles})
			track := addTrack(t, pc, "opus")
			got := peerTracks(pc)
			rm := answerPion(t, tr, pc, offerFrom(t, pc, false), []mediaLine{opusLine})
			sink := newChanSink()
			tr.SetRoutes([]Route{{PTs: []uint8{opusLine.pt}, SSRCs: rm[0].ssrcs, Sink: sink}})
			states.connected(t)
			if got := tr.OfferSetup(); got != "passive" {
				t.Fatalf("OfferSetup after pion's actpass offer = %q, want passive", got)
			}
			var seqIn, seqOut uint16
			expectPeerToUs(t, track, sink, opusLine.pt, &seqIn)
			expectUsToPeer(t, tr, got, opusLine, &seqOut)
			c := tr.Counters()
			if c.RTPIn == 0 || c.RTPOut == 0 || c.DTLSPackets == 0 || c.SRTPAuthFail != 0 {
				t.Fatalf("counters %+v", c)
			}
			if want := profileName(srtpProfiles[tc.want]); profileName(tr.srtpProfile()) != want {
				t.Fatalf("negotiated %s, want %s", profileName(tr.srtpProfile()), want)
			}
			if !raceEnabled { // WriteRTP over the real ICE path (UDP mux) allocates nothing
				pkt := rtpPacket(t, opusLine.ssrc, opusLine.pt, 0, payloadN(0))
				if n := testing.AllocsPerRun(100, func() {
					seqOut++
					binary.BigEndian.PutUint16(pkt[2:], seqOut)
					_ = tr.WriteRTP(pkt)
				}); n != 0 {
					t.Fatalf("WriteRTP over ICE: %v allocs per packet", n)
				}
			}
		})
	}
}

// TestWeOffer: we offer actpass with a=ice-lite and pion answers. A browser
// answers active (we become the DTLS server); pion, being the ICE controller
// against a lite peer, answers passive by default (we become the client).
// AES-256-GCM, pion's first choice, is negotiated in both roles, and a peer
// with AES-CM-80 only gets it in both.
func TestWeOffer(t *testing.T) {
	cm80 := []dtls.SRTPProtectionProfile{dtls.SRTP_AES128_CM_HMAC_SHA1_80}
	for _, tc := range []struct {
		name       string
		answerRole webrtc.DTLSRole
		peerSetup  string
		ourSetup   string
		profiles   []dtls.SRTPProtectionProfile
		want       dtls.SRTPProtectionProfile
	}{
		{"peer_active_we_server", webrtc.DTLSRoleClient, "active", "passive", nil, dtls.SRTP_AEAD_AES_256_GCM},
		{"peer_passive_we_client", 0, "passive", "active", nil, dtls.SRTP_AEAD_AES_256_GCM},
		{"peer_active_we_server_cm80", webrtc.DTLSRoleClient, "active", "passive", cm80, dtls.SRTP_AES128_CM_HMAC_SHA1_80},
		{"peer_passive_we_client_cm80", 0, "passive", "active", cm80, dtls.SRTP_AES128_CM_HMAC_SHA1_80},
	} {
		t.Run(tc.name, func(t *testing.T) {
			testWeOffer(t, tc.answerRole, tc.peerSetup, tc.ourSetup, tc.profiles, tc.want)
		})
	}
}

func testWeOffer(t *testing.T, answerRole webrtc.DTLSRole, peerSetup, ourSetup string, profiles []dtls.SRTPProtectionProfile, want dtls.SRTPProtectionProfile) {
	m := newTestMux(t, false)
	tr := newTestTransport(t, m)
	states := watchState(tr)
	var clientHellos, serverHellos atomic.Int32
	pc := newPeer(t, peerOpts{profiles: profiles, answerRole: answerRole, clientHellos: &clientHellos, serverHellos: &serverHellos})
	track := addTrack(t, pc, "opus")
	got := peerTracks(pc)

	offer := buildSDP(t, tr.Local(), tr.OfferSetup(), []mediaLine{opusLine})
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		t.Fatalf("pion SetRemoteDescription(offer): %v\n%s", err, offer)
	}
	answer, err := pc.CreateAnswer(nil)
	if err != nil {
		t.Fatalf("CreateAnswer: %v", err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(answer); err != nil {
		t.Fatalf("SetLocalDescription: %v", err)
	}
	<-gathered
	remote, rm := parseRemote(t, pc.LocalDescription().SDP)
	if remote.Setup != peerSetup {
		t.Fatalf("pion answered a=setup:%s, want %s", remote.Setup, peerSetup)
	}
	setup, err := tr.SetRemote(remote, true)
	if err != nil {
		t.Fatalf("SetRemote: %v", err)
	}
	if setup != ourSetup || tr.OfferSetup() != ourSetup {
		t.Fatalf("role %q / OfferSetup %q, want %s", setup, tr.OfferSetup(), ourSetup)
	}
	sink := newChanSink()
	tr.SetRoutes([]Route{{PTs: []uint8{opusLine.pt}, SSRCs: rm[0].ssrcs, Sink: sink}})
	states.connected(t)
	if got, want := profileName(tr.srtpProfile()), profileName(srtpProfiles[want]); got != want {
		t.Fatalf("negotiated %s, want %s", got, want)
	}

	var seqIn, seqOut uint16
	expectPeerToUs(t, track, sink, opusLine.pt, &seqIn)
	expectUsToPeer(t, tr, got, opusLine, &seqOut)
	peerIsClient := clientHellos.Load() > 0
	if peerIsClient != (ourSetup == "passive") || (serverHellos.Load() > 0) == peerIsClient {
		t.Fatalf("pion sent %d ClientHellos and %d ServerHellos; we are %s",
			clientHellos.Load(), serverHellos.Load(), ourSetup)
	}
	// A repeated answer with the same credentials changes nothing.
	if setup, err := tr.SetRemote(remote, true); err != nil || setup != ourSetup {
		t.Fatalf("repeated SetRemote = %q, %v", setup, err)
	}
}
