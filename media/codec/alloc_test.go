package codec

import (
	"os"
	"testing"
)

// TestTranscoderAllocs: in steady state Packet allocates nothing (its
// buffers are reused), in every direction, with packet-time adaptation.
func TestTranscoderAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under the race detector")
	}
	for _, d := range directions() {
		to := withPtime(d.to, 30)
		t.Run(d.from.Name+"-"+d.to.Name, func(t *testing.T) {
			tr, err := NewTranscoder(Direction{From: d.from, To: to, FromDTMF: 101, ToDTMF: 101, SSRC: 1})
			if err != nil {
				t.Fatal(err)
			}
			s := newSender(t, d.from, 20)
			var ps [][]byte
			for i := range 200 {
				ps = append(ps, s.next(1000, 8000))
				if i%10 == 5 { // a telephone-event now and then
					ps = append(ps, rtpPacket(101, false, s.seq, s.ts, 0x1234, []byte{1, 10, 0, 160}))
					s.seq++
				}
			}
			sent := 0
			emit := func(p []byte) { sent++ }
			i := 0
			feed := func() {
				_ = tr.Packet(ps[i], emit)
				i++
			}
			for range 20 {
				feed()
			}
			if n := testing.AllocsPerRun(100, feed); n != 0 {
				t.Errorf("%.1f allocations per packet", n)
			}
			if sent == 0 {
				t.Error("nothing sent")
			}
		})
	}
}

// TestOpusInCI: the tests that need libopus skip the Opus directions in a
// build without the tag; in CI (scripts/test.sh's
// SBC_REQUIRE_OPUS=1) that would hide them, so it fails instead.
func TestOpusInCI(t *testing.T) {
	if os.Getenv("SBC_REQUIRE_OPUS") != "1" {
		t.Skip("SBC_REQUIRE_OPUS is not 1 (scripts/test.sh sets it; its static-build step runs without Opus on purpose)")
	}
	if !Supported("opus") {
		t.Fatal("Opus is not built in: run the tests with -tags opus (libopus-dev and pkg-config installed), as scripts/test.sh does")
	}
}
