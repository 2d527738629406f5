package monitoring

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"

	"github.com/sbc-project/sbc/internal/config"
	"github.com/sbc-project/sbc/internal/hep"
	"github.com/sbc-project/sbc/test/e2e"
)

// Test endpoints: the caller and the PBX are e2e.CallerIP (.2) and
// e2e.PBXIP (.3); the HEP collector is host 5 of the package's /24.
const collectorHost = 5

// The SSRCs of the test's own streams.
const (
	callerSSRC = 0x1111aaaa
	pbxSSRC    = 0x2222bbbb
)

// TestRTCPReportsToHEP places a call with RTCP both ways through the SBC
// with HEP export on, from a plain RTP phone and from a WebRTC browser
// (whose RTCP the SBC decrypts from SRTCP), to a PBX with plain RTP. A
// collector on loopback decodes what arrives: every report is there as
// HEP type 5, once as received from its sender and once as sent on to
// the other side, between the right addresses, under the caller leg's
// Call-ID, with the report's contents as the JSON Homer reads.
func TestRTCPReportsToHEP(t *testing.T) {
	for _, caller := range []string{"rtp", "webrtc"} {
		t.Run(caller, func(t *testing.T) { rtcpCall(t, caller) })
	}
}

func rtcpCall(t *testing.T, kind string) {
	col := newCollector(t)
	pbx := e2e.NewUAS(t)
	sbc := e2e.StartSBC(t, e2e.SBCOptions{Trunks: e2e.PBXTrunk(pbx), Mutate: func(c *config.Config) {
		c.HEP = config.HEP{Addr: col.addr(), CaptureID: 14}
	}})
	callee := openPair(t, e2e.PBXIP())
	var c caller
	if kind == "webrtc" {
		c = dialWeb(t, sbc)
	} else {
		c = dialPlain(t, sbc)
	}
	inv := pbx.ExpectReq("INVITE")
	sbcB := mediaAddr(t, inv.Body())
	pbx.Respond(inv, 200, "OK", "pbx", plainSDP(e2e.PBXIP(), callee.port()))
	callID := c.answered(t)
	pbx.ExpectReq("ACK")

	// RTP both ways first: the SBC's ports latch and normalize.
	towardB := callee.awaitRTP(t, func() { c.sendRTP(t) })
	towardA := c.awaitRTP(t, func() { callee.sendRTP(t, sbcB, pbxSSRC) })
	side, sbcA := c.rtcpPath(t)
	sbcBRTCP := netip.AddrPortFrom(sbcB.Addr(), sbcB.Port()+1)
	pbxRTCP := callee.rtcp.LocalAddr().(*net.UDPAddr).AddrPort()

	// The caller's sender report, with a block about the PBX's stream as
	// it reached the caller; the PBX's receiver report about the
	// caller's stream as it reached the PBX.
	sr := &rtcp.SenderReport{SSRC: c.ssrc(), NTPTime: 0xe1000000_80000000, RTPTime: 8000, PacketCount: 50,
		OctetCount: 8000, Reports: []rtcp.ReceptionReport{{SSRC: towardA, FractionLost: 3, TotalLost: 2, LastSequenceNumber: 77}}}
	rr := &rtcp.ReceiverReport{SSRC: pbxSSRC, Reports: []rtcp.ReceptionReport{{SSRC: towardB, FractionLost: 9,
		TotalLost: 4, LastSequenceNumber: 300, Jitter: 12}}}
	want := []struct {
		what     string
		src, dst netip.AddrPort
		check    func(r report) error
	}{
		{"the caller's SR as received", side, sbcA, func(r report) error {
			return r.expect(200, c.ssrc(), 50, towardA, 3, 2, 0)
		}},
		{"the caller's SR as sent to the PBX", sbcBRTCP, pbxRTCP, func(r report) error {
			// Normalized: the SSRC of the stream the PBX receives, the
			// block about the PBX's own stream.
			return r.expect(200, towardB, 50, pbxSSRC, 3, 2, 0)
		}},
		{"the PBX's RR as received", pbxRTCP, sbcBRTCP, func(r report) error {
			return r.expect(201, pbxSSRC, 0, towardB, 9, 4, 12)
		}},
		{"the PBX's RR as sent to the caller", sbcA, side, func(r report) error {
			// The block is about the caller's stream as the caller knows it.
			return r.expect(201, towardA, 0, c.ssrc(), 9, 4, 12)
		}},
	}
	var pkts []hep.Packet
	missing := ""
	deadline := time.Now().Add(10 * time.Second)
	for tries := 0; ; tries++ {
		if time.Now().After(deadline) {
			t.Fatalf("the collector lacks, of %d RTCP packets:%s", len(pkts), missing)
		}
		if tries%10 == 0 { // every 200 ms: RTCP is datagrams, as lossy as RTP
			c.sendRTCP(t, sr)
			callee.sendRTCP(t, rr, sbcBRTCP)
		}
		time.Sleep(20 * time.Millisecond)
		pkts = col.rtcp(t)
		missing = ""
		for _, w := range want {
			var why error = errors.New("no packet between these addresses")
			for _, p := range pkts {
				if p.Src == w.src && p.Dst == w.dst {
					if why = decodeReport(t, p).check(w.check); why == nil {
						break
					}
				}
			}
			if why != nil {
				missing += fmt.Sprintf("\n%s (%v -> %v): %v", w.what, w.src, w.dst, why)
			}
		}
		if missing == "" {
			break
		}
	}
	for _, p := range pkts {
		if p.Correlation != callID || p.CaptureID != 14 || p.Transport != hep.TransportUDP {
			t.Errorf("RTCP packet %v -> %v: correlation %q, capture id %d, transport %d; want the caller's Call-ID %q, 14, UDP",
				p.Src, p.Dst, p.Correlation, p.CaptureID, p.Transport, callID)
		}
	}
	t.Logf("%d RTCP reports; %s", len(pkts), col.summary(t))
	c.hangup(t, pbx)
}

