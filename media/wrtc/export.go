package wrtc

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/srtp/v3"
)

// TransportState is what another process needs to continue a connected
// transport without a new DTLS handshake (issue 19): the peer keeps its
// ICE session and its SRTP contexts, so the survivor answers its consent
// checks with the same credentials and continues SRTP with the same keys
// and counters.
type TransportState struct {
	Ufrag       string `json:"ufrag"` // ours
	Pwd         string `json:"pwd"`
	Remote      Remote `json:"remote"`
	Setup       string `json:"setup"`       // our DTLS role: active or passive ("actpass": none yet)
	Fingerprint string `json:"fingerprint"` // ours, as the peer knows it
	// Profile is the SRTP profile (RFC 5764 name); "" when the transport
	// was not connected: then there are no keys.
	Profile    string `json:"profile,omitempty"`
	LocalKey   []byte `json:"local_key,omitempty"`
	LocalSalt  []byte `json:"local_salt,omitempty"`
	RemoteKey  []byte `json:"remote_key,omitempty"`
	RemoteSalt []byte `json:"remote_salt,omitempty"`
	// Peer is the remote address of the selected pair over UDP: SRTP goes
	// there at once after Restore, before the peer's next consent check.
	Peer netip.AddrPort `json:"peer,omitzero"`
	// TxROC and TxSRTCP are, by SSRC we send, the SRTP rollover counter
	// and the next SRTCP index; RxROC, by SSRC the peer sends, its
	// rollover counter.
	TxROC   map[uint32]uint32 `json:"tx_roc,omitempty"`
	TxSRTCP map[uint32]uint32 `json:"tx_srtcp,omitempty"`
	RxROC   map[uint32]uint32 `json:"rx_roc,omitempty"`
}

// Export returns the transport's state; ssrcs are the SSRCs it sends
// (their counters are read from the encrypt context). Before DTLS is up
// the state has no keys.
func (t *Transport) Export(ssrcs []uint32) TransportState {
	t.mu.Lock()
	st := TransportState{
		Ufrag: t.local.Ufrag, Pwd: t.local.Pwd, Remote: t.remote, Setup: t.role.setup(), Fingerprint: t.fp,
	}
	if t.state == StateConnected {
		st.Profile = profileName(t.profile)
		st.LocalKey, st.LocalSalt = t.keys.LocalMasterKey, t.keys.LocalMasterSalt
		st.RemoteKey, st.RemoteSalt = t.keys.RemoteMasterKey, t.keys.RemoteMasterSalt
	}
	t.mu.Unlock()
	if d := t.dst.Load(); d != nil {
		st.Peer = *d
	}
	t.wmu.Lock()
	defer t.wmu.Unlock()
	if t.tx == nil {
		return st
	}
	for _, ssrc := range ssrcs {
		if roc, ok := t.tx.ROC(ssrc); ok {
			if st.TxROC == nil {
				st.TxROC = make(map[uint32]uint32)
			}
			st.TxROC[ssrc] = roc
		}
		if idx, ok := t.tx.Index(ssrc); ok {
			if st.TxSRTCP == nil {
				st.TxSRTCP = make(map[uint32]uint32)
			}
			st.TxSRTCP[ssrc] = idx
		}
	}
	return st
}

// profileByName is profileName's inverse.
func profileByName(name string) (srtp.ProtectionProfile, bool) {
	for _, p := range srtpProfiles {
		if profileName(p) == name {
			return p, true
		}
	}
	return 0, false
}

// srtcpSkip is how far a restored transport moves each SRTCP index past
// the exported one: the reports the old process sent since (one every
// few seconds per stream).
const srtcpSkip = 1000

// Restore continues, on cfg.Mux, a transport another process exported
// (st, with keys): its agent has the same local credentials and answers
// the peer's consent checks, SRTP and SRTCP continue with the same keys
// (outgoing rollover counters as exported, SRTCP indices past them;
// incoming ones as exported or, until a packet confirms them, one past:
// the peer may have wrapped its sequence since st), and no DTLS
// handshake runs: the transport is Connected at once, and SRTP
// goes to st.Peer until the peer's next check selects its path. Only
// keys are needed, so cfg.Certificate may be another than the one the
// peer saw; Local keeps st's fingerprint.
func Restore(cfg Config, st TransportState) (*Transport, error) {
	profile, ok := profileByName(st.Profile)
	if !ok {
		return nil, fmt.Errorf("wrtc: restore: srtp profile %q: not connected or unknown", st.Profile)
	}
	if st.Ufrag == "" || st.Pwd == "" || st.Remote.Ufrag == "" || st.Remote.Pwd == "" {
		return nil, errors.New("wrtc: restore: ICE credentials missing")
	}
	rl := roleActive
	switch st.Setup {
	case "active":
	case "passive":
		rl = rolePassive
	default:
		return nil, fmt.Errorf("wrtc: restore: dtls setup %q is not active or passive", st.Setup)
	}
	keys := srtp.SessionKeys{
		LocalMasterKey: st.LocalKey, LocalMasterSalt: st.LocalSalt,
		RemoteMasterKey: st.RemoteKey, RemoteMasterSalt: st.RemoteSalt,
	}
	rx, tx, err := newSRTPContexts(profile, keys)
	if err != nil {
		return nil, fmt.Errorf("wrtc: restore: %w", err)
	}
	for ssrc, roc := range st.TxROC {
		tx.SetROC(ssrc, roc)
	}
	for ssrc, idx := range st.TxSRTCP {
		tx.SetIndex(ssrc, idx+srtcpSkip)
	}
	for ssrc, roc := range st.RxROC {
		rx.restoreROC(ssrc, roc)
	}
	t, err := newTransport(cfg, ice.WithLocalCredentials(st.Ufrag, st.Pwd))
	if err != nil {
		return nil, err
	}
	if st.Fingerprint != "" {
		t.fp = st.Fingerprint
		t.local.Fingerprint = st.Fingerprint
	}
	if err := t.startRestored(st, rl, profile, keys, rx, tx); err != nil {
		_ = t.Close()
		return nil, err
	}
	return t, nil
}

// startRestored starts ICE as New's SetRemote would, then installs the
// SRTP contexts and moves to Connected without a handshake.
func (t *Transport) startRestored(st TransportState, rl role, profile srtp.ProtectionProfile, keys srtp.SessionKeys, rx, tx *srtpKeys) error {
	t.mu.Lock()
	conn, err := t.agent.StartAccept(st.Remote.Ufrag, st.Remote.Pwd)
	if err != nil {
		t.mu.Unlock()
		return fmt.Errorf("wrtc: restore: start ice: %w", err)
	}
	t.conn, t.startedAt, t.remote, t.role, t.started, t.restored = conn, time.Now(), st.Remote, rl, true, true
	t.profile, t.keys = profile, keys
	t.mu.Unlock()
	t.d.install(rx)
	t.wmu.Lock()
	t.path, t.tx = conn, tx
	t.wmu.Unlock()
	if st.Peer.IsValid() {
		peer := netip.AddrPortFrom(st.Peer.Addr().Unmap(), st.Peer.Port())
		t.cfg.Mux.route(peer, t)
		t.dst.Store(&peer)
	}
	t.workers.Add(1)
	go t.readLoop(conn)
	go func() {
		defer close(t.supervised)
		t.watch()
	}()
	t.setState(StateConnected, "")
	t.log.Info("webrtc transport restored", "dtls_role", rl.setup(), "peer", st.Peer, "srtp_profile", st.Profile)
	return nil
}

// Restored reports whether Restore made the transport.
func (t *Transport) Restored() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.restored
}
