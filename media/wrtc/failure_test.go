package wrtc

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/webrtc/v4"
)

// wrongFingerprint returns fp with its last hex digit changed.
func wrongFingerprint(fp string) string {
	last := fp[len(fp)-1]
	swap := byte('0')
	if last == '0' {
		swap = '1'
	}
	return fp[:len(fp)-1] + string(swap)
}

// TestFingerprintMismatch: a peer certificate that matches no a=fingerprint
// fails the handshake, as DTLS client and as DTLS server.
func TestFingerprintMismatch(t *testing.T) {
	for _, tc := range []struct {
		name       string
		answerRole webrtc.DTLSRole // pion's answer to our offer
		ourSetup   string
	}{
		{"we_client", 0, "active"},
		{"we_server", webrtc.DTLSRoleClient, "passive"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newTestMux(t, false)
			tr := newTestTransport(t, m)
			states := watchState(tr)
			pc := newPeer(t, peerOpts{answerRole: tc.answerRole})
			addTrack(t, pc, "opus")
			offer := buildSDP(t, tr.Local(), tr.OfferSetup(), []mediaLine{opusLine})
			if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
				t.Fatalf("pion SetRemoteDescription: %v", err)
			}
			answer, err := pc.CreateAnswer(nil)
			if err != nil {
				t.Fatal(err)
			}
			gathered := webrtc.GatheringCompletePromise(pc)
			if err := pc.SetLocalDescription(answer); err != nil {
				t.Fatal(err)
			}
			<-gathered
			remote, _ := parseRemote(t, pc.LocalDescription().SDP)
			remote.Fingerprints = []string{wrongFingerprint(remote.Fingerprints[0])}
			if setup, err := tr.SetRemote(remote, true); err != nil || setup != tc.ourSetup {
				t.Fatalf("SetRemote = %q, %v; want %s", setup, err, tc.ourSetup)
			}
			expectFailed(t, tr, states, ReasonFingerprintMismatch)
		})
	}
}

// expectFailed waits for Failed with reason, then checks that the failed
// transport refuses writes and SetRemote and still closes.
func expectFailed(t *testing.T, tr *Transport, states *stateLog, reason string) {
	t.Helper()
	ev := states.wait(t, waitLong)
	if ev.state != StateFailed || ev.reason != reason {
		t.Fatalf("state %v (%q), want failed (%q)", ev.state, ev.reason, reason)
	}
	if err := tr.WriteRTP(rtpPacket(t, 1, 0, 1, nil)); !errors.Is(err, ErrNotConnected) {
		t.Fatalf("WriteRTP after failure = %v", err)
	}
	if _, err := tr.SetRemote(Remote{Ufrag: "abcd", Pwd: strings.Repeat("p", 22), Fingerprints: []string{"sha-256 00"}}, false); !errors.Is(err, ErrFailed) {
		t.Fatalf("SetRemote after failure = %v", err)
	}
	if err := tr.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if ev := states.wait(t, waitLong); ev.state != StateClosed {
		t.Fatalf("state %v after Close", ev.state)
	}
}

// someFingerprint is a syntactically valid fingerprint of no certificate.
var someFingerprint = "sha-256 " + strings.TrimSuffix(strings.Repeat("AB:", 32), ":")

