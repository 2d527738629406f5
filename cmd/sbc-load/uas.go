package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"

	"golang.org/x/net/ipv4"
)

// echoStats counts one call's packets at the echo: those the SBC relayed
// to it (the caller's direction) and those it sent back.
type echoStats struct {
	rx atomic.Int64
	tx atomic.Int64
	// first is the packet index (see base.nextFrame) in the payload of the
	// first packet received, once hasFirst; written by the one echo
	// goroutine the call's packets reach. The SBC may renumber sequence
	// numbers, so the index travels in the payload.
	first    atomic.Uint32
	hasFirst atomic.Bool
}

// uas is the far end of every call: a SIP UAS on UDP that answers each
// INVITE at once with 200 and a PCMU answer naming one of its echo
// sockets, and echoes every RTP packet back to where it came from. It
// learns which SBC media address belongs to which call from the offer,
// and the call from the request-URI user the caller dialed.
type uas struct {
	sip    *net.UDPConn
	echoes []*net.UDPConn
	ip     string

	mu      sync.Mutex
	byUser  map[string]*echoStats // the dialed user's call
	bySrc   map[netip.AddrPort]*echoStats
	answers map[string][]byte // Call-ID + CSeq: the 200 sent, for a retransmitted INVITE
	next    int

	unknown atomic.Int64 // packets from a source no offer named
	rx      atomic.Int64 // every packet the echo received (what the SBC relayed toward it)
	wg      sync.WaitGroup
}

// startUAS listens for SIP on addr and opens n echo sockets on its IP.
func startUAS(addr string, n int) (*uas, error) {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return nil, fmt.Errorf("uas address %q: %w", addr, err)
	}
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(ap))
	if err != nil {
		return nil, fmt.Errorf("uas: %w", err)
	}
	_ = c.SetReadBuffer(4 << 20)
	u := &uas{sip: c, ip: ap.Addr().String(), byUser: map[string]*echoStats{}, bySrc: map[netip.AddrPort]*echoStats{},
		answers: map[string][]byte{}}
	for range max(n, 1) {
		e, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IP(ap.Addr().AsSlice())})
		if err != nil {
			u.close()
			return nil, fmt.Errorf("uas echo: %w", err)
		}
		_ = e.SetReadBuffer(8 << 20)
		_ = e.SetWriteBuffer(8 << 20)
		u.echoes = append(u.echoes, e)
		u.wg.Go(func() { u.echo(e) })
	}
	u.wg.Go(u.serve)
	return u, nil
}

// close stops the UAS and its echoes and waits for their goroutines.
func (u *uas) close() {
	u.sip.Close()
	for _, e := range u.echoes {
		e.Close()
	}
	u.wg.Wait()
}

// stats returns the echo counters of the call to user (nil before its
// INVITE arrived).
func (u *uas) stats(user string) *echoStats {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.byUser[user]
}

func (u *uas) serve() {
	buf := make([]byte, 65535)
	for {
		n, from, err := u.sip.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		m, err := parseSIP(buf[:n])
		if err != nil || m.isResponse() {
			continue
		}
		if out := u.answer(m); out != nil {
			_, _ = u.sip.WriteToUDPAddrPort(out, from)
		}
	}
}

// answer is the response to a request from the SBC (nil for ACK).
func (u *uas) answer(m *sipMsg) []byte {
	contact := "sip:uas@" + u.sip.LocalAddr().String()
	switch m.method() {
	case "ACK":
		return nil
	case "INVITE":
		return u.invite(m, contact)
	default: // BYE, CANCEL, OPTIONS, INFO, UPDATE without SDP
		return response(m, 200, "OK", token(4), contact, "")
	}
}

