package media

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/sbc-project/sbc/media/codec"
)

// codecSDP is peer p's SDP offering only the codecs given as "pt name/rate".
func codecSDP(p *udpPeer, codecs ...string) []byte {
	rtp, rtcp := portOfConn(p.rtp), portOfConn(p.rtcp)
	var pts []string
	var attrs []string
	for _, c := range codecs {
		pt, rtpmap, _ := strings.Cut(c, " ")
		pts = append(pts, pt)
		attrs = append(attrs, "a=rtpmap:"+pt+" "+rtpmap)
	}
	lines := []string{"v=0", "o=peer 1 1 IN IP4 " + p.ip, "s=-", "c=IN IP4 " + p.ip, "t=0 0",
		fmt.Sprintf("m=audio %d RTP/AVP %s", rtp, strings.Join(pts, " ")), fmt.Sprintf("a=rtcp:%d", rtcp)}
	lines = append(lines, attrs...)
	return []byte(strings.Join(lines, "\r\n") + "\r\n")
}

// rtpmaps are the a=rtpmap values of the first m-line of body, in order.
func rtpmaps(t testing.TB, body []byte) []string {
	t.Helper()
	sd := parse(t, body)
	var out []string
	for _, f := range sd.MediaDescriptions[0].MediaName.Formats {
		for _, a := range sd.MediaDescriptions[0].Attributes {
			if a.Key == "rtpmap" && strings.HasPrefix(a.Value, f+" ") {
				out = append(out, a.Value)
			}
		}
	}
	return out
}

func TestTranscodeNegotiation(t *testing.T) {
	for _, tc := range []struct {
		name         string
		edit         func(*Config)
		allowA       []string
		allowB       []string
		offer        []string // A's codecs
		answer       []string // B's codecs
		wantOffer    []string // rtpmaps sent to B
		wantAnswer   []string // rtpmaps sent to A
		wantErr      error
		wantCodecs   [2]string
		wantTranscod bool
	}{
		{name: "trunk list shares none: transcoded", allowB: []string{"pcma"},
			offer: []string{"0 PCMU/8000", "101 telephone-event/8000"}, answer: []string{"8 PCMA/8000", "101 telephone-event/8000"},
			wantOffer: []string{"8 PCMA/8000", "101 telephone-event/8000"}, wantAnswer: []string{"0 PCMU/8000", "101 telephone-event/8000"},
			wantCodecs: [2]string{"PCMU/8000", "PCMA/8000"}, wantTranscod: true},
		{name: "trunk list shares one: relayed, list order", allowB: []string{"pcma", "pcmu"},
			offer: []string{"0 PCMU/8000", "8 PCMA/8000"}, answer: []string{"8 PCMA/8000"},
			wantOffer: []string{"8 PCMA/8000", "0 PCMU/8000"}, wantAnswer: []string{"8 PCMA/8000"},
			wantCodecs: [2]string{"PCMA/8000", "PCMA/8000"}},
		{name: "caller list forces pcmu, callee answers pcma", allowA: []string{"pcmu"}, allowB: []string{"pcmu", "pcma"},
			offer: []string{"0 PCMU/8000", "8 PCMA/8000"}, answer: []string{"8 PCMA/8000"},
			wantOffer:  []string{"0 PCMU/8000", "8 PCMA/8000", "101 telephone-event/8000"},
			wantAnswer: []string{"0 PCMU/8000"}, wantCodecs: [2]string{"PCMU/8000", "PCMA/8000"}, wantTranscod: true},
		{name: "caller list forces pcmu, callee answers pcmu", allowA: []string{"pcmu"}, allowB: []string{"pcmu", "pcma"},
			offer: []string{"0 PCMU/8000", "8 PCMA/8000"}, answer: []string{"0 PCMU/8000"},
			wantOffer:  []string{"0 PCMU/8000", "8 PCMA/8000", "101 telephone-event/8000"},
			wantAnswer: []string{"0 PCMU/8000"}, wantCodecs: [2]string{"PCMU/8000", "PCMU/8000"}},
		{name: "caller list, callee any: every codec this build transcodes", allowA: []string{"pcma"},
			offer: []string{"8 PCMA/8000"}, answer: []string{"0 PCMU/8000"},
			wantOffer: supportedOffer(), wantAnswer: []string{"8 PCMA/8000"},
			wantCodecs: [2]string{"PCMA/8000", "PCMU/8000"}, wantTranscod: true},
		{name: "transcoding off: no common codec", allowB: []string{"pcma"}, edit: func(c *Config) { c.NoTranscoding = true },
			offer: []string{"0 PCMU/8000"}, wantErr: ErrNoCodec},
		{name: "nothing the SBC can transcode", allowB: []string{"pcma"},
			offer: []string{"18 G729/8000"}, wantErr: ErrNoCodec},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newTestManager(t, 4, netip.Addr{}, tc.edit)
			s := m.NewSession("tc-" + tc.name)
			defer s.Close()
			a, b := newPeer(t, false), newPeer(t, false)
			s.Configure(SideA, SideOptions{Codecs: tc.allowA})
			s.Configure(SideB, SideOptions{Codecs: tc.allowB})
			toB, err := s.Offer(SideA, codecSDP(a, tc.offer...))
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("Offer: %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Offer: %v", err)
			}
			if got := rtpmaps(t, toB); strings.Join(got, ",") != strings.Join(tc.wantOffer, ",") {
				t.Fatalf("offer to B: %q, want %q\n%s", got, tc.wantOffer, toB)
			}
			toA, err := s.Answer(SideB, codecSDP(b, tc.answer...))
			if err != nil {
				t.Fatalf("Answer: %v", err)
			}
			if got := rtpmaps(t, toA); strings.Join(got, ",") != strings.Join(tc.wantAnswer, ",") {
				t.Fatalf("answer to A: %q, want %q\n%s", got, tc.wantAnswer, toA)
			}
			if got := s.Codecs(); got != tc.wantCodecs {
				t.Errorf("codecs %q, want %q", got, tc.wantCodecs)
			}
			if got := s.Transcoded(); got != tc.wantTranscod {
				t.Errorf("transcoded %v, want %v", got, tc.wantTranscod)
			}
			active, _ := m.Transcoding()
			if want := map[bool]int{true: 1}[tc.wantTranscod]; active != want {
				t.Errorf("manager transcodes %d sessions, want %d", active, want)
			}
		})
	}
}

