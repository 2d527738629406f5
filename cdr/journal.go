package cdr

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// errClosed is returned by a journal used after close.
var errClosed = errors.New("cdr spool closed")

// segment is one journal file.
type segment struct {
	seq    uint64
	size   int64 // bytes of whole, valid frames (for the active segment: written)
	closed bool  // no more frames will be added
}

// journal is the spool's append-only log of frames, split into segment
// files. Appends are serialized by mu; one fsync runs at a time (syncTo's
// round), so that callers waiting for durability share one (group
// commit). Readers see only what is fsynced.
//
// An append only encodes its frame into pending; one write takes every
// pending frame to the file: before each fsync, and at most frameDelay
// after a frame found pending empty (journal_flush.go).
type journal struct {
	dir      string
	segBytes int64
	log      *slog.Logger

	mu         sync.Mutex
	f          *os.File // active segment; nil after a failed roll or close
	segs       []segment
	written    int64         // bytes of whole frames in the active segment, pending ones included
	flushed    int64         // of them, the bytes in the file; the rest are pending
	pending    []byte        // frames appended and not yet written, in order
	pendEnds   uint64        // end frames in pending
	wfailed    bool          // the last write of pending failed
	lost       [][2]position // frames dropped from pending by a write that could not be undone
	base       int64         // bytes of its checkpoint
	broken     bool          // a write failed and could not be undone: roll first
	unchecked  bool          // the active segment's checkpoint is incomplete: write it again
	closed     bool          // close was called
	open       openCalls     // calls in progress, for checkpoints
	appended   uint64        // end frames appended since open
	synced     position      // everything before it is on disk
	syncedRecs uint64        // end frames before synced, since open
	wake       chan struct{} // closed and replaced when synced moves or on close

	flushDelay time.Duration // at most this long pending: frameDelay
	timer      *time.Timer   // flushes pending; armed while timerSet
	timerSet   bool
	failed     func(error)          // told of a write the timer's flush could not make; may be nil
	writes     atomic.Uint64        // write syscalls of frames since open
	fsync      func(*os.File) error // (*os.File).Sync; tests watch it

	// round is closed when the fsync under way ends (syncTo); nil: none.
	round    chan struct{}
	syncs    atomic.Uint64 // fsyncs of segments since open (group commit: far fewer than records)
	lastSync time.Time     // when the last fsync began; the round's leader's
}

// syncGap is the least time between the starts of two fsyncs. A caller
// that would fsync sooner waits out the rest, while the calls ending
// meanwhile append their records, and one fsync then covers them all: at
// 300 calls/s an fsync per record or two was 14 % of the SBC's CPU. A
// call's record is durable at most syncGap plus one fsync after its end.
const syncGap = 20 * time.Millisecond

// recovery is what the journal held when it was opened.
type recovery struct {
	open    map[string]Record // calls started and never ended
	ends    []position        // the end of every record frame, in order
	skipped int64             // bytes of torn or damaged frames ignored
	newest  string            // path of the newest segment before this run; "" if none
}

func segName(seq uint64) string { return fmt.Sprintf("seg-%020d.log", seq) }

func parseSegName(name string) (uint64, bool) {
	digits, ok := strings.CutPrefix(name, "seg-")
	digits, ok2 := strings.CutSuffix(digits, ".log")
	if !ok || !ok2 || len(digits) != 20 {
		return 0, false
	}
	seq, err := strconv.ParseUint(digits, 10, 64)
	return seq, err == nil
}

