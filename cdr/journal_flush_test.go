package cdr

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// journalCalls journals calls from many goroutines at once, as ending
// calls do: each call its start, its answer and its end, then waits for
// the end's fsync. It returns the ids of the calls, in no order.
func journalCalls(t *testing.T, j *journal, prefix string, goroutines, each int) []string {
	t.Helper()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var ids []string
	for g := range goroutines {
		wg.Go(func() {
			for i := range each {
				r := rec(fmt.Sprintf("%s-%d-%d", prefix, g, i))
				for _, kind := range []frameKind{kindStart, kindAnswer} {
					if _, err := j.append(kind, &r); err != nil {
						t.Error(err)
						return
					}
				}
				p, err := j.append(kindEnd, &r)
				if err == nil {
					err = j.syncTo(p)
				}
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				ids = append(ids, r.ID)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return ids
}

// framesOnDisk reads every valid frame of every segment in dir, in order,
// as a restart would, and returns each call's frame kinds in file order.
func framesOnDisk(t *testing.T, dir string) map[string]string {
	t.Helper()
	seqs, err := listSegments(dir)
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]string{}
	for _, seq := range seqs {
		path := filepath.Join(dir, segName(seq))
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		fr, err := openFrames(path, 0)
		if err != nil {
			t.Fatal(err)
		}
		for {
			kind, payload, err := fr.next(fi.Size())
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s at %d: %v", path, fr.off, err)
			}
			var r Record
			if err := r.decode(payload); err != nil {
				t.Fatal(err)
			}
			kinds[r.ID] += string(kind)
		}
		fr.close()
	}
	return kinds
}

// TestJournalFramesShareWrites: frames appended from many goroutines at
// once go to the file several per write, all of them, each call's in the
// order it appended them. The journal is then abandoned without close,
// as a crash leaves it. Counted twice: by the journal and by the kernel
// (write syscalls of the process, /proc/self/io).
func TestJournalFramesShareWrites(t *testing.T) {
	dir := t.TempDir()
	j, _ := openTestJournal(t, dir, 0)
	before := writeSyscalls(t)
	ids := journalCalls(t, j, "w", 32, 40)
	frames := 3 * len(ids)
	writes, syscalls := j.writes.Load(), writeSyscalls(t)-before
	t.Logf("%d frames in %d writes (%d write syscalls in the process), %d fsyncs", frames, writes, syscalls, j.syncs.Load())
	if frames != 3*32*40 {
		t.Fatalf("%d frames journaled, want %d", frames, 3*32*40)
	}
	// A write per start and answer frame (see frameDelay), the ends
	// with them or with the fsyncs: never a write of their own.
	calls := uint64(len(ids))
	if bound := 2*calls + j.syncs.Load() + calls/10; writes == 0 || writes > bound { // the timer may take an end frame alone
		t.Errorf("%d writes for %d calls and %d fsyncs: want the end frames to share writes", writes, calls, j.syncs.Load())
	}
	if bound := 2*calls + j.syncs.Load() + calls/10; syscalls > bound {
		t.Errorf("%d write syscalls for %d calls and %d fsyncs: want the end frames to share writes", syscalls, calls, j.syncs.Load())
	}
	kinds := framesOnDisk(t, dir) // no close: what a crash leaves
	for _, id := range ids {
		if kinds[id] != "SAE" {
			t.Errorf("call %s: frames %q on disk, want SAE", id, kinds[id])
		}
	}
	if len(kinds) != len(ids) {
		t.Errorf("%d calls on disk, journaled %d", len(kinds), len(ids))
	}
}

// TestJournalProgressReachesFile: the frames of calls in progress (start,
// answer) are in the file when append returns, and an end frame nobody
// syncs reaches it without any fsync (the timer writes it, within
// frameDelay), so a journal abandoned without close (a crash) gives back
// the calls in progress, answered or not, and the ended ones.
func TestJournalProgressReachesFile(t *testing.T) {
	dir := t.TempDir()
	j, _ := openTestJournal(t, dir, 0)
	j.mu.Lock()
	j.flushDelay = 200 * time.Millisecond // no write between the append and the look at the file
	j.mu.Unlock()
	ended := rec("ended")
	p, err := j.append(kindEnd, &ended)
	if err == nil {
		err = j.syncTo(p)
	}
	if err != nil {
		t.Fatal(err)
	}
	up := FromCall(call("up", 0), "n")
	up.AnswerTime = Timestamp{}
	answered := rec("answered")
	unsynced := rec("unsynced")
	for _, f := range []struct {
		kind frameKind
		r    *Record
	}{{kindStart, &up}, {kindStart, &answered}, {kindAnswer, &answered}, {kindStart, &unsynced}} {
		last, err := j.append(f.kind, f.r)
		if err != nil {
			t.Fatal(err)
		}
		if !j.inFile(last) {
			t.Errorf("frame %c of %s not in the file when append returned", f.kind, f.r.ID)
		}
	}
	last, err := j.append(kindEnd, &unsynced)
	if err != nil {
		t.Fatal(err)
	}
	if j.inFile(last) {
		t.Fatalf("the end frame was written at once; want it to wait for company")
	}
	syncs := j.syncs.Load()
	deadline := time.Now().Add(10 * time.Second)
	for !j.inFile(last) {
		if time.Now().After(deadline) {
			t.Fatalf("an end frame not in the file after 10 s")
		}
		time.Sleep(time.Millisecond)
	}
	if j.syncs.Load() != syncs {
		t.Errorf("an fsync carried the frames; want the timer's write alone")
	}
	// Abandoned: a second journal opens the spool as a restart would.
	_, got, err := openJournal(dir, 0, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(got.open) != 2 || !got.open[up.ID].AnswerTime.IsZero() || got.open[answered.ID].AnswerTime.IsZero() {
		t.Errorf("calls in progress after the crash %+v, want %s unanswered and %s answered", got.open, up.ID, answered.ID)
	}
	if len(got.ends) != 2 {
		t.Errorf("%d ended calls after the crash, want 2", len(got.ends))
	}
}

// TestJournalFsyncBeforeDurable: syncTo returns only once an fsync that
// began after the frame was written has finished.
func TestJournalFsyncBeforeDurable(t *testing.T) {
	j, _ := openTestJournal(t, t.TempDir(), 16<<10)
	defer j.close()
	var mu sync.Mutex
	done := map[string]int64{} // segment file -> its size when an fsync of it began, once it finished
	j.fsync = func(f *os.File) error {
		fi, err := f.Stat()
		if err != nil {
			return err
		}
		if err := f.Sync(); err != nil {
			return err
		}
		mu.Lock()
		done[filepath.Base(f.Name())] = max(done[filepath.Base(f.Name())], fi.Size())
		mu.Unlock()
		return nil
	}
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			for i := range 30 {
				r := rec(fmt.Sprintf("d-%d-%d", g, i))
				if _, err := j.append(kindStart, &r); err != nil {
					t.Error(err)
					return
				}
				p, err := j.append(kindEnd, &r)
				if err == nil {
					err = j.syncTo(p)
				}
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				fsynced := done[segName(p.seg)]
				mu.Unlock()
				if fsynced < p.off {
					t.Errorf("syncTo(%v) returned; the segment was fsynced up to %d", p, fsynced)
				}
			}
		})
	}
	wg.Wait()
	if segs, _ := listSegments(j.dir); len(segs) < 3 {
		t.Errorf("%d segments, want rolls too", len(segs))
	}
}