// supportedOffer is the offer toward a side without a list of a PCMA
// caller whose own list forces PCMA: PCMA, then what this build can
// transcode, with telephone-event at each clock.
func supportedOffer() []string {
	out := []string{"8 PCMA/8000"}
	if codec.Supported("opus") {
		out = append(out, "96 opus/48000/2")
	}
	if codec.Supported("g722") {
		out = append(out, "9 G722/8000")
	}
	out = append(out, "0 PCMU/8000")
	if codec.Supported("opus") {
		return append(out, "101 telephone-event/48000", "97 telephone-event/8000")
	}
	return append(out, "101 telephone-event/8000")
}

// TestTranscodeRelay sends PCMU from A and PCMA from B through a session
// whose B side allows only PCMA: each side receives its own codec, with
// the audio of the other, and RTCP still flows both ways.
func TestTranscodeRelay(t *testing.T) {
	m := newTestManager(t, 4, netip.Addr{}, nil)
	s := m.NewSession("tc-relay")
	defer s.Close()
	a, b := newPeer(t, false), newPeer(t, false)
	s.Configure(SideB, SideOptions{Codecs: []string{"pcma"}})
	toB, err := s.Offer(SideA, codecSDP(a, "0 PCMU/8000", "101 telephone-event/8000"))
	if err != nil {
		t.Fatalf("Offer: %v", err)
	}
	toA, err := s.Answer(SideB, codecSDP(b, "8 PCMA/8000", "101 telephone-event/8000"))
	if err != nil {
		t.Fatalf("Answer: %v", err)
	}
	portA, portB := mPort(t, toA, 0), mPort(t, toB, 0)
	ulaw := tone(t, "PCMU")
	alaw := recode(t, ulaw, "PCMU", "PCMA")
	back := recode(t, alaw, "PCMA", "PCMU")
	for i := range 5 {
		send(t, a.rtp, rtpWith(0, uint16(i), ulaw), portA)
		got, _ := recv(t, b.rtp)
		if got[1]&0x7f != 8 || !bytes.Equal(got[12:], alaw) {
			t.Fatalf("A→B packet %d: PT %d payload %x, want PT 8 payload %x", i, got[1]&0x7f, got[12:20], alaw[:8])
		}
		send(t, b.rtp, rtpWith(8, uint16(i), alaw), portB)
		got, _ = recv(t, a.rtp)
		if got[1]&0x7f != 0 || !bytes.Equal(got[12:], back) {
			t.Fatalf("B→A packet %d: PT %d payload %x, want PT 0 payload %x", i, got[1]&0x7f, got[12:20], back[:8])
		}
	}
	// A's sender report names the stream B receives: its SSRC, and an
	// RTP timestamp of B's stream's clock (the same rate here).
	send(t, a.rtp, rtpWith(0, 5, ulaw), portA)
	rtpB, _ := recv(t, b.rtp)
	sr := senderReport(0x11223344, 5*160)
	send(t, a.rtcp, sr, portA+1)
	got, _ := recv(t, b.rtcp)
	if len(got) < 28 || got[1] != 200 || !bytes.Equal(got[4:8], rtpB[8:12]) || !bytes.Equal(got[16:20], rtpB[4:8]) {
		t.Fatalf("A→B sender report %x: want SSRC %x and RTP time %x of the stream B gets", got, rtpB[8:12], rtpB[4:8])
	}
	rr := rtcpPacket()
	send(t, b.rtcp, rr, portB+1)
	if got, _ := recv(t, a.rtcp); len(got) != len(rr) || got[1] != rr[1] {
		t.Fatalf("B→A RTCP: %x", got)
	}
	st := s.Stats()
	if st.AtoB.Packets != 6 || st.BtoA.Packets != 5 || st.AtoB.RTCPPackets != 1 || st.BtoA.RTCPPackets != 1 {
		t.Fatalf("relayed %d RTP and %d RTCP A→B, %d and %d B→A; want 6 and 1, 5 and 1", st.AtoB.Packets, st.AtoB.RTCPPackets, st.BtoA.Packets, st.BtoA.RTCPPackets)
	}
}

