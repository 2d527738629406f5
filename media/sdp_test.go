package media

import (
	"errors"
	"github.com/sbc-project/sbc/media/sdpconv"
	"net/netip"
	"regexp"
	"strings"
	"testing"
)

var public = netip.MustParseAddr("203.0.113.5")

// hasToken reports whether s contains tok not as part of a longer number
// or word, so a port is not found inside a random session id.
func hasToken(s, tok string) bool {
	return regexp.MustCompile(`(^|[^0-9A-Za-z.])` + regexp.QuoteMeta(tok) + `($|[^0-9A-Za-z.])`).MatchString(s)
}

func TestOfferAnswerRewrite(t *testing.T) {
	calleeAnswer := sipSDP("198.51.100.20", 30000)
	tests := []struct {
		name   string
		offer  []byte // from A
		answer []byte // from B
		// hiddenA must not reach B, hiddenB must not reach A.
		hiddenA, hiddenB []string
		// wantB must be in the offer toward B; wantA in the answer toward A.
		wantB, wantA []string
	}{
		{
			name:    "sipp audio",
			offer:   sipSDP("192.0.2.10", 49170),
			answer:  calleeAnswer,
			hiddenA: []string{"192.0.2.10", "49170", "49171", "user1"},
			hiddenB: []string{"198.51.100.20", "30000", "30001", "user1"},
			wantB: []string{"c=IN IP4 203.0.113.5", "a=rtpmap:0 PCMU/8000", "a=rtpmap:8 PCMA/8000",
				"a=rtpmap:101 telephone-event/8000", "a=fmtp:101 0-15", "a=ptime:20", "s=sbc", " IN IP4 203.0.113.5\r\n"},
			wantA: []string{"c=IN IP4 203.0.113.5", "a=rtpmap:0 PCMU/8000", "s=sbc"},
		},
		{
			name: "transport attributes stripped",
			offer: sipSDP("192.0.2.10", 49170,
				"a=rtcp:49999 IN IP4 192.0.2.11",
				"a=candidate:1 1 udp 2130706431 192.0.2.12 50000 typ host",
				"a=ice-ufrag:abcd", "a=ice-pwd:secretsecretsecret",
				"a=fingerprint:sha-256 AA:BB", "a=setup:actpass", "a=rtcp-mux",
				"a=ssrc:1234 cname:user@192.0.2.10"),
			answer:  calleeAnswer,
			hiddenA: []string{"192.0.2.10", "192.0.2.11", "192.0.2.12", "49170", "49999", "50000", "candidate", "ice-", "fingerprint", "setup", "rtcp-mux", "a=rtcp"},
			hiddenB: []string{"198.51.100.20", "30000"},
			wantB:   []string{"a=rtpmap:0 PCMU/8000"},
		},
		{
			name:    "port 0 line stays rejected",
			offer:   sipSDP("192.0.2.10", 49170, "m=video 0 RTP/AVP 96", "a=rtpmap:96 H264/90000"),
			answer:  append(calleeAnswer, []byte("m=video 0 RTP/AVP 96\r\n")...),
			hiddenA: []string{"192.0.2.10", "49170"},
			hiddenB: []string{"198.51.100.20", "30000"},
			wantB:   []string{"m=video 0 RTP/AVP 96", "a=rtpmap:96 H264/90000"},
			wantA:   []string{"m=video 0 RTP/AVP 96"},
		},
		{
			name:    "unsupported proto rejected",
			offer:   sipSDP("192.0.2.10", 49170, "m=audio 49180 TCP/RTP/AVP 0"),
			answer:  append(calleeAnswer, []byte("m=audio 0 TCP/RTP/AVP 0\r\n")...),
			hiddenA: []string{"192.0.2.10", "49170", "49180"},
			hiddenB: []string{"198.51.100.20"},
			wantB:   []string{"m=audio 0 TCP/RTP/AVP 0"},
			wantA:   []string{"m=audio 0 TCP/RTP/AVP 0"},
		},
		{
			name:    "sendonly hold passes through",
			offer:   sipSDP("192.0.2.10", 49170, "a=sendonly"),
			answer:  sipSDP("198.51.100.20", 30000, "a=recvonly"),
			hiddenA: []string{"192.0.2.10", "49170"},
			hiddenB: []string{"198.51.100.20", "30000"},
			wantB:   []string{"a=sendonly"},
			wantA:   []string{"a=recvonly"},
		},
		{
			name:    "old-style hold",
			offer:   sipSDP("0.0.0.0", 49170, "a=inactive"),
			answer:  sipSDP("198.51.100.20", 30000, "a=inactive"),
			hiddenA: []string{"0.0.0.0", "49170"},
			wantB:   []string{"c=IN IP4 203.0.113.5", "a=inactive"},
			wantA:   []string{"a=inactive"},
		},
		{
			name:    "ipv6 side",
			offer:   sipSDP("2001:db8::10", 49170),
			answer:  calleeAnswer,
			hiddenA: []string{"2001:db8::10", "IP6", "49170"},
			wantB:   []string{"c=IN IP4 203.0.113.5"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := newTestManager(t, 8, public, nil)
			s := m.NewSession("call-" + tc.name)
			defer s.Close()
			toB, err := s.Offer(SideA, tc.offer)
			if err != nil {
				t.Fatalf("Offer: %v", err)
			}
			toA, err := s.Answer(SideB, tc.answer)
			if err != nil {
				t.Fatalf("Answer: %v", err)
			}
			checkHidden(t, "offer to B", string(toB), tc.hiddenA)
			checkHidden(t, "answer to A", string(toA), tc.hiddenB)
			checkHas(t, "offer to B", string(toB), tc.wantB)
			checkHas(t, "answer to A", string(toA), tc.wantA)
			checkPorts(t, m, tc.offer, toB)
			checkPorts(t, m, tc.answer, toA)
		})
	}
}

