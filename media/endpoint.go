package media

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"

	"github.com/sbc-project/sbc/media/rtpproc"
	"github.com/sbc-project/sbc/media/sdpconv"
	"github.com/sbc-project/sbc/media/wrtc"
)

// endpoint is the SBC's termination of one m-line toward one side. The
// plain (and SDES-SRTP) endpoint is rtpEndpoint, with its own port pair;
// the WebRTC one is wrtcEndpoint, a view of the side's bundled transport.
//
// sendRTP and sendRTCP take plain packets and are called by the other
// side's flow for every packet: they must not allocate, block on a shared
// lock, or log.
type endpoint interface {
	// A packet queued in o.b must stay untouched until the batch is
	// flushed.
	sendRTP(pkt []byte, o out) bool
	sendRTCP(pkt []byte, o out) bool
	// rtcpPath is the SBC's RTCP address facing the side and the side's
	// (invalid when not known), for Config.RTCP (rtcptap.go).
	rtcpPath() (local, remote netip.AddrPort)
	// start begins reading from this side; packets go to in, the flow
	// whose source is this side. Every reader it starts (a goroutine, or
	// a socket on a poll loop) is tracked by wg and ends after close.
	start(in *flow, wg *sync.WaitGroup)
	// close stops reading and sending; release then hands the ports back.
	// release must follow close and the end of the readers.
	close()
	release()
}

// rtpEndpoint is plain RTP/AVP(F), or RTP/SAVP with SDES keys: an even
// RTP port and the RTCP port above it, with symmetric RTP latching on
// each (latch.go).
type rtpEndpoint struct {
	pair      *pair
	ip        netip.Addr // the address the sockets are bound on
	public    netip.Addr // the address the side sees them at (its SDP's), for Config.RTCP
	eng       *engine    // reads rtp and rtcp
	rtp, rtcp *sock
	sdes      *sdesState // nil: plain RTP
	// pts holds the payload types the side may send on this stream: those
	// of its own SDP (own) and of the SDP the SBC sent it (sent). A
	// packet of another type does not latch. own and sent belong to the
	// session's signaling (under Session.mu).
	pts       atomic.Pointer[ptSet]
	own, sent ptSet
}

var _ endpoint = (*rtpEndpoint)(nil)

// newRTPEndpoint opens a port pair on ip facing a side whose signaling
// comes from signal (invalid: unknown); eng will read it.
func newRTPEndpoint(pool *portPool, eng *engine, ip, signal netip.Addr, at endAt) (*rtpEndpoint, error) {
	pr, rtp, rtcp, err := openPair(pool, ip)
	if err != nil {
		return nil, err
	}
	return &rtpEndpoint{
		pair: pr,
		ip:   ip,
		eng:  eng,
		rtp:  newSock(rtp, pr.port, signal, at, false),
		rtcp: newSock(rtcp, pr.port+1, signal, at, true),
	}, nil
}

// learn takes the transport and payload types the side announced for
// this m-line, and the IP its signaling comes from.
func (e *rtpEndpoint) learn(md sdpconv.Media, answer bool, signal netip.Addr) error {
	var r remote
	if md.Addr.IsValid() && !md.Addr.IsUnspecified() && md.Port > 0 && md.Port < 65535 {
		r.rtp = netip.AddrPortFrom(md.Addr, uint16(md.Port))
		r.rtcp = netip.AddrPortFrom(md.Addr, uint16(md.Port+1))
		if md.RTCP.IsValid() {
			r.rtcp = md.RTCP
		}
	}
	r.hold = md.Addr.IsValid() && md.Addr.IsUnspecified()
	if e.sdes != nil {
		if err := e.sdes.learn(md.Crypto, answer); err != nil {
			return err
		}
	}
	e.own = ptsOf(md)
	e.publishPTs()
	e.rtp.learn(r.rtp, r.hold, signal)
	e.rtcp.learn(r.rtcp, r.hold, signal)
	return nil
}

// announce takes the m-line the SBC sent the side for this stream.
func (e *rtpEndpoint) announce(md sdpconv.Media) { e.announcePTs(ptsOf(md)) }

// announcePTs takes the payload types of the m-line the SBC sent the side.
func (e *rtpEndpoint) announcePTs(pts ptSet) {
	e.sent = pts
	e.publishPTs()
}