// tone is 20 ms of a 1 kHz sine encoded as name.
func tone(t testing.TB, name string) []byte {
	t.Helper()
	enc, err := codec.NewEncoder(codec.Format{Name: name, ClockRate: 8000})
	if err != nil {
		t.Fatal(err)
	}
	pcm := make([]int16, 160)
	for i := range pcm {
		pcm[i] = []int16{0, 5792, 8191, 5792, 0, -5792, -8191, -5792}[i%8]
	}
	out, err := enc.Encode(nil, pcm)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// recode is payload of codec from decoded and encoded as to.
func recode(t testing.TB, payload []byte, from, to string) []byte {
	t.Helper()
	dec, err := codec.NewDecoder(codec.Format{Name: from, ClockRate: 8000})
	if err != nil {
		t.Fatal(err)
	}
	enc, err := codec.NewEncoder(codec.Format{Name: to, ClockRate: 8000})
	if err != nil {
		t.Fatal(err)
	}
	pcm, err := dec.Decode(nil, payload)
	if err != nil {
		t.Fatal(err)
	}
	out, err := enc.Encode(nil, pcm)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// senderReport is an RTCP SR from ssrc at RTP time ts, no report block.
func senderReport(ssrc, ts uint32) []byte {
	p := make([]byte, 28)
	p[0], p[1], p[3] = 0x80, 200, 6
	binary.BigEndian.PutUint32(p[4:], ssrc)
	binary.BigEndian.PutUint32(p[16:], ts)
	return p
}

func rtpWith(pt uint8, seq uint16, payload []byte) []byte {
	pkt := append(make([]byte, 12), payload...)
	pkt[0], pkt[1] = 0x80, pt
	pkt[2], pkt[3] = byte(seq>>8), byte(seq)
	ts := uint32(seq) * 160
	pkt[4], pkt[5], pkt[6], pkt[7] = byte(ts>>24), byte(ts>>16), byte(ts>>8), byte(ts)
	pkt[8], pkt[9], pkt[10], pkt[11] = 0x11, 0x22, 0x33, 0x44
	return pkt
}

// TestTranscodeCapacity: with MaxTranscoded 1, a second offer that only
// transcoding can carry fails with ErrTranscodeCapacity while one that
// shares a codec still goes through; the slot comes back when the first
// session ends.
func TestTranscodeCapacity(t *testing.T) {
	m := newTestManager(t, 8, netip.Addr{}, func(c *Config) { c.MaxTranscoded = 1 })
	pcma := SideOptions{Codecs: []string{"pcma"}}
	open := func(name string, offer ...string) (*Session, error) {
		s := m.NewSession(name)
		t.Cleanup(s.Close)
		s.Configure(SideB, pcma)
		_, err := s.Offer(SideA, codecSDP(newPeer(t, false), offer...))
		return s, err
	}
	first, err := open("first", "0 PCMU/8000")
	if err != nil {
		t.Fatalf("first offer: %v", err)
	}
	if _, err := first.Answer(SideB, codecSDP(newPeer(t, false), "8 PCMA/8000")); err != nil {
		t.Fatalf("first answer: %v", err)
	}
	if _, err := open("second", "0 PCMU/8000"); !errors.Is(err, ErrTranscodeCapacity) {
		t.Fatalf("second transcoded offer: %v, want %v", err, ErrTranscodeCapacity)
	}
	if _, err := open("relayed", "8 PCMA/8000"); err != nil {
		t.Fatalf("offer sharing a codec at capacity: %v", err)
	}
	if active, total := m.Transcoding(); active != 1 || total != 1 {
		t.Fatalf("transcoding %d now, %d in all; want 1, 1", active, total)
	}
	first.Close()
	if active, _ := m.Transcoding(); active != 0 {
		t.Fatalf("transcoding %d after the first closed", active)
	}
	if _, err := open("third", "0 PCMU/8000"); err != nil {
		t.Fatalf("transcoded offer after the first closed: %v", err)
	}
}

// TestTranscodeReoffers: in a transcoded call, a hold re-offer from the
// trunk side keeps the transcoders (audio still converted after it), and
// a re-offer from the caller that now shares the trunk's codec goes back
// to the relay (nothing transcoded, the manager's gauge at 0).
func TestTranscodeReoffers(t *testing.T) {
	m := newTestManager(t, 4, netip.Addr{}, nil)
	s := m.NewSession("tc-reoffer")
	defer s.Close()
	a, b := newPeer(t, false), newPeer(t, false)
	s.Configure(SideB, SideOptions{Codecs: []string{"pcma"}})
	toB, err := s.Offer(SideA, codecSDP(a, "0 PCMU/8000"))
	if err != nil {
		t.Fatal(err)
	}
	toA, err := s.Answer(SideB, codecSDP(b, "8 PCMA/8000"))
	if err != nil {
		t.Fatal(err)
	}
	portA := mPort(t, toA, 0)
	if mPort(t, toB, 0) == 0 {
		t.Fatal("no port toward B")
	}
	ulaw := tone(t, "PCMU")
	alaw := recode(t, ulaw, "PCMU", "PCMA")
	relayOne := func(what string, seq uint16) {
		t.Helper()
		send(t, a.rtp, rtpWith(0, seq, ulaw), portA)
		if got, _ := recv(t, b.rtp); got[1]&0x7f != 8 || !bytes.Equal(got[12:], alaw) {
			t.Fatalf("%s: A→B PT %d, want PCMA with A's audio", what, got[1]&0x7f)
		}
	}
	relayOne("before the re-offers", 1)
	first := s.streams[0].flows[SideA].plan.Load().tc

	// The trunk holds the call: PCMA sendonly.
	hold := codecSDP(b, "8 PCMA/8000")
	hold = append(hold, []byte("a=sendonly\r\n")...)
	toA2, err := s.Offer(SideB, hold)
	if err != nil {
		t.Fatalf("hold offer: %v", err)
	}
	if got := rtpmaps(t, toA2); len(got) == 0 || got[0] != "8 PCMA/8000" {
		t.Fatalf("hold offered to A %q, want PCMA first", got)
	}
	if _, err := s.Answer(SideA, append(codecSDP(a, "0 PCMU/8000"), []byte("a=recvonly\r\n")...)); err != nil {
		t.Fatalf("hold answer: %v", err)
	}
	if !s.Transcoded() || s.Codecs() != [2]string{"PCMU/8000", "PCMA/8000"} {
		t.Fatalf("after hold: transcoded %v, codecs %q", s.Transcoded(), s.Codecs())
	}
	if s.streams[0].flows[SideA].plan.Load().tc != first {
		t.Error("a hold that changes no codec rebuilt the A→B transcoder")
	}
	relayOne("after the hold", 2)

	// The caller re-offers PCMA: shared, relayed.
	if _, err := s.Offer(SideA, codecSDP(a, "8 PCMA/8000")); err != nil {
		t.Fatalf("re-offer: %v", err)
	}
	if _, err := s.Answer(SideB, codecSDP(b, "8 PCMA/8000")); err != nil {
		t.Fatalf("re-answer: %v", err)
	}
	if active, _ := m.Transcoding(); active != 0 || s.Codecs() != [2]string{"PCMA/8000", "PCMA/8000"} {
		t.Fatalf("after a shared codec: %d sessions transcode, codecs %q", active, s.Codecs())
	}
	send(t, a.rtp, rtpWith(8, 3, alaw), portA)
	if got, _ := recv(t, b.rtp); got[1]&0x7f != 8 || !bytes.Equal(got[12:], alaw) {
		t.Fatalf("relayed PCMA changed on its way: PT %d", got[1]&0x7f)
	}
}

// TestRestoreTranscoded: a transcoded session's state restored by another
// manager (a node taking the call over) transcodes again: PCMU from A
// still reaches B as PCMA, and the new manager counts the call.
func TestRestoreTranscoded(t *testing.T) {
	m1 := newTestManager(t, 4, netip.Addr{}, nil)
	s := m1.NewSession("tc-restored")
	a, b := newPeer(t, false), newPeer(t, false)
	s.Configure(SideB, SideOptions{Codecs: []string{"pcma"}})
	if _, err := s.Offer(SideA, codecSDP(a, "0 PCMU/8000")); err != nil {
		t.Fatal(err)
	}
	toA, err := s.Answer(SideB, codecSDP(b, "8 PCMA/8000"))
	if err != nil {
		t.Fatal(err)
	}
	portA := mPort(t, toA, 0)
	ulaw := tone(t, "PCMU")
	alaw := recode(t, ulaw, "PCMU", "PCMA")
	send(t, a.rtp, rtpWith(0, 1, ulaw), portA)
	recv(t, b.rtp)
	st := s.State()
	s.Close()
	m1.Close() // the dead node: its sockets gone

	m2, err := NewManager(m1.cfg, testLog())
	if err != nil {
		t.Fatal(err)
	}
	defer m2.Close()
	s2, err := m2.Restore(st, nil)
	if err != nil {
		t.Fatalf("Restore: %v", err)
	}
	defer s2.Close()
	send(t, a.rtp, rtpWith(0, 2, ulaw), portA)
	if got, _ := recv(t, b.rtp); got[1]&0x7f != 8 || !bytes.Equal(got[12:], alaw) {
		t.Fatalf("after the restore A→B PT %d payload %x, want PCMA %x", got[1]&0x7f, got[12:20], alaw[:8])
	}
	if active, _ := m2.Transcoding(); active != 1 || !s2.Transcoded() {
		t.Fatalf("restored: %d sessions transcode, Transcoded %v", active, s2.Transcoded())
	}
}
