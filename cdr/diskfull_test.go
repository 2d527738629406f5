package cdr

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// smallDisk mounts a tmpfs of size bytes on a new directory, unmounted
// when the test ends. Mounting needs root (CAP_SYS_ADMIN): the test is
// skipped without it.
func smallDisk(t *testing.T, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting a small tmpfs needs root")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs here: %v %s", err, out)
	}
	t.Cleanup(func() {
		// A busy mount means a file was left open: a leak to report, and
		// the lazy unmount still takes it away.
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v %s (a file left open?)", dir, err, out)
			_ = exec.Command("umount", "-l", dir).Run()
		}
	})
	return dir
}

// fill writes a file in dir until the disk is full and returns its path.
func fill(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	block := make([]byte, 4096)
	for range 1 << 16 {
		if _, err := f.Write(block); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			return path
		}
	}
	t.Fatal("disk never filled up")
	return ""
}

// TestDiskFullAtStart: a spool or a writer directory on a full disk is a
// start-up error naming its key.
func TestDiskFullAtStart(t *testing.T) {
	for _, where := range []string{"spool", "writer"} {
		t.Run(where, func(t *testing.T) {
			disk := smallDisk(t, "256k")
			fill(t, disk)
			cfg := fileConfig(t)
			key := "cdr_spool: "
			if where == "spool" {
				cfg.SpoolDir = filepath.Join(disk, "spool")
			} else {
				cfg.Writers[0].Dir, key = filepath.Join(disk, "cdr"), "cdr[0].dir: "
			}
			r, err := Open(cfg)
			if err == nil {
				r.Close()
				t.Fatal("opened on a full disk")
			}
			if !strings.HasPrefix(err.Error(), key) || !strings.Contains(err.Error(), "no space left on device") {
				t.Errorf("error %q, want %q... no space left on device", err, key)
			}
		})
	}
}

// TestDiskFullAtRunTime: a writer whose disk fills up raises its alarm and
// queues in the spool; a spool whose disk fills up keeps records in memory
// under its alarm. Once room is made, everything is delivered, once.
func TestDiskFullAtRunTime(t *testing.T) {
	t.Run("writer", func(t *testing.T) {
		disk := smallDisk(t, "512k")
		cfg := fileConfig(t)
		cfg.Writers[0].Dir, cfg.Writers[0].MaxBytes = filepath.Join(disk, "cdr"), 0
		r := mustOpen(t, cfg)
		defer r.Close()
		filler := fill(t, disk)
		runCalls(r, "full", 100, 4)
		waitAlarm(t, r, func(s Stats) bool { return s.Writers[0].Failing && s.Writers[0].Pending == 100 })
		if err := os.Remove(filler); err != nil {
			t.Fatal(err)
		}
		waitDelivered(t, r, 15*time.Second)
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
		if ids := once(t, "jsonl", jsonIDs(readJSONL(t, cfg.Writers[0].Dir))); len(ids) != 100 {
			t.Errorf("%d records, want 100", len(ids))
		}
	})
	t.Run("spool", func(t *testing.T) {
		disk := smallDisk(t, "512k")
		cfg := fileConfig(t)
		cfg.SpoolDir = filepath.Join(disk, "spool")
		r := mustOpen(t, cfg)
		defer r.Close()
		filler := fill(t, disk)
		runCalls(r, "full", 100, 4)
		s := r.Stats()
		if !s.SpoolFailing || s.Backlog == 0 || !s.Alarm() {
			t.Errorf("stats %+v, want the spool alarm and a backlog", s)
		}
		if err := os.Remove(filler); err != nil {
			t.Fatal(err)
		}
		waitAlarm(t, r, func(s Stats) bool { return !s.SpoolFailing && s.Backlog == 0 })
		s = waitDelivered(t, r, 15*time.Second)
		if s.Recorded != 100 || s.Dropped != 0 {
			t.Errorf("stats %+v, want 100 recorded, none dropped", s)
		}
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
		for i, read := range []func() []string{
			func() []string { return jsonIDs(readJSONL(t, cfg.Writers[0].Dir)) },
			func() []string { return csvIDs(readCSV(t, cfg.Writers[1].Dir)) },
		} {
			if ids := once(t, cfg.Writers[i].Type, read()); len(ids) != 100 {
				t.Errorf("%s: %d records, want 100", cfg.Writers[i].Type, len(ids))
			}
		}
	})
}

// waitAlarm waits until cond holds for the recorder's stats.
func waitAlarm(t *testing.T, r *Recorder, cond func(Stats) bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond(r.Stats()) {
		if time.Now().After(deadline) {
			t.Fatalf("stats %+v: condition not reached", r.Stats())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