// TestJournalWaitersAfterFailedFsync: callers waiting on another's
// fsync round (syncTo) are woken when it fails, and one of them leads a
// round of its own: the leader gets the error, the others return once
// their frames are durable, and none is left waiting.
func TestJournalWaitersAfterFailedFsync(t *testing.T) {
	j, _ := openTestJournal(t, t.TempDir(), 16<<10)
	defer j.close()
	entered, release := make(chan struct{}), make(chan struct{})
	var mu sync.Mutex
	calls := 0
	j.fsync = func(f *os.File) error {
		mu.Lock()
		calls++
		first := calls == 1
		mu.Unlock()
		if first {
			close(entered)
			<-release
			return errors.New("disk says no")
		}
		return f.Sync()
	}
	end := func(id string) position {
		r := rec(id)
		p, err := j.append(kindEnd, &r)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	leader := make(chan error, 1)
	p0 := end("lead")
	go func() { leader <- j.syncTo(p0) }()
	<-entered
	const n = 8
	waiters := make(chan error, n)
	for i := range n {
		p := end(fmt.Sprint("wait-", i))
		go func() { waiters <- j.syncTo(p) }()
	}
	close(release)
	if err := <-leader; err == nil {
		t.Fatal("the leader's failed fsync returned no error")
	}
	for range n {
		select {
		case err := <-waiters:
			if err != nil {
				t.Fatalf("a waiter got %v after a later round", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("a waiter was left waiting after the failed round")
		}
	}
	if got := j.durableRecords(); got < n+1 {
		t.Fatalf("%d records durable, want %d (the leader's too, by the later round)", got, n+1)
	}
}
