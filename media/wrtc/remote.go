package wrtc

import (
	"errors"
	"fmt"
	"slices"
	"time"
)

// Remote is the peer's ICE and DTLS attributes from its SDP.
type Remote struct {
	Ufrag, Pwd   string   // a=ice-ufrag, a=ice-pwd
	Fingerprints []string // a=fingerprint values, "sha-256 AA:.."; one must match the peer's certificate
	Setup        string   // a=setup: active, passive or actpass; empty means active (RFC 4145)
}

// role is our DTLS role, fixed by the first SetRemote.
type role uint8

const (
	roleUnset   role = iota
	roleActive       // DTLS client: we send the ClientHello
	rolePassive      // DTLS server
)

// setup returns the a=setup value that announces r.
func (r role) setup() string {
	switch r {
	case roleActive:
		return "active"
	case rolePassive:
		return "passive"
	default:
		return "actpass"
	}
}

// chooseRole picks our DTLS role from the peer's a=setup (RFC 8842, RFC 5763).
//
// A peer that offers actpass leaves the choice to us and we take passive
// (DTLS server), for two reasons. The DTLS server picks the SRTP profile, and
// Chromium as server picks AES-CM-80 (libwebrtc lists it before the GCM
// profiles to save packet bytes) where we pick AES-GCM. And the latency
// argument of RFC 5763 for an active answerer does not hold for an ICE-lite
// answerer: the peer cannot check a pair before it has our answer, and its
// ClientHello follows its first successful check, when our server is already
// running (see onBindingRequest).
func chooseRole(setup string, weOffered bool) (role, error) {
	switch setup {
	case "actpass":
		if weOffered {
			return roleUnset, errors.New("wrtc: answer has a=setup:actpass (RFC 8842 forbids it in answers)")
		}
		return rolePassive, nil
	case "active", "":
		return rolePassive, nil
	case "passive":
		return roleActive, nil
	default:
		return roleUnset, fmt.Errorf("wrtc: unsupported a=setup:%s", setup)
	}
}

// validate checks what SetRemote needs before it touches the agent.
func (r Remote) validate() error {
	if r.Ufrag == "" || r.Pwd == "" {
		return errors.New("wrtc: remote ICE ufrag and pwd are required")
	}
	for _, fp := range r.Fingerprints {
		if _, _, err := parseFingerprint(fp); err == nil {
			return nil
		}
	}
	return fmt.Errorf("wrtc: no usable remote a=fingerprint in %q", r.Fingerprints)
}

// SetRemote applies the peer's ICE and DTLS attributes. weOffered says
// whether the peer's SDP answers our offer (which always says actpass) or is
// the peer's own offer.
//
// The first call fixes our DTLS role for the transport's life (see
// chooseRole: peer actpass -> we are passive; peer active -> passive; peer
// passive -> active), starts ICE, and starts the handshake clock
// (HandshakeTimeout). DTLS starts at the peer's first valid connectivity
// check, without waiting for its nomination (see onBindingRequest).
//
// Later calls are re-offers and answers. The same ufrag and pwd are a no-op:
// the DTLS association of the first call stays, so a later a=setup or
// a=fingerprint does not change it.
// A different ufrag or pwd in the peer's offer is an ICE restart: our agent
// restarts with a new local ufrag and pwd (Local changes; put them in the
// answer), the DTLS association and SRTP contexts are kept, and media
// resumes once the peer nominates a pair on the new credentials. In an answer
// (weOffered) new credentials are adopted without changing ours, since we
// never restart ICE ourselves.
//
// SetRemote returns the a=setup value for our answer, which is also our
// current role. It fails after Close or a failure, and on invalid input.
func (t *Transport) SetRemote(r Remote, weOffered bool) (string, error) {
	if err := r.validate(); err != nil {
		return "", err
	}
	r.Fingerprints = slices.Clone(r.Fingerprints)

	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case t.closing || t.state == StateClosed:
		return "", ErrClosed
	case t.state == StateFailed:
		return "", ErrFailed
	}
	if t.role == roleUnset {
		rl, err := chooseRole(r.Setup, weOffered)
		if err != nil {
			return "", err
		}
		t.role = rl
	}
	switch {
	case !t.started:
		if err := t.startLocked(r); err != nil {
			return "", err
		}
	case r.Ufrag == t.remote.Ufrag && r.Pwd == t.remote.Pwd:
		// A re-offer on the same ICE session: nothing changes.
	case weOffered:
		if err := t.agent.SetRemoteCredentials(r.Ufrag, r.Pwd); err != nil {
			return "", fmt.Errorf("wrtc: set remote credentials: %w", err)
		}
		t.remote = r
	default:
		if err := t.restartLocked(r); err != nil {
			return "", err
		}
	}
	return t.role.setup(), nil
}

// OfferSetup returns the a=setup value for an offer we make: actpass until
// the first SetRemote fixed our role, that role afterwards.
func (t *Transport) OfferSetup() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.role.setup()
}

// startLocked starts ICE as the controlled side and the goroutines that read
// the path and drive the handshake. The caller holds t.mu.
func (t *Transport) startLocked(r Remote) error {
	conn, err := t.agent.StartAccept(r.Ufrag, r.Pwd)
	if err != nil {
		return fmt.Errorf("wrtc: start ice: %w", err)
	}
	t.conn = conn
	t.startedAt = time.Now()
	t.remote = r
	t.started = true
	t.workers.Add(1)
	go t.readLoop(conn)
	go t.supervise(conn, t.role)
	t.log.Debug("webrtc transport started", "dtls_role", t.role.setup())
	return nil
}

// restartLocked runs an ICE restart requested by the peer's offer. The
// agent's Restart drops its credentials, pairs and candidates; we then give
// it the peer's new credentials and gather candidates for the new local
// ufrag. The caller holds t.mu.
func (t *Transport) restartLocked(r Remote) error {
	if err := t.agent.Restart("", ""); err != nil {
		return fmt.Errorf("wrtc: restart ice: %w", err)
	}
	t.pathUp.Store(false)
	t.dst.Store(nil) // SRTP waits for the new path, as the ice.Conn does
	t.cfg.Mux.unroute(t)
	if err := t.agent.SetRemoteCredentials(r.Ufrag, r.Pwd); err != nil {
		return fmt.Errorf("wrtc: restart ice: %w", err)
	}
	if err := t.gather(); err != nil {
		return fmt.Errorf("wrtc: restart ice: %w", err)
	}
	t.remote = r
	select {
	case t.restarted <- struct{}{}:
	default:
	}
	t.log.Info("webrtc ice restart", "ufrag", t.local.Ufrag)
	return nil
}