// openJournal scans the segments in dir, keeps them for reading, and starts
// a new active segment after them.
func openJournal(dir string, segBytes int64, log *slog.Logger) (*journal, recovery, error) {
	j := &journal{dir: dir, segBytes: segBytes, log: log, open: newOpenCalls(), wake: make(chan struct{}),
		flushDelay: frameDelay, fsync: (*os.File).Sync}
	j.timer = time.AfterFunc(time.Hour, j.timedFlush)
	j.timer.Stop()
	rec := recovery{open: map[string]Record{}}
	seqs, err := listSegments(dir)
	if err != nil {
		return nil, rec, err
	}
	for _, seq := range seqs {
		size, err := scanSegment(filepath.Join(dir, segName(seq)), seq, &rec)
		if err != nil {
			return nil, rec, err
		}
		j.segs = append(j.segs, segment{seq: seq, size: size, closed: true})
	}
	if len(seqs) > 0 {
		rec.newest = filepath.Join(dir, segName(seqs[len(seqs)-1]))
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if err := j.roll(); err != nil {
		return nil, rec, err
	}
	return j, rec, nil
}

func listSegments(dir string) ([]uint64, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read spool: %w", err)
	}
	var seqs []uint64
	for _, e := range entries {
		if seq, ok := parseSegName(e.Name()); ok && e.Type().IsRegular() {
			seqs = append(seqs, seq)
		}
	}
	slices.Sort(seqs)
	return seqs, nil
}

// scanSegment reads every valid frame of a segment into rec and returns the
// size of its valid part. A torn tail (a crash mid-write) ends the scan.
func scanSegment(path string, seq uint64, rec *recovery) (int64, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return 0, fmt.Errorf("scan spool: %w", err)
	}
	fr, err := openFrames(path, 0)
	if err != nil {
		return 0, fmt.Errorf("scan spool: %w", err)
	}
	defer fr.close()
	for {
		kind, payload, err := fr.next(fi.Size())
		switch {
		case errors.Is(err, io.EOF):
			return fr.off, nil
		case errors.Is(err, errTorn):
			rec.skipped += fi.Size() - fr.off
			return fr.off, nil
		case err != nil:
			return 0, fmt.Errorf("scan spool %s: %w", path, err)
		}
		var r Record
		if err := r.decode(payload); err != nil {
			continue // checksummed but not a record: written by something else
		}
		switch kind {
		case kindStart, kindAnswer:
			rec.open[r.ID] = r
		case kindEnd:
			delete(rec.open, r.ID)
			rec.ends = append(rec.ends, position{seq, fr.off})
		case kindGone:
			delete(rec.open, r.ID)
		}
	}
}

// roll closes the active segment, its pending frames written and
// fsynced, and starts the next one with a checkpoint of the calls in
// progress. If the pending frames cannot be written, it stays on the
// active segment. mu is held.
func (j *journal) roll() error {
	if j.f != nil {
		if err := j.flush(); err != nil {
			return err
		}
		last := &j.segs[len(j.segs)-1]
		j.syncs.Add(1)
		if err := j.fsync(j.f); err != nil {
			// Nothing better to do than go on: the frames are in the page
			// cache, and the error is counted and logged by the caller's
			// next failure if the disk is really gone.
			j.log.Error("cdr spool: fsync before roll", "segment", last.seq, "err", err)
		}
		_ = j.f.Close()
		j.f = nil
		last.closed, last.size = true, j.written
		j.advance(position{last.seq, last.size}, j.appended)
	}
	seq := uint64(1)
	if n := len(j.segs); n > 0 {
		seq = j.segs[n-1].seq + 1
	}
	f, err := os.OpenFile(filepath.Join(j.dir, segName(seq)), os.O_CREATE|os.O_EXCL|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		j.broken = true
		return fmt.Errorf("start spool segment: %w", err)
	}
	if err := syncDir(j.dir); err != nil {
		j.log.Warn("cdr spool: fsync directory", "err", err)
	}
	j.segs = append(j.segs, segment{seq: seq})
	j.f, j.written, j.flushed, j.broken = f, 0, 0, false
	j.advance(position{seq, 0}, j.appended)
	return j.checkpoint()
}