// report is the JSON of a HEP type 5 packet (what hep.RTCPReport writes).
type report struct {
	SSRC   uint32 `json:"ssrc"`
	Type   uint8  `json:"type"`
	Sender struct {
		Packets uint32 `json:"packets"`
	} `json:"sender_information"`
	Blocks []struct {
		SSRC         uint32 `json:"source_ssrc"`
		FractionLost uint8  `json:"fraction_lost"`
		Lost         uint32 `json:"packets_lost"`
		Jitter       uint32 `json:"ia_jitter"`
	} `json:"report_blocks"`
}

func (r report) check(f func(report) error) error { return f(r) }

func (r report) expect(typ uint8, ssrc, packets, about uint32, fraction uint8, lost, jitter uint32) error {
	if r.Type != typ || r.SSRC != ssrc || r.Sender.Packets != packets || len(r.Blocks) != 1 {
		return fmt.Errorf("report %+v", r)
	}
	if b := r.Blocks[0]; b.SSRC != about || b.FractionLost != fraction || b.Lost != lost || b.Jitter != jitter {
		return fmt.Errorf("report block %+v", b)
	}
	return nil
}

func decodeReport(t *testing.T, p hep.Packet) report {
	t.Helper()
	var r report
	if err := json.Unmarshal(p.Payload, &r); err != nil {
		t.Fatalf("RTCP payload is not the report JSON: %v\n%s", err, p.Payload)
	}
	return r
}

// collector is a HEP collector: a UDP socket whose packets a goroutine
// keeps until the test ends.
type collector struct {
	conn *net.UDPConn
	wg   sync.WaitGroup
	mu   sync.Mutex
	pkts [][]byte
}

func newCollector(t *testing.T) *collector {
	t.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(e2e.IP(collectorHost))})
	if err != nil {
		t.Fatal(err)
	}
	c := &collector{conn: conn}
	c.wg.Go(func() {
		buf := make([]byte, 70000)
		for {
			n, _, err := conn.ReadFromUDP(buf)
			if err != nil {
				return
			}
			c.mu.Lock()
			c.pkts = append(c.pkts, append([]byte(nil), buf[:n]...))
			c.mu.Unlock()
		}
	})
	t.Cleanup(func() {
		conn.Close()
		c.wg.Wait()
	})
	return c
}

func (c *collector) addr() string { return c.conn.LocalAddr().String() }

