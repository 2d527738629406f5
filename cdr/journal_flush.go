package cdr

import (
	"errors"
	"fmt"
	"time"
)

// frameDelay is the longest a frame waits in memory before a write
// takes it to the file when no fsync or other frame does. Frames wait so
// that one write carries many: at 1,000 calls/s a write per frame
// (start, answer, end: three a call) was 5.8 % of the SBC's CPU
// (BENCHMARKS.md, "Issue 15, seventh step").
//
// Only end frames wait: their callers wait for an fsync anyway (group
// commit, syncGap), and each fsync first writes everything pending. A
// start, answer or gone frame is written at once, with everything
// pending (one write): after a kill -9 every call the caller saw
// answered has a record, and an answered one (test/e2e/ops
// TestCDRKill9), and a call another node took over is never recorded
// twice. Coalescing those too would cut writes from about 2 a call to
// 0.2 (BenchmarkJournalPaced) but let a crash turn a call answered in
// its last frameDelay into a FAILED record (a connection fee lost) or
// lose calls begun in it.
const frameDelay = syncGap

// pendingMax is how many bytes of frames may wait for a write (about a
// hundred records) before an append writes them itself; when that write
// fails (disk full) the append is refused, so a dead disk holds at most
// this much in pending and the rest in the Recorder's backlog.
const pendingMax = 64 << 10

// flushRetry is how long after a failed write of pending frames the timer
// tries again (the Recorder retries its backlog as often).
const flushRetry = heartbeatEvery

// errLost reports a frame appended but never written: a write failed
// midway and the part written could not be cut off, so the segment ends
// before it. The caller still holds the record; nothing else does.
var errLost = errors.New("cdr spool: frame lost by a failed write")

// flush writes every pending frame with one write. A write that fails
// (disk full) is cut back off the file and its frames stay pending, to be
// written by the next flush; if it cannot be cut back, they are lost (see
// errLost) and the next append starts a new segment. mu is held.
func (j *journal) flush() error {
	if len(j.pending) == 0 {
		return nil
	}
	if j.f == nil {
		return errClosed
	}
	j.writes.Add(1)
	n, err := j.f.Write(j.pending)
	if err == nil {
		j.flushed += int64(n)
		j.pending, j.pendEnds, j.wfailed = j.pending[:0], 0, false
		if j.timerSet && j.timer.Stop() {
			j.timerSet = false
		}
		return nil
	}
	if n > 0 {
		if terr := j.f.Truncate(j.flushed); terr != nil {
			j.lose()
		}
	}
	j.wfailed = true
	j.arm(flushRetry)
	return fmt.Errorf("write spool: %w", err)
}

// lose drops the pending frames after a write that left part of them in
// the file: the segment ends at what was written whole before, and a new
// one starts at the next append. mu is held.
func (j *journal) lose() {
	seq := j.segs[len(j.segs)-1].seq
	j.lost = append(j.lost, [2]position{{seq, j.flushed}, {seq, j.written}})
	j.log.Error("cdr spool: a failed write could not be undone; frames pending are lost",
		"segment", seq, "bytes", len(j.pending))
	j.appended -= j.pendEnds
	j.written = j.flushed
	j.segs[len(j.segs)-1].size = j.flushed
	j.pending, j.pendEnds = j.pending[:0], 0
	j.broken = true
}

// lostAt is errLost if the frame ending at p was lost. mu is held.
func (j *journal) lostAt(p position) error {
	for _, r := range j.lost {
		if r[0].before(p) && !r[1].before(p) {
			return errLost
		}
	}
	return nil
}

// arm starts the timer that writes the pending frames, unless it runs.
// mu is held.
func (j *journal) arm(d time.Duration) {
	if !j.timerSet {
		j.timer.Reset(d)
		j.timerSet = true
	}
}

// timedFlush writes the frames pending since the timer was armed.
func (j *journal) timedFlush() {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.timerSet = false
	if j.closed {
		return
	}
	if err := j.flush(); err != nil && j.failed != nil {
		j.failed(err)
	}
}

// refused is the number of finished records waiting in pending because
// their write failed.
func (j *journal) refused() int {
	j.mu.Lock()
	defer j.mu.Unlock()
	if !j.wfailed {
		return 0
	}
	return int(j.pendEnds)
}

// fileTail is the position after the last frame in the file. mu is held.
func (j *journal) fileTail() position {
	if len(j.segs) == 0 {
		return position{}
	}
	return position{j.segs[len(j.segs)-1].seq, j.flushed}
}

// inFile reports whether the frame ending at p is in the file: a crash of
// the process keeps it.
func (j *journal) inFile(p position) bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	return !j.fileTail().before(p) && j.lostAt(p) == nil
}
