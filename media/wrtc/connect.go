package wrtc

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/pion/dtls/v3"
	"github.com/pion/ice/v4"
	"github.com/pion/srtp/v3"
)

// srtpReplayWindow is the replay window of the decrypt contexts, in packets.
// Video bursts reorder; 1024 is what libwebrtc allows too.
const srtpReplayWindow = 1024

// srtpOverhead is the most SRTP/SRTCP adds to a packet: a 16-byte tag plus
// the 4-byte SRTCP index, rounded up.
const srtpOverhead = 64

// dtlsFlightInterval is the first DTLS retransmission timeout; pion doubles
// it on every retransmission. RFC 6347 suggests 1 s, made for paths of
// unknown delay; libwebrtc starts at twice the ICE round trip (at least
// 50 ms). A lost flight then costs a fifth of a second, not a second, and a
// slow peer gets a duplicate flight at worst.
const dtlsFlightInterval = 200 * time.Millisecond

// ourSRTPProfiles are the DTLS-SRTP profiles we offer (as client) and accept
// (as server), most preferred first: AES-GCM costs less CPU per packet than
// AES-CM with HMAC-SHA1 and authenticates in one pass.
var ourSRTPProfiles = []dtls.SRTPProtectionProfile{
	dtls.SRTP_AEAD_AES_256_GCM,
	dtls.SRTP_AEAD_AES_128_GCM,
	dtls.SRTP_AES128_CM_HMAC_SHA1_80,
}

// errPathLost is logged when an ICE restart finds no new pair in time.
var errPathLost = errors.New("no nominated pair after ice restart")

// supervise drives the handshake and then watches the ICE path until Close.
// It is the only goroutine that moves the transport to Connected or Failed.
func (t *Transport) supervise(conn *ice.Conn, rl role) {
	defer close(t.supervised)
	reason, err := t.connect(conn, rl)
	if err != nil {
		if t.ctx.Err() == nil { // not a Close
			t.fail(reason, err)
		}
		return
	}
	t.watch()
}

// connect waits for a selected pair (the peer's first valid check, see
// onBindingRequest), runs the DTLS handshake and derives the SRTP contexts,
// all within HandshakeTimeout. On error it returns the failure reason.
//
// DTLS records that arrive before the handshake starts wait in t.dtlsIn,
// which the reader fills from the moment ICE starts: a ClientHello that
// overtakes our server is kept, never left to the peer's retransmission.
func (t *Transport) connect(conn *ice.Conn, rl role) (string, error) {
	ctx, cancel := context.WithTimeout(t.ctx, t.cfg.HandshakeTimeout)
	defer cancel()
	if err := t.agent.AwaitConnect(ctx); err != nil {
		return ReasonICETimeout, fmt.Errorf("await ice connectivity check: %w", err)
	}
	iceUp := time.Now()
	dc, err := t.newDTLS(conn, rl)
	if err != nil {
		return ReasonDTLSFailed, err
	}
	t.mu.Lock()
	t.dtlsConn = dc
	t.mu.Unlock()
	if err := dc.HandshakeContext(ctx); err != nil {
		return t.handshakeReason(ctx), fmt.Errorf("dtls handshake as %s: %w", rl.setup(), err)
	}
	if t.beforeKeys != nil {
		t.beforeKeys()
	}
	if err := t.startSRTP(dc, rl); err != nil {
		return ReasonDTLSFailed, err
	}
	t.workers.Add(1)
	go t.drainDTLS(dc)
	profile := profileName(t.srtpProfile())
	t.mu.Lock()
	t.timings = Timings{ICE: iceUp.Sub(t.startedAt), DTLS: time.Since(iceUp),
		Started: t.startedAt, Role: rl.setup(), Profile: profile}
	tm := t.timings
	t.mu.Unlock()
	t.setState(StateConnected, "")
	t.log.Info("webrtc transport connected", "dtls_role", rl.setup(), "remote", conn.RemoteAddr(),
		"srtp_profile", profile, "ice_ms", tm.ICE.Milliseconds(), "dtls_ms", tm.DTLS.Milliseconds())
	return "", nil
}

// Timings are how long a transport took to come up.
type Timings struct {
	ICE  time.Duration // first SetRemote to the peer's first valid connectivity check
	DTLS time.Duration // that check to DTLS done and the SRTP keys derived
	// Started is the first SetRemote; Role the SBC's DTLS role (active:
	// client, passive: server); Profile the SRTP profile negotiated.
	Started       time.Time
	Role, Profile string
}

// Timings returns the setup times; zero until the transport is Connected.
func (t *Transport) Timings() Timings {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.timings
}

