package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
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

// rtpCall is one plain SIP/RTP call: a UDP RTP socket on the caller's
// source address sending PCMU 20 ms frames to the SBC's answer address
// and counting what comes back.
type rtpCall struct {
	base
	sip    *udpSIP
	conn   *net.UDPConn
	remote netip.AddrPort
	pkt    [rtpHeader + pcmuFrame]byte
	wg     sync.WaitGroup
}

const (
	rtpHeader = 12
	pcmuFrame = 160 // bytes (and samples) in 20 ms of G.711 at 8 kHz
)

// dialRTP places a plain RTP call to user through the SBC.
func dialRTP(ctx context.Context, sip *udpSIP, user string, o *options) (*rtpCall, error) {
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IP(sip.conn.LocalAddr().(*net.UDPAddr).IP)})
	if err != nil {
		return nil, fmt.Errorf("rtp socket: %w", err)
	}
	_ = conn.SetReadBuffer(1 << 20)
	c := &rtpCall{sip: sip, conn: conn}
	c.d = newDialog(sip, "UDP", sip.host, user, sip.sbc.String())
	sip.add(c.d)
	la := conn.LocalAddr().(*net.UDPAddr)
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
	c.setup = time.Since(start)
	aip, aport, ok := sdpAudio(res.body)
	remote, perr := netip.ParseAddrPort(net.JoinHostPort(aip, strconv.Itoa(aport)))
	if !ok || perr != nil {
		c.answered = true // a BYE is owed
		return c, fmt.Errorf("answer without a usable audio address: %q", res.body)
	}
	c.remote, c.answered = remote, true
	c.initRTP()
	c.wg.Go(c.receive)
	return c, nil
}

// initRTP fills the constant parts of the packet: version 2, PCMU and a
// silent payload.
func (c *rtpCall) initRTP() {
	c.pkt[0] = 0x80
	c.pkt[1] = 0 // PCMU
	for i := rtpHeader; i < len(c.pkt); i++ {
		c.pkt[i] = 0xff // μ-law silence
	}
}

// sendFrame sends the next 20 ms packet (pacer goroutine only).
func (c *rtpCall) sendFrame(now time.Time) {
	seq, ts, idx := c.nextFrame(now)
	binary.BigEndian.PutUint16(c.pkt[2:], seq)
	binary.BigEndian.PutUint32(c.pkt[4:], ts)
	binary.BigEndian.PutUint32(c.pkt[8:], c.ssrc)
	binary.BigEndian.PutUint32(c.pkt[rtpHeader:], idx)
	if _, err := c.conn.WriteToUDPAddrPort(c.pkt[:], c.remote); err == nil {
		c.sent.Add(1)
		callerTx.Add(1)
	}
}

func (c *rtpCall) receive() {
	buf := make([]byte, 2048)
	for {
		n, _, err := c.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		if n >= rtpHeader && buf[0]>>6 == 2 {
			c.recv.Add(1)
			callerRx.Add(1)
		}
	}
}

func (c *rtpCall) hangup(ctx context.Context, timeout time.Duration) error {
	if !c.answered {
		return nil
	}
	return c.d.bye(ctx, timeout)
}

func (c *rtpCall) close() {
	c.sip.remove(c.d)
	c.conn.Close()
	c.wg.Wait()
}

// callerRx counts every RTP packet the callers received: what the SBC
// relayed toward them.
var callerRx atomic.Int64
