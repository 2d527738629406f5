package cdr

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

func openTestJournal(t *testing.T, dir string, segBytes int64) (*journal, recovery) {
	t.Helper()
	j, rec, err := openJournal(dir, segBytes, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	return j, rec
}

func rec(id string) Record { return FromCall(answeredCall(id), "n") }

// readAll reads every durable record from the start without waiting.
func readAll(t *testing.T, j *journal, from position) []item {
	t.Helper()
	rd := newReader(j, from, testLog(t))
	defer rd.closeFile()
	stop := make(chan struct{})
	close(stop)
	var out []item
	for {
		items, err := rd.read(7, time.Time{}, stop)
		if err != nil || len(items) == 0 {
			return out
		}
		out = append(out, items...)
	}
}

// TestJournalGroupCommit: concurrent appenders each wait for their own
// durability; readers see every record once, in append order, across
// segment rolls.
func TestJournalGroupCommit(t *testing.T) {
	j, _ := openTestJournal(t, t.TempDir(), 8<<10)
	defer j.close()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var order []string
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				r := rec(fmt.Sprintf("w%d-%d", w, i))
				mu.Lock() // order of appends as the journal takes them
				p, err := j.append(kindEnd, &r)
				order = append(order, r.ID)
				mu.Unlock()
				if err != nil {
					t.Error(err)
					return
				}
				if err := j.syncTo(p); err != nil {
					t.Error(err)
				}
				j.mu.Lock()
				if j.synced.before(p) {
					t.Errorf("syncTo(%v) returned with synced at %v", p, j.synced)
				}
				j.mu.Unlock()
			}
		}()
	}
	wg.Wait()
	items := readAll(t, j, j.first())
	if len(items) != len(order) {
		t.Fatalf("read %d records, appended %d", len(items), len(order))
	}
	for i, it := range items {
		if it.rec.ID != order[i] {
			t.Fatalf("record %d is %s, want %s", i, it.rec.ID, order[i])
		}
	}
	if segs, _ := listSegments(j.dir); len(segs) < 5 {
		t.Errorf("%d segments, want several rolls", len(segs))
	}
}

// TestJournalReaderSeesOnlyDurable: an appended frame is invisible to
// readers until it is fsynced.
func TestJournalReaderSeesOnlyDurable(t *testing.T) {
	j, _ := openTestJournal(t, t.TempDir(), 0)
	defer j.close()
	r := rec("a")
	p, err := j.append(kindEnd, &r)
	if err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, j, j.first()); len(got) != 0 {
		t.Fatalf("read %d records before fsync", len(got))
	}
	rd := newReader(j, j.first(), testLog(t))
	defer rd.closeFile()
	got := make(chan []item)
	go func() {
		items, _ := rd.read(10, time.Now().Add(10*time.Second), nil)
		got <- items
	}()
	time.Sleep(20 * time.Millisecond)
	if err := j.syncTo(p); err != nil {
		t.Fatal(err)
	}
	if items := <-got; len(items) != 1 || items[0].end != p {
		t.Errorf("waiting reader got %+v, want the record ending at %v", items, p)
	}
}

// TestJournalTornTail: a frame cut off by a crash, at any byte, is ignored
// at reopening, and everything before it is kept.
func TestJournalTornTail(t *testing.T) {
	dir := t.TempDir()
	j, _ := openTestJournal(t, dir, 0)
	a, b := rec("a"), rec("b")
	if _, err := j.append(kindEnd, &a); err != nil {
		t.Fatal(err)
	}
	if _, err := j.append(kindEnd, &b); err != nil {
		t.Fatal(err)
	}
	if err := j.close(); err != nil {
		t.Fatal(err)
	}
	seg := filepath.Join(dir, segName(1))
	whole, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	var recA recovery
	if _, err := scanSegment(seg, 1, &recA); err != nil || len(recA.ends) != 2 {
		t.Fatalf("scan: %v, %d records", err, len(recA.ends))
	}
	for cut := int64(len(whole)) - 1; cut > recA.ends[0].off; cut -= 37 {
		t.Run(fmt.Sprint(cut), func(t *testing.T) {
			d := t.TempDir()
			if err := os.WriteFile(filepath.Join(d, segName(1)), whole[:cut], 0o600); err != nil {
				t.Fatal(err)
			}
			j, rec := openTestJournal(t, d, 0)
			defer j.close()
			items := readAll(t, j, j.first())
			if len(items) != 1 || items[0].rec.ID != "a" || len(rec.ends) != 1 || rec.skipped != cut-recA.ends[0].off {
				t.Errorf("got %d records, ends %v, skipped %d", len(items), rec.ends, rec.skipped)
			}
		})
	}
	// A flipped bit is caught by the checksum.
	damaged := append([]byte(nil), whole...)
	damaged[len(damaged)-5] ^= 0x20
	d := t.TempDir()
	if err := os.WriteFile(filepath.Join(d, segName(1)), damaged, 0o600); err != nil {
		t.Fatal(err)
	}
	j2, rec2 := openTestJournal(t, d, 0)
	defer j2.close()
	if len(rec2.ends) != 1 {
		t.Errorf("damaged frame accepted: %d records", len(rec2.ends))
	}
}

// TestJournalCheckpoint: a call in progress stays known to recovery after
// the segments that saw it start are removed.
func TestJournalCheckpoint(t *testing.T) {
	dir := t.TempDir()
	j, _ := openTestJournal(t, dir, 2<<10)
	up := rec("up")
	if _, err := j.append(kindStart, &up); err != nil {
		t.Fatal(err)
	}
	for i := range 40 {
		r := rec(fmt.Sprint(i))
		if _, err := j.append(kindStart, &r); err != nil {
			t.Fatal(err)
		}
		if _, err := j.append(kindEnd, &r); err != nil {
			t.Fatal(err)
		}
	}
	if err := j.syncAll(); err != nil {
		t.Fatal(err)
	}
	j.mu.Lock()
	last := j.tail()
	j.mu.Unlock()
	j.removeBefore(last)
	if err := j.close(); err != nil {
		t.Fatal(err)
	}
	segs, _ := listSegments(dir)
	if len(segs) != 1 {
		t.Fatalf("segments %v, want only the last", segs)
	}
	j, rec := openTestJournal(t, dir, 2<<10)
	defer j.close()
	if len(rec.open) != 1 || rec.open["up"].ID != "up" {
		t.Errorf("open calls after compaction: %v, want only up", rec.open)
	}
}

// TestCursorRoundTrip: a cursor survives, a damaged one is an error.
func TestCursorRoundTrip(t *testing.T) {
	dir := t.TempDir()
	if _, ok, err := loadCursor(dir, "w"); ok || err != nil {
		t.Fatalf("no cursor yet: ok %v err %v", ok, err)
	}
	want := position{7, 12345}
	if err := saveCursor(dir, "w", want); err != nil {
		t.Fatal(err)
	}
	if got, ok, err := loadCursor(dir, "w"); !ok || err != nil || got != want {
		t.Errorf("got %v %v %v, want %v", got, ok, err, want)
	}
	if err := os.WriteFile(cursorPath(dir, "w"), []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := loadCursor(dir, "w"); err == nil {
		t.Error("damaged cursor accepted")
	}
}
