package media

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"time"

	"github.com/pion/sdp/v3"

	"github.com/sbc-project/sbc/media/rtpproc"
	"github.com/sbc-project/sbc/media/sdpconv"
	"github.com/sbc-project/sbc/media/wrtc"
)

// Restore continues, in this process, a session another one exported
// with State (issue 19: the survivor of a node's crash takes over its
// calls). Every socket is bound again on the address and port it had,
// with IP_FREEBIND on Linux, so the survivor may restore before the dead
// node's address has moved to it; every latched peer is kept, the
// normalizers continue their output streams past what the old process
// may have sent since st.At, SDES and WebRTC sides continue SRTP with the
// same keys and counters, and WebRTC sides answer the browser's consent
// checks with the same ICE credentials, without a new DTLS handshake.
// notify receives the session's events, as with Notify (nil: none).
//
// A WebRTC side whose DTLS was not up at st.At cannot be restored (there
// are no keys yet): Restore fails, and the call must end.
func (m *Manager) Restore(st SessionState, notify func(Event)) (*Session, error) {
	if st.Version != stateVersion {
		return nil, fmt.Errorf("restore session %s: state version %d, want %d", st.ID, st.Version, stateVersion)
	}
	s := newSession(m, st.ID)
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil, fmt.Errorf("restore session %s: %w", st.ID, ErrClosed)
	}
	m.sessions[s] = struct{}{}
	m.watchLocked()
	m.mu.Unlock()
	if notify != nil {
		s.Notify(notify)
	}
	s.mu.Lock()
	err := s.restore(st, time.Since(st.At))
	s.mu.Unlock()
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("restore session %s: %w", st.ID, err)
	}
	s.logger().Info("media session restored", "streams", len(st.Streams), "age_ms", time.Since(st.At).Milliseconds())
	return s, nil
}

// RestoreJSON is Restore from ReplicaState's JSON, without a notify
// callback (set it with Notify).
func (m *Manager) RestoreJSON(state []byte) (*Session, error) {
	var st SessionState
	if err := json.Unmarshal(state, &st); err != nil {
		return nil, fmt.Errorf("restore session: media state: %w", err)
	}
	return m.Restore(st, nil)
}

// restore rebuilds the session from st, taken elapsed ago. Called under
// s.mu; on error what it built is released by Close.
func (s *Session) restore(st SessionState, elapsed time.Duration) error {
	s.since, s.offered, s.offerFrom = st.Since, st.Offered, st.OfferFrom
	for side := SideA; side <= SideB; side++ {
		if err := s.restoreSide(side, st.Sides[side]); err != nil {
			return fmt.Errorf("side %s: %w", side, err)
		}
	}
	if len(st.OfferSDP) > 0 {
		d, _, err := parseSDP(st.OfferSDP)
		if err != nil {
			return fmt.Errorf("offer: %w", err)
		}
		s.offer = d
		s.restoredBodies().offer = st.OfferSDP
	}
	for side := SideA; side <= SideB; side++ {
		if ws := st.Sides[side].WebRTC; ws != nil {
			if err := s.restoreWebRTC(side, *ws, st, elapsed); err != nil {
				return fmt.Errorf("side %s: webrtc: %w", side, err)
			}
		}
	}
	s.streams = make([]*stream, len(st.Streams))
	for i, ss := range st.Streams {
		if !ss.Relayed {
			continue
		}
		str, err := s.restoreStream(i, ss, st, elapsed)
		if err != nil {
			return fmt.Errorf("m-line %d: %w", i, err)
		}
		s.streams[i] = str
	}
	if err := s.restorePlans(); err != nil {
		return err
	}
	for _, str := range s.streams {
		if str != nil {
			for side := SideA; side <= SideB; side++ {
				str.ends[side].start(str.flows[side], &str.wg)
			}
		}
	}
	if !s.since.IsZero() {
		s.watch.arm(s)
		s.armStateTick()
	}
	return nil
}