func checkHidden(t *testing.T, what, body string, hidden []string) {
	t.Helper()
	for _, h := range hidden {
		if hasToken(body, h) || (strings.ContainsAny(h, ".:-") && strings.Contains(body, h)) {
			t.Errorf("%s reveals %q:\n%s", what, h, body)
		}
	}
}

func checkHas(t *testing.T, what, body string, want []string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(body, w) {
			t.Errorf("%s lacks %q:\n%s", what, w, body)
		}
	}
}

// checkPorts: every m-line of out is port 0 exactly when in's is unusable,
// and otherwise a port of the manager's range.
func checkPorts(t *testing.T, m *Manager, in, out []byte) {
	t.Helper()
	sdIn, sdOut := parse(t, in), parse(t, out)
	if len(sdIn.MediaDescriptions) != len(sdOut.MediaDescriptions) {
		t.Fatalf("m-line count %d, want %d", len(sdOut.MediaDescriptions), len(sdIn.MediaDescriptions))
	}
	d, err := sdpconv.Parse(in)
	if err != nil {
		t.Fatalf("parse offer: %v", err)
	}
	for i := range sdIn.MediaDescriptions {
		got := sdOut.MediaDescriptions[i].MediaName.Port.Value
		usable := d.Media[i].Usable && d.Media[i].Port > 0
		switch {
		case !usable && got != 0:
			t.Errorf("m-line %d: port %d, want 0 (rejected)", i, got)
		case usable && (got < m.cfg.PortMin || got > m.cfg.PortMax || got%2 != 0):
			t.Errorf("m-line %d: port %d outside even ports of %d-%d", i, got, m.cfg.PortMin, m.cfg.PortMax)
		}
	}
}

