package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/ipv4"
)

// udpSIP is the callers' SIP socket on one source address: every plain
// RTP call from that address sends through it, and one reader hands each
// message to its call by Call-ID.
type udpSIP struct {
	conn *net.UDPConn
	sbc  netip.AddrPort
	host string

	mu    sync.Mutex
	calls map[string]*dialog
	wg    sync.WaitGroup
}

func newUDPSIP(src string, sbc netip.AddrPort) (*udpSIP, error) {
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(src)})
	if err != nil {
		return nil, fmt.Errorf("sip socket on %s: %w", src, err)
	}
	_ = c.SetReadBuffer(4 << 20)
	u := &udpSIP{conn: c, sbc: sbc, host: c.LocalAddr().String(), calls: map[string]*dialog{}}
	u.wg.Go(u.read)
	return u, nil
}

func (u *udpSIP) send(b []byte) error {
	_, err := u.conn.WriteToUDPAddrPort(b, u.sbc)
	return err
}

func (u *udpSIP) reliable() bool { return false }

func (u *udpSIP) add(d *dialog) {
	u.mu.Lock()
	u.calls[d.callID] = d
	u.mu.Unlock()
}

func (u *udpSIP) remove(d *dialog) {
	u.mu.Lock()
	delete(u.calls, d.callID)
	u.mu.Unlock()
}

func (u *udpSIP) read() {
	buf := make([]byte, 65535)
	for {
		n, err := u.conn.Read(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		m, err := parseSIP(buf[:n])
		if err != nil {
			continue
		}
		u.mu.Lock()
		d := u.calls[m.get("call-id")]
		u.mu.Unlock()
		if d != nil {
			d.deliver(m)
		} else if !m.isResponse() && m.method() != "ACK" {
			_ = u.send(response(m, 481, "Call/Transaction Does Not Exist", token(4), "", ""))
		}
	}
}

func (u *udpSIP) close() {
	u.conn.Close()
	u.wg.Wait()
}

// rtpCall is one plain SIP/RTP call: PCMU 20 ms frames from a shared RTP
// socket of the caller's source address to the SBC's answer address, and
// the count of what comes back from there.
type rtpCall struct {
	base
	sip    *udpSIP
	sock   *rtpSock
	remote netip.AddrPort
	to     *net.UDPAddr // remote, for sendmmsg
	pkt    [rtpHeader + pcmuFrame]byte
}

const (
	rtpHeader = 12
	pcmuFrame = 160 // bytes (and samples) in 20 ms of G.711 at 8 kHz
)

// dialRTP places a plain RTP call to user through the SBC; its media
// shares sock with other calls (the SBC's address tells them apart).
func dialRTP(ctx context.Context, sip *udpSIP, sock *rtpSock, user string, o *options) (*rtpCall, error) {
	c := &rtpCall{sip: sip, sock: sock}
	c.d = newDialog(sip, "UDP", sip.host, user, sip.sbc.String())
	sip.add(c.d)
	la := sock.conn.LocalAddr().(*net.UDPAddr)
	ip := la.IP.String()
	sdp := "v=0\r\no=load " + sessionID() + " 1 IN IP4 " + ip + "\r\ns=-\r\nc=IN IP4 " + ip + "\r\nt=0 0\r\n" +
		"m=audio " + strconv.Itoa(la.Port) + " RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n" +
		"a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n"
	start := time.Now()
	res, err := c.d.invite(ctx, sdp, o.setupTimeout)
	if err != nil {
		c.close()
		return nil, err
	}
	c.setup, c.answered = time.Since(start), true
	aip, aport, ok := sdpAudio(res.body)
	remote, perr := netip.ParseAddrPort(net.JoinHostPort(aip, strconv.Itoa(aport)))
	if !ok || perr != nil {
		return c, fmt.Errorf("answer without a usable audio address: %q", res.body)
	}
	c.remote, c.to = remote, net.UDPAddrFromAddrPort(remote)
	c.pkt[0] = 0x80 // version 2, PCMU
	for i := rtpHeader; i < len(c.pkt); i++ {
		c.pkt[i] = 0xff // μ-law silence
	}
	sock.add(c)
	return c, nil
}

// frame writes the next 20 ms packet into c.pkt (the socket's sender
// goroutine only).
func (c *rtpCall) frame(now time.Time) []byte {
	seq, ts, idx := c.nextFrame(now)
	binary.BigEndian.PutUint16(c.pkt[2:], seq)
	binary.BigEndian.PutUint32(c.pkt[4:], ts)
	binary.BigEndian.PutUint32(c.pkt[8:], c.ssrc)
	binary.BigEndian.PutUint32(c.pkt[rtpHeader:], idx)
	return c.pkt[:]
}

// sendFrame does nothing: the call's socket sends its frames in batches.
func (c *rtpCall) sendFrame(time.Time) {}

func (c *rtpCall) hangup(ctx context.Context, timeout time.Duration) error {
	if !c.answered {
		return nil
	}
	return c.d.bye(ctx, timeout)
}

func (c *rtpCall) close() {
	c.sip.remove(c.d)
	c.sock.remove(c)
}

// rtpSock is an RTP socket many plain calls share: one goroutine sends
// every call's frame each 20 ms with sendmmsg, another reads with
// recvmmsg and counts each packet for the call whose SBC address sent it.
// Sharing keeps the tool's system calls and goroutines few enough that
// 1,000 calls are limited by the SBC, not by the tool.
type rtpSock struct {
	conn *net.UDPConn
	pc   *ipv4.PacketConn
	on   *atomic.Bool // the pacer's: false once sending stopped
	stop chan struct{}
	wg   sync.WaitGroup

	mu    sync.RWMutex
	calls map[netip.AddrPort]*rtpCall // by the SBC's media address
	order []*rtpCall
}

func newRTPSock(src string, on *atomic.Bool) (*rtpSock, error) {
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(src)})
	if err != nil {
		return nil, fmt.Errorf("rtp socket on %s: %w", src, err)
	}
	_ = conn.SetReadBuffer(4 << 20)
	_ = conn.SetWriteBuffer(4 << 20)
	s := &rtpSock{conn: conn, pc: ipv4.NewPacketConn(conn), on: on, stop: make(chan struct{}),
		calls: map[netip.AddrPort]*rtpCall{}}
	s.wg.Go(s.receive)
	s.wg.Go(s.send)
	return s, nil
}