func (e *rtpEndpoint) publishPTs() {
	u := ptSet{e.own[0] | e.sent[0], e.own[1] | e.sent[1]}
	e.pts.Store(&u)
}

// prefer takes a new IP for the side's signaling.
func (e *rtpEndpoint) prefer(signal netip.Addr) {
	e.rtp.prefer(signal)
	e.rtcp.prefer(signal)
}

// remote is what one side's SDP says about one m-line's transport.
type remote struct {
	rtp, rtcp netip.AddrPort // invalid: unknown (hold, or a host name)
	hold      bool           // c=0.0.0.0: the side wants nothing sent to it
}

func (e *rtpEndpoint) sendRTP(pkt []byte, o out) bool {
	if e.sdes != nil {
		if pkt = e.sdes.encryptRTP(pkt); pkt == nil {
			return false
		}
		// Sent at once: the next packet reuses the encryption buffer.
		o.b = nil
	}
	return e.rtp.send(pkt, o)
}

func (e *rtpEndpoint) sendRTCP(pkt []byte, o out) bool {
	if e.sdes == nil {
		return e.rtcp.send(pkt, o)
	}
	e.sdes.rtcpMu.Lock()
	defer e.sdes.rtcpMu.Unlock()
	if pkt = e.sdes.encryptRTCP(pkt); pkt == nil {
		return false
	}
	return e.rtcp.send(pkt, out{})
}

func (e *rtpEndpoint) start(in *flow, wg *sync.WaitGroup) {
	e.rtp.conn.attach(e.eng, newReader(e, e.rtp, in), wg)
	e.rtcp.conn.attach(e.eng, newReader(e, e.rtcp, in), wg)
}

// sdesState is the SRTP of an SDES endpoint (RFC 4568). Each direction
// and packet kind has its own context, since a context serves one
// goroutine: the RTP and RTCP readers decrypt, the far side's flow
// encrypts RTP (under its lock) and RTCP (under rtcpMu).
type sdesState struct {
	local   rtpproc.Crypto
	remote  string // the a=crypto value the keys below come from
	decRTP  atomic.Pointer[srtp.Context]
	decRTCP atomic.Pointer[srtp.Context]
	encRTP  *srtp.Context
	encRTCP *srtp.Context
	rxGuess rocGuess // a restored decRTP's rollover counter (RTP reader's)
	rtpBuf  []byte
	rtpHdr  rtp.Header
	rtcpMu  sync.Mutex
	rtcpBuf []byte
	rtcpHdr rtcp.Header
}

const defaultSuite = "AES_CM_128_HMAC_SHA1_80"

func newSDES() (*sdesState, error) {
	st := &sdesState{rtpBuf: make([]byte, 0, maxPacket), rtcpBuf: make([]byte, 0, maxPacket)}
	if err := st.setLocal(1, defaultSuite); err != nil {
		return nil, err
	}
	return st, nil
}

// setLocal makes fresh keys for tag and suite.
func (st *sdesState) setLocal(tag int, suite string) error {
	c, err := rtpproc.NewCrypto(tag, suite)
	if err != nil {
		return fmt.Errorf("sdes keys: %w", err)
	}
	enc, err := c.Context()
	if err != nil {
		return fmt.Errorf("sdes keys: %w", err)
	}
	encRTCP, err := c.Context()
	if err != nil {
		return fmt.Errorf("sdes keys: %w", err)
	}
	st.local, st.encRTP, st.encRTCP = c, enc, encRTCP
	return nil
}

// learn takes the side's a=crypto lines. To an offer it picks the first
// usable line and answers with fresh keys of the same tag and suite; an
// answer must use the tag we offered.
func (st *sdesState) learn(lines []string, answer bool) error {
	for _, v := range lines {
		c, err := rtpproc.ParseCrypto(v)
		if err != nil {
			continue
		}
		if answer && c.Tag != st.local.Tag {
			continue
		}
		if v == st.remote {
			return nil
		}
		dec, err := c.Context()
		if err != nil {
			return fmt.Errorf("%w: a=crypto: %w", ErrBadSDP, err)
		}
		decRTCP, err := c.Context()
		if err != nil {
			return fmt.Errorf("%w: a=crypto: %w", ErrBadSDP, err)
		}
		if !answer && (c.Tag != st.local.Tag || c.Suite != st.local.Suite) {
			if err := st.setLocal(c.Tag, c.Suite); err != nil {
				return err
			}
		}
		st.decRTP.Store(dec)
		st.decRTCP.Store(decRTCP)
		st.remote = v
		return nil
	}
	return fmt.Errorf("%w: no usable a=crypto line among %d", ErrBadSDP, len(lines))
}