func TestOriginVersion(t *testing.T) {
	m := newTestManager(t, 4, public, nil)
	s := m.NewSession("call-origin")
	defer s.Close()

	offer := func(body []byte) (id, ver uint64) {
		t.Helper()
		out, err := s.Offer(SideA, body)
		if err != nil {
			t.Fatalf("Offer: %v", err)
		}
		o := parse(t, out).Origin
		if o.Username != "sbc" || o.UnicastAddress != public.String() || o.AddressType != "IP4" {
			t.Fatalf("origin %+v, want sbc ... IN IP4 %s", o, public)
		}
		return o.SessionID, o.SessionVersion
	}
	id1, v1 := offer(sipSDP("192.0.2.10", 49170))
	id2, v2 := offer(sipSDP("192.0.2.10", 49170))
	if id2 != id1 || v2 != v1 {
		t.Fatalf("unchanged re-offer: o= %d %d, want %d %d", id2, v2, id1, v1)
	}
	// A new source address alone changes nothing the other side sees.
	id3, v3 := offer(sipSDP("192.0.2.99", 40000))
	if id3 != id1 || v3 != v1 {
		t.Fatalf("address-only change: o= %d %d, want %d %d", id3, v3, id1, v1)
	}
	id4, v4 := offer(sipSDP("192.0.2.10", 49170, "a=sendonly"))
	if id4 != id1 || v4 != v1+1 {
		t.Fatalf("changed re-offer: o= %d %d, want %d %d", id4, v4, id1, v1+1)
	}
	_, v5 := offer(sipSDP("192.0.2.10", 49170, "a=sendonly"))
	if v5 != v4 {
		t.Fatalf("repeated re-offer: version %d, want %d", v5, v4)
	}

	// The other side has its own session id and version.
	out, err := s.Answer(SideB, sipSDP("198.51.100.20", 30000))
	if err != nil {
		t.Fatalf("Answer: %v", err)
	}
	if o := parse(t, out).Origin; o.SessionID == id1 {
		t.Fatalf("side A got side B's session id %d", o.SessionID)
	}
}

func TestBadSDP(t *testing.T) {
	tests := []struct {
		name string
		body string
	}{
		{"empty", ""},
		{"garbage", "INVITE sip:bob@example.com SIP/2.0\r\n\r\n"},
		{"no m-line", "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n"},
		{"only port 0", "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 0 RTP/AVP 0\r\n"},
		// T.38 over UDPTL is relayed (udptl.go); over TCP it is not.
		{"only image over tcp", "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=image 4000 tcptl t38\r\n"},
	}
	m := newTestManager(t, 4, public, nil)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := m.NewSession("call-bad")
			defer s.Close()
			if _, err := s.Offer(SideA, []byte(tc.body)); !errors.Is(err, ErrBadSDP) {
				t.Fatalf("Offer error %v, want ErrBadSDP", err)
			}
			if m.pool.inUse() != 0 {
				t.Fatalf("%d port pairs in use after a refused offer", m.pool.inUse())
			}
		})
	}
}

func TestAnswerErrors(t *testing.T) {
	m := newTestManager(t, 4, public, nil)
	offerA := sipSDP("192.0.2.10", 49170)
	answerB := sipSDP("198.51.100.20", 30000)
	tests := []struct {
		name  string
		setup func(*Session)
		from  Side
		body  []byte
		want  error
	}{
		{"no offer yet", func(*Session) {}, SideB, answerB, ErrNoOffer},
		{"answer from the offerer", offerFrom(SideA, offerA), SideA, answerB, ErrNoOffer},
		{"m-line count differs", offerFrom(SideA, offerA), SideB,
			append(answerB, []byte("m=video 4000 RTP/AVP 96\r\n")...), ErrBadSDP},
		{"all rejected", offerFrom(SideA, offerA), SideB,
			[]byte("v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nc=IN IP4 1.2.3.4\r\nt=0 0\r\nm=audio 0 RTP/AVP 0\r\n"), ErrBadSDP},
		{"closed", func(s *Session) { offerFrom(SideA, offerA)(s); s.Close() }, SideB, answerB, ErrClosed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := m.NewSession("call-answer")
			defer s.Close()
			tc.setup(s)
			if _, err := s.Answer(tc.from, tc.body); !errors.Is(err, tc.want) {
				t.Fatalf("Answer error %v, want %v", err, tc.want)
			}
		})
	}
}

