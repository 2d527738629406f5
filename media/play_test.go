package media

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/sbc-project/sbc/media/announce"
	"github.com/sbc-project/sbc/media/codec"
)

// TestPlayBeforeAnswer is local ringback on a plain call: the session
// answers A itself, plays a tone toward it in the answered codec with one
// SSRC, consecutive sequence numbers and timestamps 20 ms apart, and
// stops as soon as B's real media reaches A, which continues the stream.
func TestPlayBeforeAnswer(t *testing.T) {
	m := newTestManager(t, 4, loopback, nil)
	s := m.NewSession("call-play")
	a, b := newPeer(t, true), newPeer(t, true)
	offerB, err := s.Offer(SideA, a.sdp())
	if err != nil {
		t.Fatalf("Offer: %v", err)
	}
	ans, err := s.AnswerLocally(SideA)
	if err != nil {
		t.Fatalf("AnswerLocally: %v", err)
	}
	sd := parse(t, ans)
	if c := sd.ConnectionInformation; c == nil || c.Address.Address != "127.0.0.1" {
		t.Errorf("local answer's c= is not the SBC's address:\n%s", ans)
	}
	if got := sd.MediaDescriptions[0].MediaName.Formats; strings.Join(got, " ") != "0 101" {
		t.Errorf("local answer's formats %v, want PCMU and telephone-event:\n%s", got, ans)
	}
	if strings.Contains(string(ans), "sendonly") || strings.Contains(string(ans), "early.invalid") {
		t.Errorf("local answer must be sendrecv with the SBC's address:\n%s", ans)
	}
	tone, _ := announce.Tone{Freqs: []float64{440}}.Clip(8000)
	pb, err := s.Play(SideA, announce.Player{Clip: tone})
	if err != nil {
		t.Fatalf("Play: %v", err)
	}
	var last []byte
	for i := range 10 {
		pkt, _ := recv(t, a.rtp)
		if pkt[1]&0x7f != 0 {
			t.Fatalf("packet %d: payload type %d, want 0 (PCMU)", i, pkt[1]&0x7f)
		}
		if marker := pkt[1]&0x80 != 0; marker != (i == 0) {
			t.Errorf("packet %d: marker %v", i, marker)
		}
		if last != nil {
			if d := binary.BigEndian.Uint16(pkt[2:]) - binary.BigEndian.Uint16(last[2:]); d != 1 {
				t.Errorf("packet %d: sequence step %d, want 1", i, d)
			}
			if d := binary.BigEndian.Uint32(pkt[4:]) - binary.BigEndian.Uint32(last[4:]); d != 160 {
				t.Errorf("packet %d: timestamp step %d, want 160", i, d)
			}
			if binary.BigEndian.Uint32(pkt[8:]) != binary.BigEndian.Uint32(last[8:]) {
				t.Errorf("packet %d: SSRC changed", i)
			}
		}
		dec, _ := codec.NewDecoder(codec.Format{Name: "PCMU"})
		pcm, _ := dec.Decode(nil, pkt[12:])
		if p := announce.Goertzel(pcm, 8000, 440); p < 0.003 {
			t.Errorf("packet %d: 440 Hz power %.5f, want the tone", i, p)
		}
		last = pkt
	}
	// B answers and sends: the tone stops, B's packets continue the stream.
	if _, err := s.Answer(SideB, b.sdp()); err != nil {
		t.Fatalf("real Answer: %v", err)
	}
	port := mPort(t, offerB, 0)
	stop := make(chan struct{})
	go func() {
		for seq := uint16(500); ; seq++ {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			b.rtp.WriteToUDPAddrPort(rtpPacket(seq), netip.AddrPortFrom(loopback, uint16(port)))
		}
	}()
	select {
	case <-pb.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("playback did not stop when B's media arrived")
	}
	if err := pb.Err(); err != nil {
		t.Errorf("playback error: %v", err)
	}
	ssrc := binary.BigEndian.Uint32(last[8:])
	for range 100 {
		pkt, _ := recv(t, a.rtp)
		if binary.BigEndian.Uint32(pkt[8:]) != ssrc {
			t.Fatalf("B's media came with another SSRC than the ringback's")
		}
		if pkt[12] == 0 { // rtpPacket's payload is zeros; the tone's never is
			break
		}
	}
	close(stop)
	s.Close()
	m.Close() // the poll loops are the manager's
	checkNoGoroutines(t)
}

func TestAnswerLocallyRefuses(t *testing.T) {
	m := newTestManager(t, 4, loopback, nil)
	s := m.NewSession("call-local")
	defer s.Close()
	if _, err := s.AnswerLocally(SideA); !errors.Is(err, ErrNoLocalAnswer) {
		t.Errorf("without an offer: %v, want ErrNoLocalAnswer", err)
	}
	if _, err := s.Play(SideA, announce.Player{}); !errors.Is(err, ErrNoLocalAnswer) {
		t.Errorf("play before any answer: %v, want ErrNoLocalAnswer", err)
	}
	a := newPeer(t, true)
	gsm := strings.Replace(string(a.sdp()), "RTP/AVP 0 8 101", "RTP/AVP 3", 1)
	if _, err := s.Offer(SideA, []byte(gsm)); err != nil {
		t.Fatalf("Offer: %v", err)
	}
	if _, err := s.AnswerLocally(SideA); !errors.Is(err, ErrNoLocalAnswer) {
		t.Errorf("GSM only: %v, want ErrNoLocalAnswer", err)
	}
}
