package media

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"time"
)

// State returns the session's state for another process to continue it
// (see SessionState). Safe for concurrent use; the B2BUA calls it from
// the call's goroutine after each change (Offer, Answer, Absorb, and an
// EventState).
func (s *Session) State() SessionState {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := SessionState{Version: stateVersion, ID: s.id, At: time.Now(), Since: s.since,
		Offered: s.offered, OfferFrom: s.offerFrom}
	if s.bodies != nil {
		st.OfferSDP = bytes.Clone(s.bodies.offer)
	}
	for side := SideA; side <= SideB; side++ {
		st.Sides[side] = s.sideState(side)
	}
	st.Streams = make([]StreamState, len(s.streams))
	for i, str := range s.streams {
		if str != nil {
			st.Streams[i] = str.state()
		}
	}
	return st
}

// sideState is State's part for one side. Called under s.mu.
func (s *Session) sideState(side Side) SideState {
	ss := SideState{
		Kind: s.kind[side], Options: s.opts[side], AddrSet: s.addrSet[side], CNAME: s.cname[side],
		Hold: s.hold[side], Codec: s.codecs[side], LastSDP: bytes.Clone(s.lastBody(side)),
		SentSDP: bytes.Clone(s.sent[side].body), SessID: s.sent[side].sessID, SDPVer: s.sent[side].version,
	}
	if s.addrSet[side] {
		a := s.m.cfg.Addrs[s.addr[side]]
		ss.Bind, ss.Public = a.Bind, a.Public
	}
	if a := s.restored(side); a.Bind.IsValid() {
		ss.Bind, ss.Public = a.Bind, a.Public
	}
	w := s.wt[side]
	if w == nil || w.t == nil {
		return ss
	}
	var out []uint32
	rx := map[uint32]uint32{}
	for _, st := range s.streams {
		if st == nil {
			continue
		}
		out = append(out, st.flows[side.Other()].norm.OutSSRC())
		if fs := st.flows[side].source(); fs.InSSRC != 0 {
			rx[fs.InSSRC] = fs.InROC
		}
	}
	ts := w.t.Export(out)
	if len(rx) > 0 {
		ts.RxROC = rx
	}
	ss.WebRTC = &WebRTC{Local: w.mux.Addr(), Shared: w.pr == nil, Transport: ts}
	ss.DTLSRole = w.setup
	return ss
}

// source returns the flow's source SSRC and its rollover counter.
func (f *flow) source() FlowState {
	f.mu.Lock()
	defer f.mu.Unlock()
	ssrc, roc, _ := f.stats.Source()
	return FlowState{InSSRC: ssrc, InROC: roc}
}

// state is State's part for one stream.
func (st *stream) state() StreamState {
	ss := StreamState{Relayed: true, Audio: st.audio}
	for side := SideA; side <= SideB; side++ {
		f := st.flows[side]
		fs := f.source()
		fs.Norm = f.norm.State()
		fs.Packets = f.c.packets.Load()
		ss.Flows[side] = fs
	}
	for side := SideA; side <= SideB; side++ {
		e, ok := st.ends[side].(*rtpEndpoint)
		if !ok {
			ss.Ends[side] = EndState{WebRTC: true}
			continue
		}
		ss.Ends[side] = EndState{Local: e.local(), RTP: e.rtp.state(), RTCP: e.rtcp.state()}
		if e.sdes != nil {
			in := st.flows[side].source()
			ss.Ends[side].SDES = e.sdes.state(st.flows[side.Other()], in.InROC)
			ss.Flows[side.Other()].Norm.ROC = ss.Ends[side].SDES.TxROC
		}
	}
	return ss
}

// local is the address of the endpoint's RTP socket.
func (e *rtpEndpoint) local() netip.AddrPort { return netip.AddrPortFrom(e.ip, uint16(e.rtp.port)) }

// state is what the socket knows of its side.
func (s *sock) state() PeerState {
	p := s.dst.Load()
	return PeerState{Addr: p.addr, Latched: p.latched, SDP: p.sdp, Hold: p.hold}
}

// state returns the SDES keys and counters; f is the flow that encrypts
// toward the endpoint (its lock guards encRTP), rxROC the side's.
func (sd *sdesState) state(f *flow, rxROC uint32) *SDESState {
	out := f.norm.OutSSRC()
	st := &SDESState{Local: sd.local.String(), Remote: sd.remote, RxROC: rxROC}
	f.mu.Lock()
	st.TxROC, _ = sd.encRTP.ROC(out)
	f.mu.Unlock()
	sd.rtcpMu.Lock()
	st.TxSRTCP, _ = sd.encRTCP.Index(out)
	sd.rtcpMu.Unlock()
	return st
}

// ReplicaState is State as JSON: what the B2BUA replicates
// (b2bua.MediaReplica).
func (s *Session) ReplicaState() ([]byte, error) {
	b, err := json.Marshal(s.State())
	if err != nil {
		return nil, fmt.Errorf("media state: %w", err)
	}
	return b, nil
}

// sdpBodies are the SDP bodies a session keeps for State: the last each
// side sent, the offer's, and what the offerer sent before it (until
// answered; Refused). Apart from the Session, made only when State is
// taken: 96 bytes less for every call without replication.
type sdpBodies struct {
	last          [2][]byte
	offer, before []byte
}

// keptBodies are the bodies kept for State, made on first use; nil when
// nobody takes them (Config.NoState). Called under s.mu.
func (s *Session) keptBodies() *sdpBodies {
	if s.bodies == nil && !s.m.cfg.NoState {
		s.bodies = new(sdpBodies)
	}
	return s.bodies
}

// keepBody keeps a copy of body as the last SDP side sent, for State.
// Called under s.mu.
func (s *Session) keepBody(side Side, body []byte) {
	if b := s.keptBodies(); b != nil {
		b.last[side] = bytes.Clone(body)
	}
}

// lastBody is the last SDP side sent as kept for State; nil when none.
func (s *Session) lastBody(side Side) []byte {
	if s.bodies == nil {
		return nil
	}
	return s.bodies.last[side]
}

// armStateTick starts the periodic EventState once the session is
// answered; later calls do nothing. Called under s.mu.
func (s *Session) armStateTick() {
	if s.stateTick != nil || s.closed || s.m.cfg.NoState {
		return
	}
	every := s.m.cfg.StateEvery
	s.stateTick = time.AfterFunc(every, func() {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return
		}
		s.stateTick.Reset(every)
		s.mu.Unlock()
		s.emit(Event{Kind: EventState})
	})
}