func offerFrom(side Side, body []byte) func(*Session) {
	return func(s *Session) {
		if _, err := s.Offer(side, body); err != nil {
			panic("setup offer: " + err.Error())
		}
	}
}

func TestReofferReusesPorts(t *testing.T) {
	m := newTestManager(t, 8, public, nil)
	s := m.NewSession("call-reoffer")
	defer s.Close()
	video := []string{"m=video 49172 RTP/AVP 96", "a=rtpmap:96 H264/90000"}
	noVideo := []string{"m=video 0 RTP/AVP 96", "a=rtpmap:96 H264/90000"}

	toB, err := s.Offer(SideA, sipSDP("192.0.2.10", 49170))
	if err != nil {
		t.Fatalf("Offer: %v", err)
	}
	toA, err := s.Answer(SideB, sipSDP("198.51.100.20", 30000))
	if err != nil {
		t.Fatalf("Answer: %v", err)
	}
	portB, portA := mPort(t, toB, 0), mPort(t, toA, 0)
	if portA == portB {
		t.Fatalf("both sides face port %d", portA)
	}

	// A adds video: audio keeps its ports, video gets new ones.
	toB2, err := s.Offer(SideA, sipSDP("192.0.2.10", 49170, video...))
	if err != nil {
		t.Fatalf("re-offer with video: %v", err)
	}
	if got := mPort(t, toB2, 0); got != portB {
		t.Fatalf("audio port toward B moved %d -> %d", portB, got)
	}
	videoB := mPort(t, toB2, 1)
	if videoB == 0 || videoB == portB || videoB == portA {
		t.Fatalf("video port toward B %d", videoB)
	}
	if n := m.pool.inUse(); n != 4 {
		t.Fatalf("%d pairs in use with audio+video, want 4", n)
	}
	toA2, err := s.Answer(SideB, sipSDP("198.51.100.20", 30000, "m=video 30002 RTP/AVP 96", "a=rtpmap:96 H264/90000"))
	if err != nil {
		t.Fatalf("answer with video: %v", err)
	}
	if got := mPort(t, toA2, 0); got != portA {
		t.Fatalf("audio port toward A moved %d -> %d", portA, got)
	}

	// B re-INVITEs disabling video: the audio ports stay, video is released.
	toA3, err := s.Offer(SideB, sipSDP("198.51.100.20", 30000, noVideo...))
	if err != nil {
		t.Fatalf("re-offer from B: %v", err)
	}
	if got := mPort(t, toA3, 0); got != portA {
		t.Fatalf("audio port toward A moved %d -> %d on B's re-offer", portA, got)
	}
	if got := mPort(t, toA3, 1); got != 0 {
		t.Fatalf("disabled video toward A has port %d", got)
	}
	if n := m.pool.inUse(); n != 2 {
		t.Fatalf("%d pairs in use after video removed, want 2", n)
	}
	toB3, err := s.Answer(SideA, sipSDP("192.0.2.10", 49170, noVideo...))
	if err != nil {
		t.Fatalf("answer from A: %v", err)
	}
	if got := mPort(t, toB3, 0); got != portB {
		t.Fatalf("audio port toward B moved %d -> %d on A's answer", portB, got)
	}

	// The answerer rejecting a stream releases it too.
	if _, err := s.Offer(SideA, sipSDP("192.0.2.10", 49170, video...)); err != nil {
		t.Fatalf("re-offer video: %v", err)
	}
	if _, err := s.Answer(SideB, sipSDP("198.51.100.20", 30000, noVideo...)); err != nil {
		t.Fatalf("answer rejecting video: %v", err)
	}
	if n := m.pool.inUse(); n != 2 {
		t.Fatalf("%d pairs in use after video rejected, want 2", n)
	}
}
