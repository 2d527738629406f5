package wrtc

import (
	"math/rand/v2"
	"testing"

	"github.com/pion/transport/v4/replaydetector"
)

// TestReplayWindowLikePion: the decrypt contexts' replay detector decides
// as pion's (replaydetector.New with the same window and index limit, what
// srtp.SRTPReplayProtection installs) on every index of sequences that
// advance, reorder, repeat, jump beyond the window, come from far behind
// and reach the end of the index space: the same check, and the same
// answer from accept.
func TestReplayWindowLikePion(t *testing.T) {
	cases := []struct {
		name string
		next func(r *rand.Rand, last uint64) uint64
	}{
		{"in order with losses", func(r *rand.Rand, last uint64) uint64 { return last + 1 + uint64(r.IntN(3)) }},
		{"reordered and repeated", func(r *rand.Rand, last uint64) uint64 {
			return max(int64ToIndex(int64(last)+int64(r.IntN(40))-20), 0)
		}},
		{"jumps and stragglers", func(r *rand.Rand, last uint64) uint64 {
			switch r.IntN(10) {
			case 0:
				return last + srtpReplayWindow + uint64(r.IntN(3000))
			case 1:
				return int64ToIndex(int64(last) - int64(r.IntN(2*srtpReplayWindow)))
			default:
				return last + uint64(r.IntN(5))
			}
		}},
		{"end of the index space", func(r *rand.Rand, last uint64) uint64 {
			if last < srtpMaxIndex-5000 {
				return srtpMaxIndex - 5000
			}
			return last - 50 + uint64(r.IntN(120))
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(1, 2))
			ours := newReplayDetector().(replaydetector.CheckAccepter)
			pion := replaydetector.New(srtpReplayWindow, srtpMaxIndex).(replaydetector.CheckAccepter)
			var idx uint64
			for n := range 20000 {
				idx = c.next(r, idx)
				if n == 0 && r.IntN(2) == 0 {
					idx = 0
				}
				a, b := ours.CheckSeq(idx), pion.CheckSeq(idx)
				if a != b {
					t.Fatalf("packet %d, index %d: check %v, pion %v", n, idx, a.Passed(), b.Passed())
				}
				// Some packets pass the check but fail authentication:
				// never accepted.
				if r.IntN(10) == 0 {
					continue
				}
				if x, y := ours.Accept(a), pion.Accept(b); x != y {
					t.Fatalf("packet %d, index %d: accept %v, pion %v", n, idx, x, y)
				}
			}
		})
	}
}

// int64ToIndex clamps a signed index to the index space's start.
func int64ToIndex(v int64) uint64 {
	if v < 0 {
		return 0
	}
	return uint64(v)
}
