package membench

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Settling: RSS is read every rssPoll until rssStableReads readings in a
// row lie within rssTolerance of each other, for at most rssMaxWait.
const (
	rssPoll        = 500 * time.Millisecond
	rssStableReads = 5
	rssTolerance   = 0.005
	rssMaxWait     = 60 * time.Second
)

// envInt reads a positive integer knob from the environment.
func envInt(b *testing.B, name string, def int) int {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		b.Fatalf("%s=%q: want a positive integer", name, s)
	}
	return n
}

// needFDs skips the benchmark when this process may not open need
// descriptors (Go raises the soft limit to the hard one at start).
func needFDs(b *testing.B, need int) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		b.Fatalf("getrlimit: %v", err)
	}
	if lim.Cur < uint64(need) {
		b.Skipf("needs %d file descriptors, the limit is %d", need, lim.Cur)
	}
}

// freePort returns a TCP port free on 127.0.0.1 (and, in practice, UDP).
func freePort(b *testing.B) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// sbcProc is the sbc binary running as a child process.
type sbcProc struct {
	cmd   *exec.Cmd
	admin string // host:port of the admin server (also serves /debug/pprof/)
	done  chan struct{}
	mu    sync.Mutex
	log   strings.Builder
}

// startSBC builds cmd/sbc and runs it with the config text (which must
// set admin.addr to admin), waiting for "sbc started". The process is
// stopped, by its PID, when b ends.
func startSBC(b *testing.B, config, admin string) *sbcProc {
	b.Helper()
	dir := b.TempDir()
	bin := filepath.Join(dir, "sbc")
	build := []string{"build", "-o", bin}
	if os.Getenv(pprofEnv) != "" {
		build = append(build, "-tags", "pprof")
	}
	build = append(build, "github.com/sbc-project/sbc/cmd/sbc")
	if out, err := exec.Command("go", build...).CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	cfg := filepath.Join(dir, "sbc.yaml")
	if err := os.WriteFile(cfg, []byte(config), 0o600); err != nil {
		b.Fatal(err)
	}
	p := &sbcProc{cmd: exec.Command(bin, "-config", cfg), admin: admin, done: make(chan struct{})}
	p.cmd.Dir = dir
	p.cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		b.Fatal(err)
	}
	started := make(chan bool, 1)
	go p.readLog(stderr, started)
	b.Cleanup(p.stop)
	select {
	case ok := <-started:
		if !ok {
			b.Fatalf("sbc exited at start:\n%s", p.logs())
		}
	case <-time.After(60 * time.Second):
		b.Fatalf("sbc did not start:\n%s", p.logs())
	}
	return p
}

// readLog keeps the first 64 kB of the log and reports "sbc started".
func (p *sbcProc) readLog(r io.Reader, started chan<- bool) {
	sc := bufio.NewScanner(r)
	seen := false
	for sc.Scan() {
		p.mu.Lock()
		if p.log.Len() < 64<<10 {
			p.log.WriteString(sc.Text() + "\n")
		}
		p.mu.Unlock()
		if !seen && strings.Contains(sc.Text(), "sbc started") {
			seen = true
			started <- true
		}
	}
	_ = p.cmd.Wait()
	close(p.done)
	if !seen {
		started <- false
	}
}

func (p *sbcProc) logs() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.log.String()
}

// stop sends SIGTERM and, if the process is still there after 10 s,
// SIGKILL; both by PID.
func (p *sbcProc) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return
	case <-time.After(10 * time.Second):
	}
	_ = p.cmd.Process.Kill()
	<-p.done
}

// alive fails b if the process has exited.
func (p *sbcProc) alive(b *testing.B) {
	b.Helper()
	select {
	case <-p.done:
		b.Fatalf("sbc exited:\n%s", p.logs())
	default:
	}
}

// rssKB reads VmRSS of the process, in kB.
func (p *sbcProc) rssKB(b *testing.B) int {
	b.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		b.Fatalf("read status: %v", err)
	}
	for line := range strings.Lines(string(raw)) {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			if err != nil {
				b.Fatalf("VmRSS %q: %v", v, err)
			}
			return n
		}
	}
	b.Fatal("no VmRSS in /proc/<pid>/status")
	return 0
}

// settledRSS polls RSS until it is stable (see rssStableReads) and
// returns the last reading, in kB.
func (p *sbcProc) settledRSS(b *testing.B) int {
	b.Helper()
	var reads []int
	deadline := time.Now().Add(rssMaxWait)
	for {
		p.alive(b)
		reads = append(reads, p.rssKB(b))
		if len(reads) >= rssStableReads {
			last := reads[len(reads)-rssStableReads:]
			lo, hi := last[0], last[0]
			for _, r := range last {
				lo, hi = min(lo, r), max(hi, r)
			}
			if float64(hi-lo) <= rssTolerance*float64(hi) {
				return reads[len(reads)-1]
			}
		}
		if time.Now().After(deadline) {
			b.Logf("RSS not stable after %v: %v kB", rssMaxWait, reads)
			return reads[len(reads)-1]
		}
		time.Sleep(rssPoll)
	}
}

// pprofEnv names a directory: when set, the sbc binary is built with
// -tags pprof (cmd/sbc/pprof.go: a finer heap sample) and heapProfile
// writes heap profiles from the admin API's /debug/pprof/heap there, to read with "go tool pprof -sample_index=inuse_space
// -diff_base before.pb.gz after.pb.gz".
const pprofEnv = "SBC_MEM_PPROF"