// TestHandshakeTimeout: without a peer ICE times out; with an ICE-only peer
// that never speaks DTLS (or never answers our ClientHello) DTLS times out;
// both within HandshakeTimeout.
func TestHandshakeTimeout(t *testing.T) {
	const timeout = 1500 * time.Millisecond
	short := func(c *Config) { c.HandshakeTimeout = timeout }
	t.Run("ice", func(t *testing.T) {
		t.Parallel()
		tr := newTestTransport(t, newTestMux(t, false), short)
		states := watchState(tr)
		start := time.Now()
		if _, err := tr.SetRemote(Remote{Ufrag: "nobody", Pwd: strings.Repeat("x", 24), Fingerprints: []string{someFingerprint}, Setup: "actpass"}, false); err != nil {
			t.Fatal(err)
		}
		expectFailedWithin(t, states, ReasonICETimeout, start, timeout)
		if err := tr.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
	})
	for _, setup := range []string{"active", "passive"} { // peer's setup: we are server / client
		t.Run("dtls_peer_"+setup, func(t *testing.T) {
			t.Parallel()
			tr := newTestTransport(t, newTestMux(t, false), short)
			states := watchState(tr)
			peer := newICEPeer(t)
			ufrag, pwd, _ := peer.GetLocalUserCredentials()
			start := time.Now()
			if _, err := tr.SetRemote(Remote{Ufrag: ufrag, Pwd: pwd, Fingerprints: []string{someFingerprint}, Setup: setup}, false); err != nil {
				t.Fatal(err)
			}
			dialICE(t, peer, tr.Local())
			expectFailedWithin(t, states, ReasonDTLSTimeout, start, timeout)
		})
	}
}

func expectFailedWithin(t *testing.T, states *stateLog, reason string, start time.Time, timeout time.Duration) {
	t.Helper()
	ev := states.wait(t, 2*timeout+waitLong)
	if ev.state != StateFailed || ev.reason != reason {
		t.Fatalf("state %v (%q), want failed (%q)", ev.state, ev.reason, reason)
	}
	if took := time.Since(start); took < timeout {
		t.Fatalf("failed after %v, before the %v timeout", took, timeout)
	}
}

// newICEPeer is a full, controlling pion/ice agent on loopback: a peer that
// does ICE and nothing else.
func newICEPeer(t *testing.T) *ice.Agent {
	t.Helper()
	a, err := ice.NewAgentWithOptions(
		ice.WithNetworkTypes([]ice.NetworkType{ice.NetworkTypeUDP4}),
		ice.WithCandidateTypes([]ice.CandidateType{ice.CandidateTypeHost}),
		ice.WithMulticastDNSMode(ice.MulticastDNSModeDisabled),
		ice.WithIncludeLoopback(),
		ice.WithIPFilter(func(ip net.IP) bool { return ip.IsLoopback() }),
	)
	if err != nil {
		t.Fatalf("ice peer: %v", err)
	}
	t.Cleanup(func() { _ = a.GracefulClose() })
	done := make(chan struct{})
	if err := a.OnCandidate(func(c ice.Candidate) {
		if c == nil {
			close(done)
		}
	}); err != nil {
		t.Fatal(err)
	}
	if err := a.GatherCandidates(); err != nil {
		t.Fatal(err)
	}
	<-done
	return a
}

// dialICE connects peer to our transport's candidates as the controlling agent.
func dialICE(t *testing.T, peer *ice.Agent, local Params) {
	t.Helper()
	for _, raw := range local.Candidates {
		c, err := ice.UnmarshalCandidate(raw)
		if err != nil {
			t.Fatalf("our candidate %q: %v", raw, err)
		}
		if err := peer.AddRemoteCandidate(c); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	if _, err := peer.Dial(ctx, local.Ufrag, local.Pwd); err != nil {
		t.Fatalf("ice peer dial: %v", err)
	}
}

// TestConsentLoss: when the peer goes away after connecting, the transport
// fails with ice_disconnected once ConsentTimeout passes without STUN.
func TestConsentLoss(t *testing.T) {
	m := newTestMux(t, false)
	tr := newTestTransport(t, m, func(c *Config) { c.ConsentTimeout = 1500 * time.Millisecond })
	states := watchState(tr)
	pc := newPeer(t, peerOpts{})
	addTrack(t, pc, "opus")
	answerPion(t, tr, pc, offerFrom(t, pc, false), []mediaLine{opusLine})
	states.connected(t)
	if err := pc.Close(); err != nil {
		t.Fatal(err)
	}
	ev := states.wait(t, waitLong)
	if ev.state != StateFailed || ev.reason != ReasonICEDisconnected {
		t.Fatalf("state %v (%q), want failed (%q)", ev.state, ev.reason, ReasonICEDisconnected)
	}
}