func (s *rtpSock) add(c *rtpCall) {
	s.mu.Lock()
	s.calls[c.remote] = c
	s.order = append(s.order, c)
	s.mu.Unlock()
}

func (s *rtpSock) remove(c *rtpCall) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.calls[c.remote] == c {
		delete(s.calls, c.remote)
	}
	if i := slices.Index(s.order, c); i >= 0 {
		s.order = slices.Delete(s.order, i, i+1)
	}
}

func (s *rtpSock) send() {
	t := time.NewTicker(frameInterval)
	defer t.Stop()
	var calls []*rtpCall
	msgs := make([]ipv4.Message, echoBatch)
	for i := range msgs {
		msgs[i].Buffers = [][]byte{nil}
	}
	for {
		select {
		case <-s.stop:
			return
		case now := <-t.C:
			if !s.on.Load() {
				continue
			}
			s.mu.RLock()
			calls = append(calls[:0], s.order...)
			s.mu.RUnlock()
			for len(calls) > 0 {
				n := min(len(calls), echoBatch)
				for i, c := range calls[:n] {
					msgs[i].Buffers[0], msgs[i].Addr = c.frame(now), c.to
				}
				sent, _ := s.pc.WriteBatch(msgs[:n], 0)
				for _, c := range calls[:max(sent, 0)] {
					c.sent.Add(1)
				}
				callerTx.Add(int64(max(sent, 0)))
				calls = calls[n:]
			}
		}
	}
}

func (s *rtpSock) receive() {
	msgs := make([]ipv4.Message, echoBatch)
	for i := range msgs {
		msgs[i].Buffers = [][]byte{make([]byte, 2048)}
	}
	for {
		n, err := s.pc.ReadBatch(msgs, 0)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		s.mu.RLock()
		for _, m := range msgs[:n] {
			ua, ok := m.Addr.(*net.UDPAddr)
			if !ok || m.N < rtpHeader || m.Buffers[0][0]>>6 != 2 {
				continue
			}
			ap := ua.AddrPort()
			if c := s.calls[netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())]; c != nil {
				c.recv.Add(1)
				callerRx.Add(1)
			}
		}
		s.mu.RUnlock()
	}
}

func (s *rtpSock) close() {
	close(s.stop)
	s.conn.Close()
	s.wg.Wait()
}

// callerRx counts every RTP packet the callers received: what the SBC
// relayed toward them.
var callerRx atomic.Int64