// restoreSide takes one side's signaling state.
func (s *Session) restoreSide(side Side, ss SideState) error {
	s.kind[side], s.opts[side], s.cname[side] = ss.Kind, ss.Options, ss.CNAME
	s.hold[side], s.codecs[side] = ss.Hold, ss.Codec
	s.sent[side] = sentSDP{sessID: ss.SessID, version: ss.SDPVer, body: ss.SentSDP}
	if s.cname[side] == "" {
		s.cname[side] = fmt.Sprintf("sbc-%016x", rand.Uint64())
	}
	s.addrSet[side] = ss.AddrSet
	if ss.AddrSet {
		i := -1
		for j, a := range s.m.cfg.Addrs {
			if a.Bind == ss.Bind && a.Public == ss.Public {
				i = j
			}
		}
		if i >= 0 {
			s.addr[side] = i
		} else if ss.Bind.IsValid() && ss.Public.IsValid() {
			if s.restoredAddr == nil {
				s.restoredAddr = new([2]Addr)
			}
			s.restoredAddr[side] = Addr{Bind: ss.Bind.Unmap(), Public: ss.Public.Unmap()}
		} else {
			return errors.New("no media address")
		}
	}
	if len(ss.LastSDP) > 0 {
		d, _, err := parseSDP(ss.LastSDP)
		if err != nil {
			return fmt.Errorf("last sdp: %w", err)
		}
		s.last[side] = d
		s.restoredBodies().last[side] = ss.LastSDP
	}
	return nil
}

// restoreWebRTC rebuilds side's transport on its old port, with the
// outgoing rollover counters moved past the sequence numbers skipped.
func (s *Session) restoreWebRTC(side Side, ws WebRTC, st SessionState, elapsed time.Duration) error {
	mux, own, err := s.m.restoredMux(ws.Local, ws.Shared)
	if err != nil {
		return err
	}
	w := &webrtcSide{mux: mux, port: int(ws.Local.Port()), setup: st.Sides[side].DTLSRole}
	if own != nil {
		w.pr = &pair{port: w.port, rtp: own}
	}
	ts := ws.Transport
	ts.TxROC = make(map[uint32]uint32, len(ws.Transport.TxROC))
	for ssrc, roc := range ws.Transport.TxROC {
		ts.TxROC[ssrc] = roc
	}
	for _, ss := range st.Streams {
		if fs := ss.Flows[side.Other()]; ss.Relayed {
			ts.TxROC[fs.Norm.OutSSRC] += wraps(fs.Norm.Seq, skipFor(fs, st, elapsed))
		}
	}
	t, err := wrtc.Restore(wrtc.Config{Mux: mux, PublicIP: s.public(side), Certificate: s.m.cert,
		HandshakeTimeout: s.m.cfg.HandshakeTimeout, Log: s.sideLogger(-1, side)}, ts)
	if err != nil {
		w.close()
		return err
	}
	w.t = t
	s.watchWebRTC(side, t)
	s.wt[side] = w
	return nil
}

// restoreStream rebuilds one m-line: its endpoints on their old ports
// and its flows continuing their output streams.
func (s *Session) restoreStream(mline int, ss StreamState, st SessionState, elapsed time.Duration) (*stream, error) {
	str := &stream{audio: ss.Audio, m: s.m}
	for side := SideA; side <= SideB; side++ {
		e, err := s.restoreEnd(side, mline, ss, st, elapsed)
		if err != nil {
			for _, o := range str.ends {
				if o != nil {
					o.close()
					o.release()
				}
			}
			return nil, fmt.Errorf("side %s endpoint: %w", side, err)
		}
		str.ends[side] = e
	}
	now := monotonic()
	for side := SideA; side <= SideB; side++ {
		fs := ss.Flows[side]
		f := newFlow(str.ends[side.Other()], fs.Norm.OutSSRC)
		f.norm = rtpproc.RestoreNormalizer(fs.Norm, skipFor(fs, st, elapsed), elapsed, now)
		var err error
		if f.sdes, err = rtpproc.SDESPacket(fs.Norm.OutSSRC, s.cname[side.Other()]); err != nil {
			s.logger().Warn("rtcp sdes toward the side is removed", "mline", mline, "side", side.Other().String(), "err", err)
		}
		f.s, f.from, f.quiet = s, uint8(side), true
		str.flows[side] = f
	}
	str.flows[SideA].back, str.flows[SideB].back = str.flows[SideB], str.flows[SideA]
	s.m.relay.track(str)
	return str, nil
}

