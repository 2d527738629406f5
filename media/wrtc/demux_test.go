package wrtc

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/pion/rtcp"
	"github.com/pion/srtp/v3"
)

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		name string
		pkt  []byte
		want Class
	}{
		{"empty", nil, ClassUnknown},
		{"stun", []byte{0x00, 0x01}, ClassSTUN},
		{"stun_3", []byte{3}, ClassSTUN},
		{"gap_4", []byte{4}, ClassUnknown},
		{"zrtp", []byte{16, 0}, ClassZRTP},
		{"dtls_20", []byte{20}, ClassDTLS},
		{"dtls_handshake", []byte{22, 0xfe, 0xfd}, ClassDTLS},
		{"dtls_63", []byte{63}, ClassDTLS},
		{"turn", []byte{64, 0}, ClassTURN},
		{"gap_80", []byte{80}, ClassUnknown},
		{"rtp_first_byte_only", []byte{0x80}, ClassUnknown},
		{"rtp_pcmu", []byte{0x80, 0}, ClassRTP},
		{"rtp_marker_opus", []byte{0x80, 0x80 | 111}, ClassRTP},
		{"rtcp_sr", []byte{0x80, 200}, ClassRTCP},
		{"rtcp_192", []byte{0x80, 192}, ClassRTCP},
		{"rtcp_223", []byte{0x81, 223}, ClassRTCP},
		{"rtp_224", []byte{0x80, 224}, ClassRTP},
		{"rtp_191", []byte{191, 0}, ClassRTP},
		{"gap_192", []byte{192, 200}, ClassUnknown},
		{"gap_255", []byte{255}, ClassUnknown},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Classify(tc.pkt); got != tc.want {
				t.Fatalf("Classify(%x) = %v, want %v", tc.pkt, got, tc.want)
			}
		})
	}
}

// keyedDemux is a demux with SRTP keys and one route, plus the peer-side
// encrypt context that produces packets for it.
type keyedDemux struct {
	d    *demux
	c    *counters
	peer *srtp.Context // encrypts what d decrypts
	send *srtpKeys     // the same keys as peer, as a Transport's send path has them
	sink *countSink
	dtls int
}

// countSink counts packets and keeps the last one.
type countSink struct {
	rtp, rtcp int
	last      []byte
}

func (s *countSink) RTP(pkt []byte)  { s.rtp++; s.last = append(s.last[:0], pkt...) }
func (s *countSink) RTCP(pkt []byte) { s.rtcp++; s.last = append(s.last[:0], pkt...) }

const (
	testSSRC = 0x0a0b0c0d
	testPT   = 111
)

// newKeyedDemux builds the receive path the way startSRTP does, with fixed
// keys for profile.
func newKeyedDemux(tb testing.TB, profile srtp.ProtectionProfile) *keyedDemux {
	tb.Helper()
	keyLen, _ := profile.KeyLen()
	saltLen, _ := profile.SaltLen()
	keys := srtp.SessionKeys{
		RemoteMasterKey:  bytes.Repeat([]byte{1}, keyLen),
		RemoteMasterSalt: bytes.Repeat([]byte{2}, saltLen),
		LocalMasterKey:   bytes.Repeat([]byte{3}, keyLen),
		LocalMasterSalt:  bytes.Repeat([]byte{4}, saltLen),
	}
	rx, _, err := newSRTPContexts(profile, keys)
	if err != nil {
		tb.Fatal(err)
	}
	peer, err := srtp.CreateContext(keys.RemoteMasterKey, keys.RemoteMasterSalt, profile)
	if err != nil {
		tb.Fatal(err)
	}
	_, send, err := newSRTPContexts(profile, srtp.SessionKeys{LocalMasterKey: keys.RemoteMasterKey,
		LocalMasterSalt: keys.RemoteMasterSalt, RemoteMasterKey: keys.LocalMasterKey, RemoteMasterSalt: keys.LocalMasterSalt})
	if err != nil {
		tb.Fatal(err)
	}
	k := &keyedDemux{c: &counters{}, peer: peer, send: send, sink: &countSink{}}
	k.d = newDemux(k.c, func([]byte) { k.dtls++ })
	k.d.rx.Store(rx)
	k.d.routes.Store(newRouteTable([]Route{{PTs: []uint8{testPT}, SSRCs: []uint32{testSSRC}, Sink: k.sink}}))
	return k
}