// decoded returns every packet so far, decoded.
func (c *collector) decoded(t *testing.T) []hep.Packet {
	t.Helper()
	c.mu.Lock()
	raw := append([][]byte(nil), c.pkts...)
	c.mu.Unlock()
	out := make([]hep.Packet, 0, len(raw))
	for _, b := range raw {
		p, err := hep.Decode(b)
		if err != nil {
			t.Fatalf("collector got a bad packet: %v", err)
		}
		out = append(out, p)
	}
	return out
}

// rtcp returns the type 5 packets so far.
func (c *collector) rtcp(t *testing.T) []hep.Packet {
	var out []hep.Packet
	for _, p := range c.decoded(t) {
		if p.Type == hep.ProtoRTCP {
			out = append(out, p)
		}
	}
	return out
}

// summary counts the packets by type, for the log.
func (c *collector) summary(t *testing.T) string {
	n := map[hep.ProtoType]int{}
	for _, p := range c.decoded(t) {
		n[p.Type]++
	}
	return fmt.Sprintf("%d SIP and %d RTCP packets in all", n[hep.ProtoSIP], n[hep.ProtoRTCP])
}

// pair is a plain RTP endpoint: an even RTP port and the RTCP port above.
// Its RTP is one stream: sequence numbers and timestamps follow each
// other (skip leaves a gap, a lost packet).
type pair struct {
	rtp, rtcp *net.UDPConn
	seq       uint16
	ts        uint32
}

func openPair(t *testing.T, ip string) *pair {
	t.Helper()
	for range 50 {
		r, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(ip)})
		if err != nil {
			t.Fatal(err)
		}
		port := r.LocalAddr().(*net.UDPAddr).Port
		if port%2 == 0 {
			if c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(ip), Port: port + 1}); err == nil {
				t.Cleanup(func() { r.Close(); c.Close() })
				return &pair{rtp: r, rtcp: c}
			}
		}
		r.Close()
	}
	t.Fatal("no RTP/RTCP port pair")
	return nil
}

func (p *pair) port() int { return p.rtp.LocalAddr().(*net.UDPAddr).Port }

// skip makes the stream's next packet a lost one.
func (p *pair) skip() { p.seq, p.ts = p.seq+1, p.ts+160 }

// sendRTP sends the stream's next PCMU packet, of ssrc, to dst.
func (p *pair) sendRTP(t *testing.T, dst netip.AddrPort, ssrc uint32) {
	t.Helper()
	p.skip()
	b, err := (&rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: p.seq, Timestamp: p.ts, SSRC: ssrc},
		Payload: make([]byte, 160)}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.rtp.WriteToUDPAddrPort(b, dst); err != nil {
		t.Fatal(err)
	}
}

// awaitRTP calls send every 20 ms until an RTP packet arrives, and
// returns its SSRC.
func (p *pair) awaitRTP(t *testing.T, send func()) uint32 {
	t.Helper()
	buf := make([]byte, 1500)
	for range 250 {
		send()
		_ = p.rtp.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
		if n, err := p.rtp.Read(buf); err == nil && n >= 12 {
			return binary.BigEndian.Uint32(buf[8:])
		}
	}
	t.Fatalf("no RTP reached %s", p.rtp.LocalAddr())
	return 0
}

func (p *pair) sendRTCP(t *testing.T, pkt rtcp.Packet, dst netip.AddrPort) {
	t.Helper()
	b, err := pkt.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.rtcp.WriteToUDPAddrPort(b, dst); err != nil {
		t.Fatal(err)
	}
}

func plainSDP(ip string, port int) string {
	return "v=0\no=- 1 1 IN IP4 " + ip + "\ns=-\nc=IN IP4 " + ip + "\nt=0 0\nm=audio " + strconv.Itoa(port) +
		" RTP/AVP 0\na=rtpmap:0 PCMU/8000\na=sendrecv\n"
}

// mediaAddr is the c= address and audio port of an SDP body.
func mediaAddr(t *testing.T, body string) netip.AddrPort {
	t.Helper()
	info, err := e2e.ParseSDPInfo(body)
	if err != nil || info.Addr == nil {
		t.Fatalf("SDP without an audio address (%v):\n%s", err, body)
	}
	ap := info.Addr.AddrPort()
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

func (p *pair) rtcpAddr() netip.AddrPort { return p.rtcp.LocalAddr().(*net.UDPAddr).AddrPort() }