// restoreEnd rebuilds the endpoint of m-line mline facing side.
func (s *Session) restoreEnd(side Side, mline int, ss StreamState, st SessionState, elapsed time.Duration) (endpoint, error) {
	es := ss.Ends[side]
	if es.WebRTC {
		w := s.wt[side]
		if w == nil {
			return nil, errors.New("webrtc endpoint without its side's transport")
		}
		return &wrtcEndpoint{w: w}, nil
	}
	ip, port := es.Local.Addr().Unmap(), int(es.Local.Port())
	if !ip.IsValid() || port == 0 || port == 65535 {
		return nil, fmt.Errorf("local address %s is not a port pair", es.Local)
	}
	rtp, err := listenUDPFree(ip, port)
	if err != nil {
		return nil, fmt.Errorf("rtp port: %w", err)
	}
	rtcp, err := listenUDPFree(ip, port+1)
	if err != nil {
		rtp.close()
		return nil, fmt.Errorf("rtcp port: %w", err)
	}
	signal, at := s.opts[side].Signaling, endAt{s: s, mline: mline, side: side}
	e := &rtpEndpoint{pair: &pair{port: port}, ip: ip, eng: &s.m.eng,
		rtp: newSock(rtp, port, signal, at, false), rtcp: newSock(rtcp, port+1, signal, at, true)}
	e.rtp.dst.Store(es.RTP.peer(signal))
	e.rtcp.dst.Store(es.RTCP.peer(signal))
	if es.SDES != nil {
		out := ss.Flows[side.Other()]
		roc := es.SDES.TxROC + wraps(out.Norm.Seq, skipFor(out, st, elapsed))
		if e.sdes, err = restoreSDES(*es.SDES, out.Norm.OutSSRC, roc, ss.Flows[side].InSSRC); err != nil {
			e.close()
			e.release()
			return nil, err
		}
	}
	return e, nil
}

// peer is the socket's knowledge of its side as restored.
func (p PeerState) peer(signal netip.Addr) *peer {
	return &peer{addr: p.Addr, latched: p.Latched, sdp: p.SDP, hold: p.Hold, signal: signal, since: monotonic()}
}

// restoreSDES rebuilds an SDES endpoint's contexts from its a=crypto
// values: outSSRC's stream continues at rollover counter roc (and its
// SRTCP past the exported index), inSSRC's is decrypted from its
// rollover counter or, until a packet confirms it, the next (rocGuess).
func restoreSDES(st SDESState, outSSRC, roc, inSSRC uint32) (*sdesState, error) {
	local, err := rtpproc.ParseCrypto(st.Local)
	if err != nil {
		return nil, fmt.Errorf("sdes local key: %w", err)
	}
	sd := &sdesState{local: local, rtpBuf: make([]byte, 0, maxPacket), rtcpBuf: make([]byte, 0, maxPacket)}
	if sd.encRTP, err = local.Context(); err == nil {
		sd.encRTCP, err = local.Context()
	}
	if err != nil {
		return nil, fmt.Errorf("sdes local key: %w", err)
	}
	sd.encRTP.SetROC(outSSRC, roc)
	sd.encRTCP.SetIndex(outSSRC, st.TxSRTCP+srtcpSkip)
	if st.Remote == "" {
		return sd, nil
	}
	remote, err := rtpproc.ParseCrypto(st.Remote)
	if err != nil {
		return nil, fmt.Errorf("sdes remote key: %w", err)
	}
	dec, err := remote.Context()
	if err != nil {
		return nil, fmt.Errorf("sdes remote key: %w", err)
	}
	decRTCP, err := remote.Context()
	if err != nil {
		return nil, fmt.Errorf("sdes remote key: %w", err)
	}
	if inSSRC != 0 {
		dec.SetROC(inSSRC, st.RxROC)
		sd.rxGuess = rocGuess{ctx: dec, ssrc: inSSRC, roc: st.RxROC}
	}
	sd.decRTP.Store(dec)
	sd.decRTCP.Store(decRTCP)
	sd.remote = st.Remote
	return sd, nil
}

// srtcpSkip is how far a restored SDES endpoint moves its SRTCP index
// past the exported one (the reports sent since).
const srtcpSkip = 1000