// handshakeReason names why the DTLS handshake under ctx failed.
func (t *Transport) handshakeReason(ctx context.Context) string {
	switch {
	case t.fpMismatch.Load():
		return ReasonFingerprintMismatch
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return ReasonDTLSTimeout
	default:
		return ReasonDTLSFailed
	}
}

// newDTLS creates the DTLS client or server on the ICE path. Nothing is sent
// until HandshakeContext.
func (t *Transport) newDTLS(conn *ice.Conn, rl role) (*dtls.Conn, error) {
	peer := conn.RemoteAddr()
	if peer == nil { // a restart raced us; the address is only a label
		peer = &net.UDPAddr{}
	}
	pc := &dtlsPacketConn{in: t.dtlsIn, ice: conn, peer: peer}
	shared := []dtls.Option{
		dtls.WithCertificates(t.cfg.Certificate),
		dtls.WithSRTPProtectionProfiles(ourSRTPProfiles...),
		dtls.WithFlightInterval(dtlsFlightInterval),
		dtls.WithExtendedMasterSecret(dtls.RequestExtendedMasterSecret),
		// The certificate is self-signed: it is authenticated by the
		// fingerprint from the signaled SDP instead of a CA chain.
		dtls.WithInsecureSkipVerify(true),
		dtls.WithVerifyPeerCertificate(t.verifyPeer),
		dtls.WithLoggerFactory(pionLogs{log: t.log}),
	}
	if rl == roleActive {
		opts := make([]dtls.ClientOption, 0, len(shared))
		for _, o := range shared {
			opts = append(opts, o)
		}
		dc, err := dtls.ClientWithOptions(pc, peer, opts...)
		if err != nil {
			return nil, fmt.Errorf("create dtls client: %w", err)
		}
		return dc, nil
	}
	opts := make([]dtls.ServerOption, 0, len(shared)+2)
	for _, o := range shared {
		opts = append(opts, o)
	}
	opts = append(opts, dtls.WithClientAuth(dtls.RequireAnyClientCert),
		// No HelloVerifyRequest round trip: its cookie proves that the
		// client owns its source address, which the ICE check that
		// opened this path has proven already (RFC 8445 section 7.3).
		dtls.WithInsecureSkipVerifyHello(true))
	dc, err := dtls.ServerWithOptions(pc, peer, opts...)
	if err != nil {
		return nil, fmt.Errorf("create dtls server: %w", err)
	}
	return dc, nil
}

// verifyPeer checks the peer's certificate against the remote fingerprints.
func (t *Transport) verifyPeer(raw [][]byte, _ [][]*x509.Certificate) error {
	if len(raw) == 0 {
		t.fpMismatch.Store(true)
		return errors.New("wrtc: peer sent no certificate")
	}
	t.mu.Lock()
	fps := t.remote.Fingerprints
	t.mu.Unlock()
	if !matchFingerprint(raw[0], fps) {
		t.fpMismatch.Store(true)
		return ErrFingerprintMismatch
	}
	return nil
}

// srtpProfiles maps the DTLS-negotiated profiles we offer to pion/srtp's.
var srtpProfiles = map[dtls.SRTPProtectionProfile]srtp.ProtectionProfile{
	dtls.SRTP_AEAD_AES_256_GCM:       srtp.ProtectionProfileAeadAes256Gcm,
	dtls.SRTP_AEAD_AES_128_GCM:       srtp.ProtectionProfileAeadAes128Gcm,
	dtls.SRTP_AES128_CM_HMAC_SHA1_80: srtp.ProtectionProfileAes128CmHmacSha1_80,
}

// startSRTP derives the SRTP keys from the DTLS keying material (RFC 5764)
// and publishes the decrypt context to the reader and the encrypt context to
// the send path.
func (t *Transport) startSRTP(dc *dtls.Conn, rl role) error {
	selected, ok := dc.SelectedSRTPProtectionProfile()
	if !ok {
		return errors.New("dtls negotiated no srtp profile")
	}
	profile, ok := srtpProfiles[selected]
	if !ok {
		return fmt.Errorf("dtls negotiated unexpected srtp profile %#x", selected)
	}
	state, ok := dc.ConnectionState()
	if !ok {
		return errors.New("dtls connection state unavailable")
	}
	cfg := srtp.Config{Profile: profile}
	if err := cfg.ExtractSessionKeysFromDTLS(&state, rl == roleActive); err != nil {
		return fmt.Errorf("extract srtp keys: %w", err)
	}
	rx, tx, err := newSRTPContexts(profile, cfg.Keys)
	if err != nil {
		return err
	}
	t.mu.Lock()
	t.profile = profile
	t.keys = cfg.Keys
	t.mu.Unlock()
	t.d.install(rx)
	t.wmu.Lock()
	t.path = t.conn
	t.tx = tx
	t.wmu.Unlock()
	return nil
}

