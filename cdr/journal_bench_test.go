package cdr

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Benchmarks of what the journal costs a call in syscalls: each call
// journals its start, its answer and its end, and waits for its end to be
// fsynced, as the B2BUA's calls do through the Recorder (BENCHMARKS.md,
// "Issue 15, eighth step"):
//
//	go test -run '^$' -bench 'Journal' -benchtime 3000x ./cdr/
//
// writes/call counts the process's write syscalls (/proc/self/io syscw:
// the kernel's count, whatever wrote), fsyncs/call the journal's fsyncs,
// and cpu-µs/call the process's user and system CPU time.

// BenchmarkJournalPaced starts calls at 1,000/s, each on its own
// goroutine, as the SBC's calls arrive at the rate issue 15 measures; the
// sub-benchmarks other than frameDelay's own show what the bound on a
// frame's wait in memory buys.
func BenchmarkJournalPaced(b *testing.B) {
	for _, delay := range []time.Duration{frameDelay, time.Millisecond, 5 * time.Millisecond, 50 * time.Millisecond} {
		b.Run("delay="+delay.String(), func(b *testing.B) {
			j, _ := openBenchJournal(b)
			j.mu.Lock()
			j.flushDelay = delay
			j.mu.Unlock()
			const rate = 1000
			tick := time.NewTicker(time.Second / rate)
			defer tick.Stop()
			var wg sync.WaitGroup
			n := 0
			m := startSyscallMeter(b)
			for b.Loop() {
				<-tick.C
				n++
				id := strconv.Itoa(n)
				wg.Go(func() { journalCall(b, j, id) })
			}
			wg.Wait()
			m.report(b, j, n)
		})
	}
}

// BenchmarkJournalConcurrent runs 64 callers at once, each journaling
// one call after another as fast as the journal lets it.
func BenchmarkJournalConcurrent(b *testing.B) {
	j, _ := openBenchJournal(b)
	const callers = 64
	var wg sync.WaitGroup
	next := make(chan int)
	m := startSyscallMeter(b)
	for range callers {
		wg.Go(func() {
			for i := range next {
				journalCall(b, j, strconv.Itoa(i))
			}
		})
	}
	n := 0
	for b.Loop() {
		n++
		next <- n
	}
	close(next)
	wg.Wait()
	m.report(b, j, n)
}

func openBenchJournal(b *testing.B) (*journal, recovery) {
	j, rec, err := openJournal(b.TempDir(), 64<<20, quiet)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = j.close() })
	return j, rec
}

// journalCall journals one call: start, answer, end, and waits for the
// end's fsync.
func journalCall(b *testing.B, j *journal, id string) {
	r := rec(id)
	for _, kind := range []frameKind{kindStart, kindAnswer} {
		if _, err := j.append(kind, &r); err != nil {
			b.Error(err)
			return
		}
	}
	p, err := j.append(kindEnd, &r)
	if err == nil {
		err = j.syncTo(p)
	}
	if err != nil {
		b.Error(err)
	}
}

// syscallMeter reads the process's write syscalls and CPU time at the
// start of a benchmark's loop.
type syscallMeter struct {
	writes uint64
	syncs  uint64
	cpu    time.Duration
}

func startSyscallMeter(b *testing.B) syscallMeter {
	return syscallMeter{writes: writeSyscalls(b), cpu: cpuTime(b)}
}

func (m syscallMeter) report(b *testing.B, j *journal, calls int) {
	writes, cpu := writeSyscalls(b)-m.writes, cpuTime(b)-m.cpu
	b.ReportMetric(float64(writes)/float64(calls), "writes/call")
	b.ReportMetric(float64(j.syncs.Load())/float64(calls), "fsyncs/call")
	b.ReportMetric(float64(cpu.Microseconds())/float64(calls), "cpu-µs/call")
}

// writeSyscalls is the process's count of write syscalls (syscw in
// /proc/self/io: write, writev, pwrite and the like).
func writeSyscalls(b testing.TB) uint64 {
	f, err := os.Open("/proc/self/io")
	if err != nil {
		b.Skipf("no /proc/self/io: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "syscw: "); ok {
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				b.Fatal(err)
			}
			return n
		}
	}
	b.Skip("no syscw in /proc/self/io")
	return 0
}

// cpuTime is the user and system CPU time the process has used.
func cpuTime(b testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