// skipFor is how many sequence numbers a restored flow leaves out: the
// packets the old process may have sent since st was taken, at the
// flow's rate (at least minSkipRate: a state taken as the call began
// has measured none yet), with a margin. Capped below half the sequence
// space, so the receiver still places the next packet after the last it
// got.
func skipFor(fs FlowState, st SessionState, elapsed time.Duration) uint16 {
	// A flow that had sent nothing at st may have sent since, from the
	// same starting point: it skips too.
	rate := max(fs.Rate(st.Since, st.At), minSkipRate)
	n := rate*(max(elapsed.Seconds(), 0)*1.25+0.5) + 16 // a survivor's clock behind the dead node's: no less
	return uint16(min(n, 30000))
}

// minSkipRate is the least packet rate skipFor assumes: audio in 10 ms
// frames. Skipping more than was sent costs nothing (a receiver takes a
// jump of up to 3000 as loss); skipping less repeats sequence numbers,
// which an SRTP receiver drops as replays.
const minSkipRate = 100

// wraps is how many times seq wraps when advanced by skip (0 or 1).
func wraps(seq, skip uint16) uint32 { return (uint32(seq) + uint32(skip)) >> 16 }

// restorePlans installs what the last offer/answer negotiated, and what
// each side may send, as Offer and Answer did.
func (s *Session) restorePlans() error {
	if s.offer == nil || s.last[s.offerFrom.Other()] == nil {
		return nil
	}
	offerer := s.offerFrom
	answer := s.last[offerer.Other()]
	shaped, err := s.restoreTranscoding(offerer, answer)
	switch {
	case err != nil:
		return err
	case shaped:
	case s.plain():
		s.applyPlan(offerer, plainPlan(s.offer, answer))
	default:
		_, plan, err := sdpconv.RenderAnswer(s.offer, answer, s.kind[offerer], s.local(offerer, sdp.Origin{}, false))
		if err != nil {
			return fmt.Errorf("plan of the last exchange: %w", err)
		}
		s.applyPlan(offerer, plan)
	}
	for side := SideA; side <= SideB; side++ {
		s.restorePTs(side)
		s.routeWebRTC(side, s.last[side])
	}
	return nil
}

// restorePTs tells the plain and SDES endpoints facing side which
// payload types its SDP and the SDP sent to it list.
func (s *Session) restorePTs(side Side) {
	if d := s.last[side]; d != nil {
		for i, st := range s.streams {
			if e, ok := endOf(st, side); ok && i < len(d.Media) {
				e.own = ptsOf(d.Media[i])
				e.publishPTs()
			}
		}
	}
	if body := s.sent[side].body; body != nil {
		s.announce(side, body, nil)
	}
}

// restoredMux returns the WebRTC socket at addr for a restored side: the
// manager's shared one when addr is it, else one opened for restored
// sessions (shared) or for the side alone (own, returned too).
func (m *Manager) restoredMux(addr netip.AddrPort, shared bool) (*wrtc.Mux, *net.UDPConn, error) {
	addr = netip.AddrPortFrom(addr.Addr().Unmap(), addr.Port())
	if shared {
		for i, a := range m.cfg.Addrs {
			if m.mux != nil && a.Bind == addr.Addr() && m.cfg.WebRTCPort == int(addr.Port()) {
				return m.mux[i], nil, nil
			}
		}
		m.mu.Lock()
		defer m.mu.Unlock()
		if mux := m.restoredMuxes[addr]; mux != nil {
			return mux, nil, nil
		}
	}
	conn, err := listenNetUDPFree(addr)
	if err != nil {
		return nil, nil, fmt.Errorf("webrtc port: %w", err)
	}
	mux, err := wrtc.NewMux(wrtc.MuxConfig{UDP: conn, Log: m.log.With("part", "webrtc-mux"), Poll: m.eng.poller()})
	if err != nil {
		conn.Close()
		return nil, nil, fmt.Errorf("webrtc port %s: %w", addr, err)
	}
	if !shared {
		return mux, conn, nil
	}
	if m.restoredMuxes == nil {
		m.restoredMuxes = make(map[netip.AddrPort]*wrtc.Mux)
	}
	m.restoredMuxes[addr] = mux
	return mux, nil, nil
}

// restoredBodies are the session's bodies for State, made for a restored
// session whatever Config.NoState says (it was replicated). Called under
// s.mu or before the session is shared.
func (s *Session) restoredBodies() *sdpBodies {
	if s.bodies == nil {
		s.bodies = new(sdpBodies)
	}
	return s.bodies
}