// heapProfile saves the SBC's heap profile as name.pb.gz in the
// SBC_MEM_PPROF directory, after a GC (?gc=1); nothing if it is unset.
func (p *sbcProc) heapProfile(b *testing.B, name string) {
	b.Helper()
	dir := os.Getenv(pprofEnv)
	if dir == "" {
		return
	}
	res, err := http.Get("http://" + p.admin + "/debug/pprof/heap?gc=1")
	if err != nil {
		b.Fatalf("heap profile: %v", err)
	}
	defer res.Body.Close()
	f, err := os.Create(filepath.Join(dir, name+".pb.gz"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if _, err := io.Copy(f, res.Body); err != nil {
		b.Fatalf("heap profile: %v", err)
	}
}

// goStats are the Go runtime figures the SBC exports on /metrics, and
// the heap after a collection with the goal it set.
type goStats struct {
	heapInuse, stackInuse, goroutines float64
	transactions                      float64 // live SIP transactions
	// live is the heap in use right after a GC that runtimeStats forces
	// (after the RSS was read); goal the heap size at which the next GC
	// starts: with GOGC=100 about twice the live heap, and the RSS of a
	// process that keeps allocating a little settles near it.
	live, goal float64
	// post are the same GC's MemStats that make up the process's memory
	// besides the live heap, in bytes: see postGC.
	post map[string]float64
}

// postGC names the MemStats (read right after runtimeStats' GC) that
// report prints per unit as "<name>-kB/<unit>": the heap's spans in use
// (live objects and their size classes' free slots), its free spans not
// yet returned to the OS and those returned, goroutine stacks and span
// structures (in use: the profile prints "in use / from the OS"), GC
// metadata, other runtime memory.
var postGC = []string{"HeapInuse", "HeapIdle", "HeapReleased", "Stack", "MSpan", "GCSys", "OtherSys"}

// runtimeStats reads them from the admin server; zeros if unavailable.
// It forces a GC (through the heap profile's gc=1) to read the live heap.
func (p *sbcProc) runtimeStats(b *testing.B) goStats {
	b.Helper()
	s := p.metrics(b)
	s.live, s.goal, s.post = p.liveHeap(b)
	return s
}

// liveHeap forces a GC and reads the MemStats that the text heap profile
// ends with: HeapAlloc (the live heap, just after the GC), NextGC and
// those named in postGC.
func (p *sbcProc) liveHeap(b *testing.B) (live, goal float64, post map[string]float64) {
	b.Helper()
	post = map[string]float64{}
	res, err := http.Get("http://" + p.admin + "/debug/pprof/heap?gc=1&debug=1")
	if err != nil {
		b.Logf("heap profile: %v", err)
		return 0, 0, post
	}
	defer res.Body.Close()
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		name, val, ok := strings.Cut(strings.TrimPrefix(sc.Text(), "# "), " = ")
		if !ok {
			continue
		}
		val, _, _ = strings.Cut(val, " / ")
		f, err := strconv.ParseFloat(val, 64)
		if err != nil {
			continue
		}
		switch name {
		case "HeapAlloc":
			live = f
		case "NextGC":
			goal = f
		default:
			if slices.Contains(postGC, name) {
				post[name] = f
			}
		}
	}
	return live, goal, post
}

// metrics reads the /metrics figures; zeros if unavailable.
func (p *sbcProc) metrics(b *testing.B) goStats {
	b.Helper()
	res, err := http.Get("http://" + p.admin + "/metrics")
	if err != nil {
		b.Logf("metrics: %v", err)
		return goStats{}
	}
	defer res.Body.Close()
	var s goStats
	sc := bufio.NewScanner(res.Body)
	for sc.Scan() {
		name, val, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		f, err := strconv.ParseFloat(val, 64)
		if err != nil {
			continue
		}
		switch name {
		case "go_memstats_heap_inuse_bytes":
			s.heapInuse = f
		case "go_memstats_stack_inuse_bytes":
			s.stackInuse = f
		case "go_goroutines":
			s.goroutines = f
		case "sbc_sip_transactions":
			s.transactions = f
		}
	}
	return s
}

// report adds the per-unit figures of RSS and of the runtime's heap and
// stacks between before and after.
func report(b *testing.B, unit string, n, rssBefore, rssAfter int, before, after goStats) {
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(float64(rssAfter-rssBefore)/float64(n), "kB/"+unit)
	if after.heapInuse > 0 {
		b.ReportMetric((after.heapInuse-before.heapInuse)/1024/float64(n), "heap-kB/"+unit)
		b.ReportMetric((after.stackInuse-before.stackInuse)/1024/float64(n), "stack-kB/"+unit)
		b.ReportMetric((after.goroutines-before.goroutines)/float64(n), "goroutines/"+unit)
	}
	if after.live > 0 {
		b.ReportMetric((after.live-before.live)/1024/float64(n), "live-kB/"+unit)
		b.ReportMetric((after.goal-before.goal)/1024/float64(n), "goal-kB/"+unit)
		for _, name := range postGC {
			b.ReportMetric((after.post[name]-before.post[name])/1024/float64(n), "gc"+name+"-kB/"+unit)
		}
	}
	b.Logf("%d %s: RSS %d kB -> %d kB", n, unit, rssBefore, rssAfter)
}