// checkpoint writes a start frame for every call in progress, so that this
// segment and those after it are all recovery needs. If it fails (disk
// full), the next append writes it again, after what was written: a call
// journaled twice is harmless, and nothing readers may have seen is undone.
// mu is held.
func (j *journal) checkpoint() error {
	j.unchecked = true
	if err := j.open.each(func(r *Record) error { return j.write(kindStart, r, true) }); err != nil {
		return err
	}
	j.unchecked, j.base = false, j.written
	return nil
}

// append adds a frame and returns the position just after it. A start,
// answer or gone frame is in the file when append returns (with
// everything pending: one write), an end frame when its syncTo writes
// what is pending before the fsync; a crash of the process keeps what
// is in the file. A frame is durable once syncTo of its
// position returns nil. When frames pending already fill pendingMax and
// cannot be written (disk full), the frame is refused with the write's
// error; a start frame whose write fails stays pending, and append
// returns the error with its position.
func (j *journal) append(kind frameKind, r *Record) (position, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.closed {
		return position{}, errClosed
	}
	if len(j.pending) >= pendingMax {
		if err := j.flush(); err != nil {
			return position{}, err
		}
	}
	switch {
	case j.broken || j.f == nil || (j.segBytes > 0 && j.written-j.base >= j.segBytes):
		if err := j.roll(); err != nil {
			return position{}, err
		}
	case j.unchecked:
		if err := j.checkpoint(); err != nil {
			return position{}, err
		}
	}
	// A frame other than an end is written at once (below): arming the
	// timer only to stop it woke a thread of the runtime for each (the
	// timer's heap, 0.6 a call at 800 calls/s; issue 15 tenth step).
	if err := j.write(kind, r, kind == kindEnd); err != nil {
		return position{}, err
	}
	switch kind {
	case kindStart, kindAnswer:
		j.open.set(r)
	case kindEnd:
		j.open.remove(r.ID)
		j.appended++
		j.pendEnds++
	case kindGone:
		j.open.remove(r.ID)
	}
	p := position{j.segs[len(j.segs)-1].seq, j.written}
	if kind != kindEnd {
		return p, j.flush() // see frameDelay
	}
	return p, nil
}

// write adds one frame to pending, and arms the timer that writes it if
// it is the first and arm is set. mu is held.
func (j *journal) write(kind frameKind, r *Record, arm bool) error {
	n := len(j.pending)
	var err error
	if j.pending, err = appendFrame(j.pending, kind, r); err != nil {
		return err
	}
	j.written += int64(len(j.pending) - n)
	j.segs[len(j.segs)-1].size = j.written
	if n == 0 && arm {
		j.arm(j.flushDelay)
	}
	return nil
}

// syncTo returns once everything before p is on disk: it writes what is
// pending and fsyncs. A frame before p that can never be written (lost)
// gives errLost.
//
// One caller at a time leads a round (syncRound: the wait for syncGap,
// the write, the fsync); the others wait for its end together and look
// again. They queued on a mutex before, and each woke the next in
// turn: at 800 calls/s some 16 callers a round, each a wake-up of its
// own after the one before it ran (BENCHMARKS.md, issue 15 tenth step).
func (j *journal) syncTo(p position) error {
	for {
		j.mu.Lock()
		lost, covered := j.lostAt(p), !j.synced.before(p)
		if lost != nil || covered {
			j.mu.Unlock()
			return lost // or another caller's fsync covered p
		}
		if round := j.round; round != nil {
			j.mu.Unlock()
			<-round // it may cover p, or fail: look again
			continue
		}
		round := make(chan struct{})
		j.round = round
		j.mu.Unlock()
		err := j.syncRound(p)
		j.mu.Lock()
		j.round = nil
		j.mu.Unlock()
		close(round)
		return err
	}
}

