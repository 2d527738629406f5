package cluster

import (
	"encoding/binary"
	"errors"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// rtpEnd is a call's media at a phone: a UDP socket on an even port that
// counts the RTP packets it receives and, once started, sends one PCMU
// packet every 20 ms to the far end's SDP address until stopped.
type rtpEnd struct {
	conn     *net.UDPConn
	received atomic.Int64
	sent     atomic.Int64
	quit     chan struct{}
	once     sync.Once
	wg       sync.WaitGroup
}

func newRTPEnd(t *testing.T, ip string) *rtpEnd {
	t.Helper()
	port := evenFreePort(t, ip)
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(ip), Port: port})
	if err != nil {
		t.Fatal(err)
	}
	e := &rtpEnd{conn: c, quit: make(chan struct{})}
	e.wg.Go(e.read)
	t.Cleanup(func() { e.stop(); c.Close(); e.wg.Wait() })
	return e
}

func (e *rtpEnd) port() int { return e.conn.LocalAddr().(*net.UDPAddr).Port }

func (e *rtpEnd) read() {
	buf := make([]byte, 2048)
	for {
		n, err := e.conn.Read(buf)
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err == nil && n >= 12 && buf[0]>>6 == 2 {
			e.received.Add(1)
		}
	}
}

// start sends to the address of the far end's SDP body.
func (e *rtpEnd) start(t *testing.T, body string) {
	c, m := reConn.FindStringSubmatch(body), reAudio.FindStringSubmatch(body)
	if c == nil || m == nil {
		t.Errorf("no c= or m=audio line in the far end's SDP:\n%s", body)
		return
	}
	port, _ := strconv.Atoi(m[1])
	dst := &net.UDPAddr{IP: net.ParseIP(c[1]), Port: port}
	e.wg.Go(func() { e.send(dst) })
}

func (e *rtpEnd) send(dst *net.UDPAddr) {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	pkt := make([]byte, 12+160)
	pkt[0], pkt[1] = 0x80, 0 // version 2, PCMU
	binary.BigEndian.PutUint32(pkt[8:], uint32(e.port())*7919)
	for i := range pkt[12:] {
		pkt[12+i] = 0xd5 // PCMU silence-ish
	}
	for seq := uint16(1); ; seq++ {
		select {
		case <-e.quit:
			return
		case <-tick.C:
		}
		binary.BigEndian.PutUint16(pkt[2:], seq)
		binary.BigEndian.PutUint32(pkt[4:], uint32(seq)*160)
		if _, err := e.conn.WriteToUDP(pkt, dst); err == nil {
			e.sent.Add(1)
		}
	}
}

func (e *rtpEnd) stop() { e.once.Do(func() { close(e.quit) }) }