// srtpPacket encrypts an RTP packet as the peer would.
func (k *keyedDemux) srtpPacket(tb testing.TB, ssrc uint32, pt uint8, seq uint16, payload []byte) []byte {
	tb.Helper()
	out, err := k.peer.EncryptRTP(nil, rtpPacket(tb, ssrc, pt, seq, payload), nil)
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

// srtcpPacket encrypts an RTCP receiver report from ssrc as the peer would.
func (k *keyedDemux) srtcpPacket(tb testing.TB, ssrc uint32) []byte {
	tb.Helper()
	raw, err := (&rtcp.ReceiverReport{SSRC: ssrc}).Marshal()
	if err != nil {
		tb.Fatal(err)
	}
	out, err := k.peer.EncryptRTCP(nil, raw, nil)
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

func tamper(pkt []byte) []byte {
	out := bytes.Clone(pkt)
	out[len(out)-1] ^= 0x55
	return out
}

// TestDecryptCounters drives the receive path with good, replayed, forged,
// malformed and foreign packets; each lands in its counter and none panics.
func TestDecryptCounters(t *testing.T) {
	for _, profile := range benchProfiles {
		t.Run(profileName(profile), func(t *testing.T) {
			k := newKeyedDemux(t, profile)
			good := k.srtpPacket(t, testSSRC, testPT, 1, payloadN(1))
			goodRTCP := k.srtcpPacket(t, testSSRC)
			steps := []struct {
				name string
				pkt  []byte
				want Counters
			}{
				{"rtp", good, Counters{RTPIn: 1}},
				{"rtp_replay", good, Counters{SRTPReplay: 1}},
				{"rtp_bad_tag", tamper(k.srtpPacket(t, testSSRC, testPT, 2, payloadN(2))), Counters{SRTPAuthFail: 1}},
				{"rtp_unrouted", k.srtpPacket(t, 0x999, 8, 1, payloadN(3)), Counters{Unrouted: 1}},
				{"rtp_routed_by_pt", k.srtpPacket(t, 0x998, testPT, 1, payloadN(4)), Counters{RTPIn: 1}},
				{"rtp_header_only", []byte{0x80, testPT}, Counters{Malformed: 1}},
				{"rtp_short_tag", good[:14], Counters{Malformed: 1}},
				{"rtcp", goodRTCP, Counters{RTCPIn: 1}},
				{"rtcp_replay", goodRTCP, Counters{SRTPReplay: 1}},
				{"rtcp_bad_tag", tamper(k.srtcpPacket(t, testSSRC)), Counters{SRTPAuthFail: 1}},
				{"rtcp_short", []byte{0x80, 200, 0, 1}, Counters{Malformed: 1}},
				{"dtls", []byte{22, 0xfe, 0xfd, 0}, Counters{DTLSPackets: 1}},
				{"stun", []byte{0, 1, 0, 0}, Counters{Unknown: 1}},
				{"garbage", []byte{0xff, 0xff, 0xff}, Counters{Unknown: 1}},
				{"empty", nil, Counters{Unknown: 1}},
			}
			for _, s := range steps {
				before := k.c.snapshot()
				k.d.handle(s.pkt)
				got := diff(k.c.snapshot(), before)
				s.want.BytesIn = uint64(len(s.pkt))
				if got != s.want {
					t.Errorf("%s: counted %+v, want %+v", s.name, got, s.want)
				}
			}
			if k.sink.rtp != 2 || k.sink.rtcp != 1 || k.dtls != 1 {
				t.Fatalf("sink got %d RTP, %d RTCP; dtls got %d", k.sink.rtp, k.sink.rtcp, k.dtls)
			}
		})
	}
}

// TestNotReady: SRTP/SRTCP before the keys is held (up to maxEarly, the
// rest counted as NotReady) and delivered when install publishes the keys;
// what is still held at Close is counted as NotReady.
func TestNotReady(t *testing.T) {
	k := newKeyedDemux(t, srtp.ProtectionProfileAeadAes128Gcm)
	rx := k.d.rx.Load()
	k.d.rx.Store(nil)
	for seq := 1; seq < maxEarly; seq++ {
		k.d.handle(k.srtpPacket(t, testSSRC, testPT, uint16(seq), payloadN(seq)))
	}
	k.d.handle(k.srtcpPacket(t, testSSRC))
	k.d.handle(k.srtpPacket(t, testSSRC, testPT, maxEarly, payloadN(maxEarly))) // one too many
	if c := k.c.snapshot(); c.Early != maxEarly || c.NotReady != 1 || c.RTPIn != 0 || k.sink.rtp != 0 {
		t.Fatalf("before install: counters %+v, sink got %d", c, k.sink.rtp)
	}
	k.d.install(rx)
	if c := k.c.snapshot(); c.RTPIn != maxEarly-1 || c.RTCPIn != 1 || k.sink.rtp != maxEarly-1 || k.sink.rtcp != 1 {
		t.Fatalf("after install: counters %+v, sink got %d RTP %d RTCP", c, k.sink.rtp, k.sink.rtcp)
	}

	k2 := newKeyedDemux(t, srtp.ProtectionProfileAeadAes128Gcm)
	k2.d.rx.Store(nil)
	k2.d.handle(k2.srtpPacket(t, testSSRC, testPT, 1, payloadN(1)))
	k2.d.dropEarly()
	if c := k2.c.snapshot(); c.Early != 1 || c.NotReady != 1 || c.RTPIn != 0 {
		t.Fatalf("dropEarly: counters %+v", c)
	}
}

// TestDecryptPayload checks that the sink gets the plain packet.
func TestDecryptPayload(t *testing.T) {
	k := newKeyedDemux(t, srtp.ProtectionProfileAes128CmHmacSha1_80)
	plain := rtpPacket(t, testSSRC, testPT, 7, payloadN(7))
	pkt, err := k.peer.EncryptRTP(nil, plain, nil)
	if err != nil {
		t.Fatal(err)
	}
	k.d.handle(pkt)
	if !bytes.Equal(k.sink.last, plain) {
		t.Fatalf("sink got %x, want %x", k.sink.last, plain)
	}
}

// diff returns a - b field by field.
func diff(a, b Counters) Counters {
	return Counters{
		RTPIn: a.RTPIn - b.RTPIn, RTPOut: a.RTPOut - b.RTPOut,
		RTCPIn: a.RTCPIn - b.RTCPIn, RTCPOut: a.RTCPOut - b.RTCPOut,
		BytesIn: a.BytesIn - b.BytesIn, BytesOut: a.BytesOut - b.BytesOut,
		SRTPAuthFail: a.SRTPAuthFail - b.SRTPAuthFail, SRTPReplay: a.SRTPReplay - b.SRTPReplay,
		Malformed: a.Malformed - b.Malformed, Unknown: a.Unknown - b.Unknown,
		Unrouted: a.Unrouted - b.Unrouted, DTLSPackets: a.DTLSPackets - b.DTLSPackets,
		NotReady: a.NotReady - b.NotReady,
	}
}

// TestRTCPRouting covers the SSRC walk of compound packets, including
// truncated and zero-length sub-packets.
func TestRTCPRouting(t *testing.T) {
	a, b := &countSink{}, &countSink{}
	tbl := newRouteTable([]Route{
		{SSRCs: []uint32{0xa}, Sink: a},
		{SSRCs: []uint32{0xb}, Sink: b},
	})
	marshal := func(pkts ...rtcp.Packet) []byte {
		raw, err := rtcp.Marshal(pkts)
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	zeroLen := []byte{0x80, 201, 0, 0}
	for _, tc := range []struct {
		name string
		pkt  []byte
		want Sink
	}{
		{"sender", marshal(&rtcp.ReceiverReport{SSRC: 0xb}), b},
		{"rr_block", marshal(&rtcp.ReceiverReport{SSRC: 1, Reports: []rtcp.ReceptionReport{{SSRC: 2}, {SSRC: 0xb}}}), b},
		{"sr_block", marshal(&rtcp.SenderReport{SSRC: 1, Reports: []rtcp.ReceptionReport{{SSRC: 0xb}}}), b},
		{"pli_media", marshal(&rtcp.PictureLossIndication{SenderSSRC: 1, MediaSSRC: 0xb}), b},
		{"nack_media", marshal(&rtcp.TransportLayerNack{SenderSSRC: 1, MediaSSRC: 0xb}), b},
		{"bye_list", marshal(&rtcp.Goodbye{Sources: []uint32{1, 0xb}}), b},
		{"compound_second", marshal(&rtcp.ReceiverReport{SSRC: 1}, &rtcp.PictureLossIndication{SenderSSRC: 1, MediaSSRC: 0xb}), b},
		{"unknown_falls_back", marshal(&rtcp.ReceiverReport{SSRC: 1}), a},
		{"zero_length_then_known", append(bytes.Clone(zeroLen), marshal(&rtcp.ReceiverReport{SSRC: 0xb})...), b},
		{"overlong_length_block_in_bounds", binary.BigEndian.AppendUint32([]byte{0x81, 201, 0xff, 0xff, 0, 0, 0, 1}, 0xb), b},
		{"overlong_length_block_cut", []byte{0x81, 201, 0xff, 0xff, 0, 0, 0, 1, 0, 0, 0}, a},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tbl.rtcpSink(tc.pkt); got != tc.want {
				t.Fatalf("routed to the wrong sink")
			}
		})
	}
	if newRouteTable(nil).rtcpSink([]byte{0x80, 201, 0, 1, 0, 0, 0, 0xa}) != nil {
		t.Fatal("no routes must mean no sink")
	}
}
