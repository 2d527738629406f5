package hep

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/pion/rtcp"
)

const invite = "INVITE sip:bob@example.com SIP/2.0\r\nCall-ID: abc@host\r\nContent-Length: 0\r\n\r\n"

func TestRoundTrip(t *testing.T) {
	at := time.Unix(1700000000, 123456000)
	tests := []struct {
		name string
		p    Packet
		want Packet // what Decode returns; zero: p itself
	}{
		{name: "ipv4 sip", p: Packet{Src: netip.MustParseAddrPort("127.0.0.2:5060"), Dst: netip.MustParseAddrPort("10.0.0.1:5070"),
			Transport: TransportUDP, Time: at, Type: ProtoSIP, CaptureID: 2001, Correlation: "abc@host", Payload: []byte(invite)}},
		{name: "ipv6 tcp with auth key", p: Packet{Src: netip.MustParseAddrPort("[2001:db8::1]:5061"), Dst: netip.MustParseAddrPort("[2001:db8::2]:40000"),
			Transport: TransportTCP, Time: at, Type: ProtoSIP, CaptureID: 7, AuthKey: "secret", Payload: []byte(invite)}},
		{name: "mixed families become ipv6",
			p:    Packet{Src: netip.MustParseAddrPort("127.0.0.1:1"), Dst: netip.MustParseAddrPort("[::1]:2"), Transport: TransportUDP, Time: at, Type: ProtoRTCP, Payload: []byte("{}")},
			want: Packet{Src: netip.MustParseAddrPort("[::ffff:127.0.0.1]:1"), Dst: netip.MustParseAddrPort("[::1]:2"), Transport: TransportUDP, Time: at, Type: ProtoRTCP, Payload: []byte("{}")}},
		{name: "ipv4-mapped is sent as ipv4",
			p:    Packet{Src: netip.MustParseAddrPort("[::ffff:127.0.0.1]:1"), Dst: netip.MustParseAddrPort("127.0.0.3:2"), Time: at, Type: ProtoSIP, Payload: []byte("x")},
			want: Packet{Src: netip.MustParseAddrPort("127.0.0.1:1"), Dst: netip.MustParseAddrPort("127.0.0.3:2"), Time: at, Type: ProtoSIP, Payload: []byte("x")}},
		{name: "empty", p: Packet{},
			want: Packet{Src: netip.MustParseAddrPort("0.0.0.0:0"), Dst: netip.MustParseAddrPort("0.0.0.0:0")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := tt.p.Append([]byte("prefix"))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.HasPrefix(b, []byte("prefixHEP3")) {
				t.Fatalf("not appended: %q", b[:10])
			}
			b = b[len("prefix"):]
			if n := int(binary.BigEndian.Uint16(b[4:])); n != len(b) {
				t.Errorf("length field %d, packet %d bytes", n, len(b))
			}
			got, err := Decode(b)
			if err != nil {
				t.Fatal(err)
			}
			want := tt.want
			if want.Src == (netip.AddrPort{}) {
				want = tt.p
			}
			if !got.Time.Equal(want.Time) {
				t.Errorf("time %v, want %v", got.Time, want.Time)
			}
			got.Time, want.Time = time.Time{}, time.Time{}
			if want.Payload == nil {
				want.Payload = []byte{}
			}
			if got.Src != want.Src || got.Dst != want.Dst || got.Transport != want.Transport || got.Type != want.Type ||
				got.CaptureID != want.CaptureID || got.AuthKey != want.AuthKey || got.Correlation != want.Correlation ||
				!bytes.Equal(got.Payload, want.Payload) {
				t.Errorf("decoded %+v\nwant    %+v", got, want)
			}
		})
	}
}