// srtpProfile returns the negotiated profile (0 before DTLS is up).
func (t *Transport) srtpProfile() srtp.ProtectionProfile {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.profile
}

// profileName is the RFC 5764/7714 name of a profile we negotiate.
func profileName(p srtp.ProtectionProfile) string {
	switch p {
	case srtp.ProtectionProfileAeadAes256Gcm:
		return "SRTP_AEAD_AES_256_GCM"
	case srtp.ProtectionProfileAeadAes128Gcm:
		return "SRTP_AEAD_AES_128_GCM"
	case srtp.ProtectionProfileAes128CmHmacSha1_80:
		return "SRTP_AES128_CM_HMAC_SHA1_80"
	default:
		return "none"
	}
}

// newSRTPContexts builds the decrypt contexts (remote keys, with replay
// protection) and the encrypt contexts (local keys): pion's, and ours for
// SRTP with an AEAD-AES-GCM profile.
func newSRTPContexts(profile srtp.ProtectionProfile, k srtp.SessionKeys) (rx, tx *srtpKeys, err error) {
	rx, tx = &srtpKeys{}, &srtpKeys{}
	rx.pion, err = srtp.CreateContext(k.RemoteMasterKey, k.RemoteMasterSalt, profile,
		srtp.SRTPReplayDetectorFactory(newReplayDetector), srtp.SRTCPReplayProtection(srtpReplayWindow))
	if err != nil {
		return nil, nil, fmt.Errorf("create srtp decrypt context: %w", err)
	}
	tx.pion, err = srtp.CreateContext(k.LocalMasterKey, k.LocalMasterSalt, profile)
	if err != nil {
		return nil, nil, fmt.Errorf("create srtp encrypt context: %w", err)
	}
	if !isGCM(profile) {
		return rx, tx, nil
	}
	if rx.gcm, err = newGCMRTP(profile, k.RemoteMasterKey, k.RemoteMasterSalt, true); err != nil {
		return nil, nil, fmt.Errorf("create srtp decrypt context: %w", err)
	}
	if tx.gcm, err = newGCMRTP(profile, k.LocalMasterKey, k.LocalMasterSalt, false); err != nil {
		return nil, nil, fmt.Errorf("create srtp encrypt context: %w", err)
	}
	return rx, tx, nil
}

// drainDTLS reads and discards DTLS application data, so pion's DTLS read
// loop never blocks on it, until the DTLS conn closes.
func (t *Transport) drainDTLS(dc *dtls.Conn) {
	defer t.workers.Done()
	buf := make([]byte, maxPacket)
	for {
		_, err := dc.Read(buf)
		switch {
		case err == nil:
		case errors.Is(err, io.EOF), errors.Is(err, dtls.ErrConnClosed), errors.Is(err, net.ErrClosed):
			if t.ctx.Err() == nil {
				t.log.Info("webrtc peer closed dtls")
			}
			return
		case t.ctx.Err() != nil:
			return
		}
	}
}

// watch follows the ICE path after connect: consent loss fails the
// transport, and an ICE restart must find a new pair within HandshakeTimeout.
func (t *Transport) watch() {
	timer := time.NewTimer(t.cfg.HandshakeTimeout)
	timer.Stop()
	defer timer.Stop()
	var restartDeadline <-chan time.Time
	for {
		select {
		case <-t.ctx.Done():
			return
		case <-t.restarted:
			timer.Reset(t.cfg.HandshakeTimeout)
			restartDeadline = timer.C
		case s := <-t.iceStates:
			switch s {
			case ice.ConnectionStateConnected:
				if restartDeadline != nil && t.hasPath() {
					timer.Stop()
					restartDeadline = nil
					t.log.Info("webrtc ice path up after restart")
				}
			case ice.ConnectionStateDisconnected:
				t.log.Info("webrtc ice disconnected: no consent from the peer")
			case ice.ConnectionStateFailed:
				t.fail(ReasonICEDisconnected, errors.New("ice consent expired"))
				return
			}
		case <-restartDeadline:
			if t.hasPath() { // a stale Connected event was consumed before the new one
				restartDeadline = nil
				continue
			}
			t.fail(ReasonICETimeout, errPathLost)
			return
		}
	}
}

// hasPath reports whether the agent has a selected pair.
func (t *Transport) hasPath() bool {
	p, err := t.agent.GetSelectedCandidatePair()
	return err == nil && p != nil
}

// fail moves to Failed and stops the send path; Close releases the rest.
func (t *Transport) fail(reason string, err error) {
	t.wmu.Lock()
	t.tx = nil
	t.wmu.Unlock()
	if t.setState(StateFailed, reason) {
		t.log.Warn("webrtc transport failed", "reason", reason, "err", err)
	}
}