// syncRound waits out syncGap since the last fsync began, writes what
// is pending and fsyncs it; p's frame must be in what it syncs. The
// leader of the round only (syncTo).
func (j *journal) syncRound(p position) error {
	if wait := time.Until(j.lastSync.Add(syncGap)); wait > 0 {
		time.Sleep(wait)
	}
	j.lastSync = time.Now()
	j.mu.Lock()
	werr := j.flush()
	f, end, recs := j.f, j.fileTail(), j.appended-j.pendEnds
	if lost := j.lostAt(p); lost != nil || (werr != nil && end.before(p)) {
		j.mu.Unlock()
		return errors.Join(lost, werr)
	}
	j.mu.Unlock()
	var err error
	if f == nil {
		err = errClosed
	} else {
		err = j.fsync(f)
		j.syncs.Add(1)
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if !j.synced.before(p) {
		return nil // a roll fsynced the segment while f.Sync raced its close
	}
	if err != nil {
		return fmt.Errorf("fsync spool: %w", err)
	}
	j.advance(end, recs)
	return nil
}

// syncAll makes everything appended so far durable.
func (j *journal) syncAll() error {
	j.mu.Lock()
	end := j.tail()
	j.mu.Unlock()
	return j.syncTo(end)
}

// tail is the position after the last frame. mu is held.
func (j *journal) tail() position {
	if len(j.segs) == 0 {
		return position{}
	}
	last := j.segs[len(j.segs)-1]
	return position{last.seq, last.size}
}

// advance moves synced forward to p and wakes the readers. mu is held.
func (j *journal) advance(p position, recs uint64) {
	if !j.synced.before(p) {
		return
	}
	j.synced, j.syncedRecs = p, recs
	close(j.wake)
	j.wake = make(chan struct{})
}

// durableRecords is the number of record frames fsynced since open.
func (j *journal) durableRecords() uint64 {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.syncedRecs
}

// view is what a reader at segment seq may read: the durable end of that
// segment, whether it is finished, the segment after it, and a channel
// closed when any of that changes.
type view struct {
	end     int64
	closed  bool
	exists  bool
	next    uint64
	hasNext bool
	stopped bool // the journal is closed
	wake    <-chan struct{}
}

func (j *journal) view(seq uint64) view {
	j.mu.Lock()
	defer j.mu.Unlock()
	v := view{wake: j.wake, stopped: j.closed}
	for _, s := range j.segs {
		switch {
		case s.seq == seq:
			v.exists, v.closed, v.end = true, s.closed, s.size
			if !s.closed {
				v.end = 0
				if j.synced.seg == seq {
					v.end = j.synced.off
				}
			}
		case s.seq > seq && !v.hasNext:
			v.next, v.hasNext = s.seq, true
		}
	}
	return v
}

// first is the position of the oldest retained frame.
func (j *journal) first() position {
	j.mu.Lock()
	defer j.mu.Unlock()
	return position{j.segs[0].seq, 0}
}

// removeBefore deletes the finished segments wholly before p.
func (j *journal) removeBefore(p position) {
	j.mu.Lock()
	var gone []uint64
	for len(j.segs) > 1 && j.segs[0].closed && j.segs[0].seq < p.seg {
		gone = append(gone, j.segs[0].seq)
		j.segs = j.segs[1:]
	}
	j.mu.Unlock()
	for _, seq := range gone {
		if err := os.Remove(filepath.Join(j.dir, segName(seq))); err != nil && !errors.Is(err, os.ErrNotExist) {
			j.log.Warn("cdr spool: remove delivered segment", "segment", seq, "err", err)
		}
	}
}

// close fsyncs and closes the active segment and wakes every reader.
func (j *journal) close() error {
	err := j.syncAll()
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.closed {
		return nil
	}
	j.closed = true
	j.timer.Stop()
	if j.f != nil {
		if cerr := j.f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("close spool: %w", cerr)
		}
		j.f = nil
	}
	close(j.wake)
	j.wake = make(chan struct{})
	return err
}

// syncDir fsyncs a directory, making creations and renames in it durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