func (st *sdesState) encryptRTP(pkt []byte) []byte {
	out, err := st.encRTP.EncryptRTP(st.rtpBuf[:0], pkt, &st.rtpHdr)
	if err != nil {
		return nil
	}
	return out
}

func (st *sdesState) encryptRTCP(pkt []byte) []byte {
	out, err := st.encRTCP.EncryptRTCP(st.rtcpBuf[:0], pkt, &st.rtcpHdr)
	if err != nil {
		return nil
	}
	return out
}

// wrtcEndpoint is one m-line of a side's bundled WebRTC transport. The
// transport's reader hands packets to the stream's flow through its
// routes, so the endpoint has no reader of its own.
type wrtcEndpoint struct {
	w *webrtcSide
}

func (e *wrtcEndpoint) sendRTP(pkt []byte, o out) bool {
	return e.w.t.WriteRTPBatch(pkt, o.b, o.ctr, tagRTP) == nil
}
func (e *wrtcEndpoint) sendRTCP(pkt []byte, _ out) bool { return e.w.t.WriteRTCP(pkt) == nil }
func (e *wrtcEndpoint) start(*flow, *sync.WaitGroup)    {}
func (e *wrtcEndpoint) close()                          {}
func (e *wrtcEndpoint) release()                        {}

// webrtcSide is the WebRTC transport of one side of a session, shared by
// all its m-lines (BUNDLE). With media.webrtc_port set it uses the
// manager's shared socket; otherwise it has a port pair of its own.
type webrtcSide struct {
	t     *wrtc.Transport
	mux   *wrtc.Mux // own mux; nil when shared
	pr    *pair     // own ports; nil when shared
	port  int
	setup string // our a=setup when we answered the side's offer
	// public is the address of our host candidates, for Config.RTCP.
	public netip.Addr
}

// webrtc returns side's transport, creating it on first use.
func (s *Session) webrtc(side Side) (*webrtcSide, error) {
	if w := s.wt[side]; w != nil {
		return w, nil
	}
	at := s.addrOf(side, nil)
	w := &webrtcSide{port: s.m.cfg.WebRTCPort, public: s.m.cfg.Addrs[at].Public}
	if s.m.mux != nil {
		w.mux = s.m.mux[at]
	}
	log := s.sideLogger(-1, side)
	if w.mux == nil {
		pr, err := s.m.pool.alloc(s.m.cfg.Addrs[at].Bind)
		if err != nil {
			return nil, err
		}
		mux, err := wrtc.NewMux(wrtc.MuxConfig{UDP: pr.rtp, Log: log, Poll: s.m.eng.poller()})
		if err != nil {
			pr.closeSockets()
			pr.release()
			return nil, fmt.Errorf("webrtc socket: %w", err)
		}
		w.pr, w.mux, w.port = pr, mux, pr.port
	}
	t, err := wrtc.New(wrtc.Config{Mux: w.mux, PublicIP: s.m.cfg.Addrs[at].Public, Certificate: s.m.cert,
		HandshakeTimeout: s.m.cfg.HandshakeTimeout, Log: log})
	if err != nil {
		w.close()
		return nil, fmt.Errorf("webrtc transport: %w", err)
	}
	w.t = t
	s.watchWebRTC(side, t)
	s.wt[side] = w
	return w, nil
}

// close releases the transport and, if it has its own, the socket.
func (w *webrtcSide) close() {
	w.stop()
	w.release()
}

// stop closes the transport and its own socket, if any.
func (w *webrtcSide) stop() {
	if w.t != nil {
		_ = w.t.Close()
	}
	if w.pr != nil {
		_ = w.mux.Close()
		w.pr.closeSockets()
	}
}

// release gives its own ports back (to quarantine); after stop.
func (w *webrtcSide) release() {
	if w.pr != nil {
		w.pr.release()
	}
}