// TestWireLayout checks the first chunks byte by byte against the HEP3
// draft, so that encoder and decoder cannot agree on a wrong format.
func TestWireLayout(t *testing.T) {
	p := Packet{Src: netip.MustParseAddrPort("1.2.3.4:5060"), Dst: netip.MustParseAddrPort("5.6.7.8:5080"),
		Transport: TransportUDP, Time: time.Unix(0x01020304, 5000), Type: ProtoSIP, CaptureID: 0x0a0b0c0d, Payload: []byte("X")}
	b, err := p.Append(nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []byte{
		'H', 'E', 'P', '3', 0, byte(len(b)),
		0, 0, 0, 1, 0, 7, 2, // family IPv4
		0, 0, 0, 2, 0, 7, 17, // UDP
		0, 0, 0, 3, 0, 10, 1, 2, 3, 4, // src IPv4
		0, 0, 0, 4, 0, 10, 5, 6, 7, 8, // dst IPv4
		0, 0, 0, 7, 0, 8, 0x13, 0xc4, // src port 5060
		0, 0, 0, 8, 0, 8, 0x13, 0xd8, // dst port 5080
		0, 0, 0, 9, 0, 10, 1, 2, 3, 4, // seconds
		0, 0, 0, 10, 0, 10, 0, 0, 0, 5, // microseconds
		0, 0, 0, 11, 0, 7, 1, // SIP
		0, 0, 0, 12, 0, 10, 0x0a, 0x0b, 0x0c, 0x0d, // capture id
		0, 0, 0, 15, 0, 7, 'X', // payload
	}
	if !bytes.Equal(b, want) {
		t.Errorf("encoded\n% x\nwant\n% x", b, want)
	}
}

func TestTooLarge(t *testing.T) {
	p := Packet{Payload: make([]byte, MaxPacketSize)}
	b, err := p.Append([]byte("keep"))
	if !errors.Is(err, ErrTooLarge) || string(b) != "keep" {
		t.Errorf("Append = %q, %v; want the input back and ErrTooLarge", b, err)
	}
}

func TestDecodeRejects(t *testing.T) {
	good, _ := (&Packet{Type: ProtoSIP, Payload: []byte("x")}).Append(nil)
	badChunk := bytes.Clone(good)
	badChunk[6+4], badChunk[6+5] = 0, 2 // first chunk length below its header
	wrongSize := bytes.Clone(good)
	wrongSize[6+5] = 8 // family chunk claiming 2 bytes of payload
	tests := []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"not hep", []byte("INVITE sip:x SIP/2.0")},
		{"hep2", []byte{2, 16, 2, 17, 0, 0, 0, 0}},
		{"length beyond data", append([]byte("HEP3"), 0xff, 0xff)},
		{"length below header", append([]byte("HEP3"), 0, 3)},
		{"truncated", good[:len(good)-3]},
		{"chunk length below header", badChunk},
		{"fixed chunk of wrong size", wrongSize},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Decode(tt.b); !errors.Is(err, ErrMalformed) {
				t.Errorf("Decode = %v, want ErrMalformed", err)
			}
		})
	}
}

