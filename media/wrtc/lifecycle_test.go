package wrtc

import (
	"bytes"
	"errors"
	"runtime"
	"runtime/pprof"
	"strings"
	"testing"
	"time"
)

// settleGoroutines waits until at most n goroutines run, and fails with a
// dump of them if that does not happen within waitLong.
func settleGoroutines(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(waitLong)
	for runtime.NumGoroutine() > n {
		if time.Now().After(deadline) {
			var buf bytes.Buffer
			_ = pprof.Lookup("goroutine").WriteTo(&buf, 1)
			t.Fatalf("%d goroutines, want <= %d:\n%s", runtime.NumGoroutine(), n, buf.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestCloseReleasesEverything: a connected transport leaves no goroutine
// behind after Close, and the Mux keeps serving a second transport.
func TestCloseReleasesEverything(t *testing.T) {
	m := newTestMux(t, true)
	base := runtime.NumGoroutine()
	for round := range 2 {
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
		expectUsToPeer(t, tr, got, opusLine, &seqOut)

		if err := pc.Close(); err != nil {
			t.Fatalf("round %d: pion Close: %v", round, err)
		}
		if err := tr.Close(); err != nil {
			t.Fatalf("round %d: Close: %v", round, err)
		}
		if ev := states.wait(t, waitLong); ev.state != StateClosed {
			t.Fatalf("round %d: state %v after Close", round, ev.state)
		}
		if err := tr.Close(); err != nil {
			t.Fatalf("round %d: second Close: %v", round, err)
		}
		if err := tr.WriteRTP(rtpPacket(t, opusLine.ssrc, opusLine.pt, 1, nil)); !errors.Is(err, ErrNotConnected) {
			t.Fatalf("round %d: WriteRTP after Close = %v", round, err)
		}
		if _, err := tr.SetRemote(Remote{Ufrag: "abcd", Pwd: strings.Repeat("p", 22), Fingerprints: []string{someFingerprint}}, false); !errors.Is(err, ErrClosed) {
			t.Fatalf("round %d: SetRemote after Close = %v", round, err)
		}
		settleGoroutines(t, base)
	}
}

// TestCloseEarly: closing before SetRemote, and during the handshake,
// releases every goroutine.
func TestCloseEarly(t *testing.T) {
	m := newTestMux(t, false)
	base := runtime.NumGoroutine()
	// Before SetRemote.
	tr := newTestTransport(t, m)
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	settleGoroutines(t, base)
	// During the handshake.
	tr = newTestTransport(t, m)
	if _, err := tr.SetRemote(Remote{Ufrag: "nobody", Pwd: strings.Repeat("x", 24), Fingerprints: []string{someFingerprint}, Setup: "actpass"}, false); err != nil {
		t.Fatal(err)
	}
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	settleGoroutines(t, base)
}

// TestCloseFromCallback: Close called by the OnState callback on failure
// returns and releases the transport.
func TestCloseFromCallback(t *testing.T) {
	m := newTestMux(t, false)
	base := runtime.NumGoroutine()
	tr := newTestTransport(t, m, func(c *Config) { c.HandshakeTimeout = 200 * time.Millisecond })
	closed := make(chan error, 1)
	tr.OnState(func(s State, _ string) {
		if s == StateFailed {
			closed <- tr.Close()
		}
	})
	if _, err := tr.SetRemote(Remote{Ufrag: "nobody", Pwd: strings.Repeat("x", 24), Fingerprints: []string{someFingerprint}}, false); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-closed:
		if err != nil {
			t.Fatalf("Close from callback: %v", err)
		}
	case <-time.After(waitLong):
		t.Fatal("Close from the callback did not return")
	}
	settleGoroutines(t, base)
}

func TestSetRemoteValidation(t *testing.T) {
	m := newTestMux(t, false)
	pwd := strings.Repeat("p", 22)
	for _, tc := range []struct {
		name      string
		r         Remote
		weOffered bool
	}{
		{"no_ufrag", Remote{Pwd: pwd, Fingerprints: []string{someFingerprint}}, false},
		{"no_fingerprint", Remote{Ufrag: "abcd", Pwd: pwd}, false},
		{"bad_fingerprint_hash", Remote{Ufrag: "abcd", Pwd: pwd, Fingerprints: []string{"md5 00:11"}}, false},
		{"answer_actpass", Remote{Ufrag: "abcd", Pwd: pwd, Fingerprints: []string{someFingerprint}, Setup: "actpass"}, true},
		{"holdconn", Remote{Ufrag: "abcd", Pwd: pwd, Fingerprints: []string{someFingerprint}, Setup: "holdconn"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := newTestTransport(t, m)
			if _, err := tr.SetRemote(tc.r, tc.weOffered); err == nil {
				t.Fatal("SetRemote accepted invalid input")
			}
			if tr.OfferSetup() != "actpass" {
				t.Fatal("a rejected SetRemote fixed the role")
			}
		})
	}
}

func TestRoleChoice(t *testing.T) {
	for _, tc := range []struct {
		setup     string
		weOffered bool
		want      string
	}{
		{"actpass", false, "passive"},
		{"active", false, "passive"},
		{"passive", false, "active"},
		{"active", true, "passive"},
		{"passive", true, "active"},
		{"", false, "passive"},
	} {
		r, err := chooseRole(tc.setup, tc.weOffered)
		if err != nil || r.setup() != tc.want {
			t.Errorf("chooseRole(%q, %v) = %v, %v; want %s", tc.setup, tc.weOffered, r.setup(), err, tc.want)
		}
	}
}

func TestFingerprint(t *testing.T) {
	cert, err := testCert()
	if err != nil {
		t.Fatal(err)
	}
	fp, err := Fingerprint(cert)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(fp, "sha-256 ") || len(fp) != len("sha-256 ")+32*3-1 || strings.ToUpper(fp[8:]) != fp[8:] {
		t.Fatalf("Fingerprint = %q", fp)
	}
	der := cert.Certificate[0]
	if !matchFingerprint(der, []string{"sha-1 00", strings.ToLower(fp)}) {
		t.Fatal("own fingerprint (lower case) does not match")
	}
	if matchFingerprint(der, []string{wrongFingerprint(fp), "bogus", "sha-999 00"}) {
		t.Fatal("wrong fingerprints match")
	}
	sha1 := "sha-1 " + hexDigest(fingerprintHashes["sha-1"], der)
	if !matchFingerprint(der, []string{sha1}) {
		t.Fatal("sha-1 fingerprint does not match")
	}
}