// stream is one relayed m-line: an endpoint facing each side and a flow
// for each direction.
type stream struct {
	ends        [2]endpoint // ends[SideA] faces side A
	flows       [2]*flow    // flows[SideA] carries what A sends, to ends[SideB]
	audio       bool
	m           *Manager       // counts what the stream relayed (Manager.Relayed)
	wg          sync.WaitGroup // the readers of both endpoints
	once        sync.Once      // stop
	releaseOnce sync.Once
}

// newStream opens an endpoint of the right kind facing each side and
// starts relaying between them. Nothing is sent until a side's address is
// learned or latched.
func (s *Session) newStream(kinds [2]Kind, audio bool, mline int) (*stream, error) {
	st := &stream{audio: audio, m: s.m}
	var err error
	for side := SideA; side <= SideB; side++ {
		var e endpoint
		if e, err = s.newEndpoint(side, kinds[side], mline); err != nil {
			for _, o := range st.ends {
				if o != nil {
					o.close()
					o.release()
				}
			}
			return nil, fmt.Errorf("open side %s endpoint: %w", side, err)
		}
		st.ends[side] = e
	}
	for side := SideA; side <= SideB; side++ {
		f := newFlow(st.ends[side.Other()], rand.Uint32())
		if f.sdes, err = rtpproc.SDESPacket(f.norm.OutSSRC(), s.cname[side.Other()]); err != nil {
			s.logger().Warn("rtcp sdes toward the side is removed", "mline", mline, "side", side.Other().String(), "err", err)
		}
		f.s, f.from = s, uint8(side)
		if s.m.cfg.RTCP != nil {
			f.tap = &rtcpTap{f: s.m.cfg.RTCP, session: s.id, from: side}
		}
		st.flows[side] = f
	}
	st.flows[SideA].back, st.flows[SideB].back = st.flows[SideB], st.flows[SideA]
	s.m.relay.track(st)
	for side := SideA; side <= SideB; side++ {
		st.ends[side].start(st.flows[side], &st.wg)
	}
	return st, nil
}

// newEndpoint opens the endpoint of m-line mline facing side. Its
// sockets report their latches to s (sock.latched).
func (s *Session) newEndpoint(side Side, k Kind, mline int) (endpoint, error) {
	at := endAt{s: s, mline: mline, side: side}
	switch k {
	case KindWebRTC:
		w, err := s.webrtc(side)
		if err != nil {
			return nil, err
		}
		return &wrtcEndpoint{w: w}, nil
	case KindSRTP:
		sd, err := newSDES()
		if err != nil {
			return nil, err
		}
		e, err := newRTPEndpoint(s.m.pool, &s.m.eng, s.bindIP(side), s.opts[side].Signaling, at)
		if err != nil {
			return nil, err
		}
		e.sdes, e.public = sd, s.public(side)
		return e, nil
	default:
		e, err := newRTPEndpoint(s.m.pool, &s.m.eng, s.bindIP(side), s.opts[side].Signaling, at)
		if err != nil {
			return nil, err
		}
		e.public = s.public(side)
		return e, nil
	}
}

// close stops the relay, waits for its readers and releases its ports to
// quarantine. It is idempotent.
func (st *stream) close() {
	st.stop()
	st.release()
}

// stop closes the stream's sockets and waits for its readers: nothing is
// relayed after it returns, and its counters are final. Idempotent.
func (st *stream) stop() {
	st.once.Do(func() {
		for _, e := range st.ends {
			e.close()
		}
		st.wg.Wait()
		if st.m != nil {
			st.m.relay.untrack(st)
		}
	})
}

// release gives the stream's ports back (to quarantine); after stop.
// Idempotent.
func (st *stream) release() {
	st.releaseOnce.Do(func() {
		for _, e := range st.ends {
			e.release()
		}
	})
}

// stats returns the stream's counters; received is RTP accepted from
// either side (the liveness signal of the timeout).
func (st *stream) stats() (s Stats, received uint64) {
	s.AtoB = st.flows[SideA].snapshot()
	s.BtoA = st.flows[SideB].snapshot()
	return s, st.flows[SideA].c.received.Load() + st.flows[SideB].c.received.Load()
}
