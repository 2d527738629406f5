package wrtc

import "github.com/pion/transport/v4/replaydetector"

// srtpMaxIndex is the largest SRTP packet index (48 bits: ROC and
// sequence number), the limit pion's SRTPReplayProtection gives its
// detector.
const srtpMaxIndex = 1<<48 - 1

// replayWindow is the SRTP replay detector of the decrypt contexts: the
// same decisions as pion's replaydetector.New(srtpReplayWindow,
// srtpMaxIndex), which SRTPReplayProtection installs, at a constant cost.
// Pion's keeps the window as a 1024-bit number shifted left by each new
// index (16 words moved per packet, and its check and accept were 2.4 % of
// the SBC's CPU at 500 WebRTC calls); this one keeps a ring of 1024 bits,
// bit i%1024 telling whether index i was accepted, for the indices
// within the window, and clears only the bits of the indices a new head
// skips. TestReplayWindowLikePion holds it to pion's decisions.
//
// Like pion's, it is used by one goroutine at a time (the demux's).
type replayWindow struct {
	latest uint64 // the highest index accepted (0 before any)
	ring   [srtpReplayWindow / 64]uint64
}

// The ring's size is a whole number of words.
var _ [0]struct{} = [srtpReplayWindow % 64]struct{}{}

var _ replaydetector.CheckAccepter = (*replayWindow)(nil)

// newReplayDetector is the SRTP replay detector factory of the decrypt
// contexts.
func newReplayDetector() replaydetector.ReplayDetector { return &replayWindow{} }

// seen reports whether index i's bit is set.
func (w *replayWindow) seen(i uint64) bool {
	b := i % srtpReplayWindow
	return w.ring[b/64]&(1<<(b%64)) != 0
}

func (w *replayWindow) set(i uint64) {
	b := i % srtpReplayWindow
	w.ring[b/64] |= 1 << (b % 64)
}

func (w *replayWindow) clear(i uint64) {
	b := i % srtpReplayWindow
	w.ring[b/64] &^= 1 << (b % 64)
}

// ok is pion's check: not beyond the index space, not older than the
// window, not accepted already.
func (w *replayWindow) ok(i uint64) bool {
	if i > srtpMaxIndex {
		return false
	}
	if i <= w.latest {
		if w.latest >= srtpReplayWindow+i {
			return false
		}
		return !w.seen(i)
	}
	return true
}

// accept records i as received and reports, as pion does, whether it is
// the newest index (or 0).
func (w *replayWindow) accept(i uint64) bool {
	latest := i == 0
	if i > w.latest {
		// The head moves: the indices it skips, and i itself, leave the
		// bits of the indices now out of the window.
		if i-w.latest >= srtpReplayWindow {
			w.ring = [srtpReplayWindow / 64]uint64{}
		} else {
			for j := w.latest + 1; j <= i; j++ {
				w.clear(j)
			}
		}
		w.latest = i
		latest = true
	}
	// Pion marks the bit (latest-i) mod its limit behind the head.
	if d := (w.latest - i) % srtpMaxIndex; d < srtpReplayWindow {
		w.set(w.latest - d)
	}
	return latest
}

// CheckSeq implements replaydetector.CheckAccepter.
func (w *replayWindow) CheckSeq(i uint64) replaydetector.Token {
	if !w.ok(i) {
		return replaydetector.Rejected(i)
	}
	return replaydetector.Passed(i)
}

// Accept implements replaydetector.CheckAccepter.
func (w *replayWindow) Accept(tok replaydetector.Token) bool {
	if !tok.Passed() {
		return false
	}
	return w.accept(tok.Seq())
}

// Check implements replaydetector.ReplayDetector (pion uses CheckSeq and
// Accept, which do not allocate).
func (w *replayWindow) Check(i uint64) (func() bool, bool) {
	if !w.ok(i) {
		return func() bool { return false }, false
	}
	return func() bool { return w.accept(i) }, true
}