// invite answers an INVITE (or a retransmission of it) with 200 and SDP.
func (u *uas) invite(m *sipMsg, contact string) []byte {
	key := m.get("call-id") + " " + m.get("cseq")
	u.mu.Lock()
	defer u.mu.Unlock()
	if out, ok := u.answers[key]; ok {
		return out
	}
	ip, port, ok := sdpAudio(m.body)
	if !ok {
		return response(m, 488, "Not Acceptable Here", token(4), contact, "")
	}
	st := u.byUser[m.requestUser()]
	if st == nil {
		st = &echoStats{}
		u.byUser[m.requestUser()] = st
	}
	if src, err := netip.ParseAddrPort(net.JoinHostPort(ip, strconv.Itoa(port))); err == nil {
		u.bySrc[src] = st
	}
	echo := u.echoes[u.next%len(u.echoes)]
	u.next++
	ep := echo.LocalAddr().(*net.UDPAddr)
	sdp := "v=0\r\no=uas " + sessionID() + " 1 IN IP4 " + u.ip + "\r\ns=-\r\nc=IN IP4 " + u.ip + "\r\nt=0 0\r\n" +
		"m=audio " + strconv.Itoa(ep.Port) + " RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n" +
		"a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n"
	out := response(m, 200, "OK", token(4), contact, sdp)
	u.answers[key] = out
	return out
}

// echoBatch is how many datagrams the echo reads and writes per system
// call (recvmmsg, sendmmsg): at 1,000 calls it handles 50,000 packets a
// second and must not be what drops them.
const echoBatch = 64

// echo sends every packet back where it came from and counts it for the
// call whose offer named that address.
func (u *uas) echo(c *net.UDPConn) {
	pc := ipv4.NewPacketConn(c)
	rx, tx := make([]ipv4.Message, echoBatch), make([]ipv4.Message, echoBatch)
	bufs := make([][]byte, echoBatch)
	calls := make([]*echoStats, echoBatch)
	for i := range rx {
		bufs[i] = make([]byte, 2048)
		rx[i].Buffers, tx[i].Buffers = [][]byte{bufs[i]}, [][]byte{nil}
	}
	known := map[netip.AddrPort]*echoStats{} // this goroutine's cache of bySrc
	for {
		n, err := pc.ReadBatch(rx, 0)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		u.rx.Add(int64(n))
		for i := range n {
			calls[i] = u.count(known, rx[i].Addr, bufs[i][:rx[i].N])
			tx[i].Buffers[0], tx[i].Addr = bufs[i][:rx[i].N], rx[i].Addr
		}
		for sent := 0; sent < n; {
			k, err := pc.WriteBatch(tx[sent:n], 0)
			if err != nil {
				break
			}
			for _, st := range calls[sent : sent+k] {
				if st != nil {
					st.tx.Add(1)
				}
			}
			sent += k
		}
	}
}

// count counts a received packet for its call (nil: a source no offer
// named).
func (u *uas) count(known map[netip.AddrPort]*echoStats, addr net.Addr, pkt []byte) *echoStats {
	ua, ok := addr.(*net.UDPAddr)
	if !ok {
		u.unknown.Add(1)
		return nil
	}
	ap := ua.AddrPort()
	from := netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	st := known[from]
	if st == nil {
		u.mu.Lock()
		st = u.bySrc[from]
		u.mu.Unlock()
		if st == nil {
			u.unknown.Add(1)
			return nil
		}
		known[from] = st
	}
	if st.rx.Add(1) == 1 {
		if idx, ok := packetIndex(pkt); ok {
			st.first.Store(idx)
			st.hasFirst.Store(true)
		}
	}
	return st
}

// packetIndex reads the index the caller wrote in the first four bytes of
// an RTP packet's payload.
func packetIndex(p []byte) (uint32, bool) {
	if len(p) < rtpHeader || p[0]>>6 != 2 {
		return 0, false
	}
	off := rtpHeader + 4*int(p[0]&0x0f)
	if p[0]&0x10 != 0 { // header extension
		if len(p) < off+4 {
			return 0, false
		}
		off += 4 + 4*int(binary.BigEndian.Uint16(p[off+2:]))
	}
	if len(p) < off+4 {
		return 0, false
	}
	return binary.BigEndian.Uint32(p[off:]), true
}