func TestRTCPReport(t *testing.T) {
	sr := &rtcp.SenderReport{SSRC: 0x11223344, NTPTime: 0xAABBCCDD00112233, RTPTime: 160, PacketCount: 50, OctetCount: 8000,
		Reports: []rtcp.ReceptionReport{{SSRC: 99, FractionLost: 12, TotalLost: 3, LastSequenceNumber: 1000, Jitter: 40}}}
	sdes := rtcp.NewCNAMESourceDescription(0x11223344, "sbc")
	compound, err := rtcp.Marshal([]rtcp.Packet{sr, sdes})
	if err != nil {
		t.Fatal(err)
	}
	rr, _ := (&rtcp.ReceiverReport{SSRC: 5}).Marshal()
	bye, _ := (&rtcp.Goodbye{Sources: []uint32{1}}).Marshal()
	tests := []struct {
		name    string
		pkt     []byte
		want    map[string]any
		wantErr bool
	}{
		{name: "sender report", pkt: compound, want: map[string]any{"ssrc": float64(0x11223344), "type": float64(200), "report_count": float64(1)}},
		{name: "receiver report", pkt: rr, want: map[string]any{"ssrc": float64(5), "type": float64(201), "report_count": float64(0)}},
		{name: "bye only", pkt: bye, wantErr: true},
		{name: "garbage", pkt: []byte{1, 2, 3}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			js, err := RTCPReport(tt.pkt)
			if tt.wantErr {
				if err == nil {
					t.Errorf("RTCPReport = %s, want an error", js)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got map[string]any
			if err := json.Unmarshal(js, &got); err != nil {
				t.Fatal(err)
			}
			for k, v := range tt.want {
				if got[k] != v {
					t.Errorf("%s = %v, want %v (%s)", k, got[k], v, js)
				}
			}
		})
	}
	js, _ := RTCPReport(compound)
	var doc rtcpJSON
	_ = json.Unmarshal(js, &doc)
	if doc.SenderInfo.Packets != 50 || doc.SenderInfo.NTPSec != 0xAABBCCDD || len(doc.ReportBlocks) != 1 ||
		doc.ReportBlocks[0].Jitter != 40 || doc.ReportBlocks[0].PacketsLost != 3 {
		t.Errorf("sender report fields lost: %s", js)
	}
}

func listenCollector(t testing.TB) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestSenderDelivers(t *testing.T) {
	col := listenCollector(t)
	s, err := NewSender(Config{Addr: col.LocalAddr().String(), CaptureID: 42, AuthKey: "pw"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	src, dst := netip.MustParseAddrPort("127.0.0.2:5060"), netip.MustParseAddrPort("127.0.0.1:5060")
	msg := []byte(invite)
	if !s.SIP(msg, src, dst, TransportUDP, time.Now(), "corr-1") {
		t.Fatal("SIP dropped")
	}
	copy(msg, "XXXXXX") // the sender copied it
	sr, _ := (&rtcp.ReceiverReport{SSRC: 7}).Marshal()
	if !s.RTCP(sr, dst, src, time.Now(), "corr-1") {
		t.Fatal("RTCP dropped")
	}
	clear(sr) // the sender copied it: converted later, on its goroutine
	pli, _ := (&rtcp.PictureLossIndication{SenderSSRC: 7, MediaSSRC: 8}).Marshal()
	if s.RTCP(pli, dst, src, time.Now(), "corr-1") {
		t.Fatal("RTCP without a report queued")
	}
	buf := make([]byte, 70000)
	var got []Packet
	for len(got) < 2 {
		_ = col.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, _, err := col.ReadFromUDP(buf)
		if err != nil {
			t.Fatal(err)
		}
		p, err := Decode(bytes.Clone(buf[:n]))
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, p)
	}
	if p := got[0]; p.Type != ProtoSIP || string(p.Payload) != invite || p.CaptureID != 42 || p.AuthKey != "pw" ||
		p.Correlation != "corr-1" || p.Src != src || p.Dst != dst {
		t.Errorf("sip packet %+v", p)
	}
	var report struct {
		SSRC uint32 `json:"ssrc"`
		Type uint8  `json:"type"`
	}
	if p := got[1]; p.Type != ProtoRTCP || json.Unmarshal(p.Payload, &report) != nil || report.SSRC != 7 || report.Type != 201 ||
		p.Src != dst || p.CaptureID != 42 || p.AuthKey != "pw" || p.Correlation != "corr-1" {
		t.Errorf("rtcp packet %+v, report %+v", p, report)
	}
	if st := s.Stats(); st.Sent != 2 || st.Dropped != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestSenderDropsWhenFullOrClosed(t *testing.T) {
	col := listenCollector(t)
	s, err := NewSender(Config{Addr: col.LocalAddr().String(), QueueSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	// The sender's goroutine may take one packet off the queue at any
	// time; of 100 sent without pause, most must be dropped, none block.
	accepted := 0
	for range 100 {
		if s.SIP([]byte(invite), netip.AddrPort{}, netip.AddrPort{}, TransportUDP, time.Now(), "") {
			accepted++
		}
	}
	if st := s.Stats(); st.Dropped == 0 || st.Dropped+uint64(accepted) != 100 {
		t.Errorf("accepted %d, stats %+v", accepted, st)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal("second Close:", err)
	}
	if s.SIP([]byte(invite), netip.AddrPort{}, netip.AddrPort{}, TransportUDP, time.Now(), "") {
		t.Error("accepted after Close")
	}
}

func TestSenderCountsUnreachable(t *testing.T) {
	col := listenCollector(t)
	addr := col.LocalAddr().String()
	col.Close() // nobody listens: loopback answers ICMP port unreachable
	s, err := NewSender(Config{Addr: addr})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	deadline := time.Now().Add(5 * time.Second)
	for s.Stats().Errors == 0 && time.Now().Before(deadline) {
		s.SIP([]byte(invite), netip.AddrPort{}, netip.AddrPort{}, TransportUDP, time.Now(), "")
		time.Sleep(10 * time.Millisecond)
	}
	if s.Stats().Errors == 0 {
		t.Error("no write error counted toward a closed port")
	}
}

func TestNewSenderBadAddr(t *testing.T) {
	if _, err := NewSender(Config{Addr: "no-port"}); err == nil {
		t.Error("NewSender accepted an address without port")
	}
}

func FuzzDecode(f *testing.F) {
	seed, _ := (&Packet{Src: netip.MustParseAddrPort("127.0.0.1:5060"), Dst: netip.MustParseAddrPort("[::1]:5070"),
		Type: ProtoSIP, Correlation: "c", AuthKey: "k", Payload: []byte(invite)}).Append(nil)
	f.Add(seed)
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := Decode(b)
		if err != nil {
			return
		}
		// Whatever decodes must encode and decode to the same fields.
		out, err := p.Append(nil)
		if err != nil {
			return
		}
		q, err := Decode(out)
		if err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		if q.Type != p.Type || q.Correlation != p.Correlation || !bytes.Equal(q.Payload, p.Payload) || q.CaptureID != p.CaptureID {
			t.Fatalf("round trip changed the packet: %+v != %+v", q, p)
		}
	})
}

func TestHasReport(t *testing.T) {
	rr, _ := (&rtcp.ReceiverReport{SSRC: 1}).Marshal()
	pli, _ := (&rtcp.PictureLossIndication{SenderSSRC: 1, MediaSSRC: 2}).Marshal()
	sdes, _ := rtcp.NewCNAMESourceDescription(1, "x").Marshal()
	srAfterFeedback, _ := rtcp.Marshal([]rtcp.Packet{&rtcp.PictureLossIndication{SenderSSRC: 1, MediaSSRC: 2},
		&rtcp.SenderReport{SSRC: 1}})
	for _, tt := range []struct {
		name string
		pkt  []byte
		want bool
	}{
		{"receiver report", rr, true},
		{"report after feedback", srAfterFeedback, true},
		{"feedback alone", pli, false},
		{"sdes alone", sdes, false},
		{"empty", nil, false},
		{"short", rr[:3], false},
		{"not version 2", append([]byte{0x40}, rr[1:]...), false},
		{"length past the end", append(append([]byte(nil), pli[:2]...), 0xff, 0xff), false},
	} {
		if got := HasReport(tt.pkt); got != tt.want {
			t.Errorf("%s: HasReport = %v, want %v", tt.name, got, tt.want)
		}
	}
}

// BenchmarkSenderRTCP is what the media relay pays per RTCP packet with
// HEP on (hep.Sender.RTCP on the relay's goroutine: the header check, a
// copy, the queue), for a compound with a report and for feedback alone;
// the conversion runs on the sender's goroutine, sending to a collector
// that drains.
func BenchmarkSenderRTCP(b *testing.B) {
	rr, _ := rtcp.Marshal([]rtcp.Packet{&rtcp.ReceiverReport{SSRC: 7, Reports: []rtcp.ReceptionReport{{SSRC: 8, FractionLost: 3}}},
		rtcp.NewCNAMESourceDescription(7, "sbc-0123456789abcdef")})
	pli, _ := (&rtcp.PictureLossIndication{SenderSSRC: 7, MediaSSRC: 8}).Marshal()
	src, dst := netip.MustParseAddrPort("127.0.0.2:40001"), netip.MustParseAddrPort("127.0.0.1:20001")
	for _, tt := range []struct {
		name string
		pkt  []byte
	}{{"report", rr}, {"feedback", pli}} {
		b.Run(tt.name, func(b *testing.B) {
			col := listenCollector(b)
			go func() {
				buf := make([]byte, 70000)
				for {
					if _, _, err := col.ReadFromUDP(buf); err != nil {
						return
					}
				}
			}()
			s, err := NewSender(Config{Addr: col.LocalAddr().String(), CaptureID: 1})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			now := time.Now()
			b.ReportAllocs()
			for b.Loop() {
				s.RTCP(tt.pkt, src, dst, now, "call-1@example.com")
			}
		})
	}
}
