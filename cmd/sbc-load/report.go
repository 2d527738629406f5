package main

import (
	"bufio"
	"fmt"
	"io"
	"maps"
	"math"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/<pid>/stat
// (100 on every Linux architecture the SBC runs on).
const clockTicks = 100

// sample is the state of the SBC and of the tool at one moment.
type sample struct {
	at       time.Time
	ticks    int64   // SBC utime+stime in clock ticks; -1 without -sbc-pid
	ownTicks int64   // the tool's own utime+stime
	metric   float64 // the relayed-packets metric; NaN without -metrics
	echoRx   int64   // packets the echo received (relayed by the SBC toward it)
	callerRx int64   // packets the callers received (relayed toward them)
	callerTx int64   // packets the callers sent
	udpDrops int64   // the host's UDP RcvbufErrors (/proc/net/snmp); -1 unknown
	hostBusy int64   // the host's busy clock ticks, every CPU (/proc/stat); -1 unknown
}

func takeSample(o *options, u *uas) sample {
	return sample{at: time.Now(), ticks: cpuTicks(o.sbcPID), ownTicks: cpuTicks(os.Getpid()), metric: scrape(o.metricsURL, o.metricName),
		echoRx: u.rx.Load(), callerRx: callerRx.Load(), callerTx: callerTx.Load(), udpDrops: udpRcvbufErrors(),
		hostBusy: hostBusyTicks()}
}

// hostBusyTicks is the host's CPU time in clock ticks spent on anything
// but idle and I/O wait, summed over every CPU (-1 when /proc/stat cannot
// be read): with the SBC's and the tool's own, what the rest of the
// machine took meanwhile (other_cpu%, as the shared harness reports it).
func hostBusyTicks() int64 {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return -1
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 5 || f[0] != "cpu" {
		return -1
	}
	var busy int64
	for i, v := range f[1:] {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return -1
		}
		// user nice system idle iowait irq softirq steal guest guest_nice:
		// guest time is counted in user already.
		if i != 3 && i != 4 && i < 8 {
			busy += n
		}
	}
	return busy
}

// udpRcvbufErrors is the host's count of UDP datagrams dropped for a full
// receive buffer (-1 when /proc/net/snmp cannot be read): every socket's,
// the SBC's and the tool's alike.
func udpRcvbufErrors() int64 {
	b, err := os.ReadFile("/proc/net/snmp")
	if err != nil {
		return -1
	}
	var names []string
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) == 0 || f[0] != "Udp:" {
			continue
		}
		if names == nil {
			names = f
			continue
		}
		for i, n := range names {
			if n == "RcvbufErrors" && i < len(f) {
				v, err := strconv.ParseInt(f[i], 10, 64)
				if err != nil {
					return -1
				}
				return v
			}
		}
	}
	return -1
}

// settleMetric samples once the metric stopped moving (an SBC may count a
// call's packets when the call ends): unchanged for 500 ms, at most 5 s.
func settleMetric(o *options, u *uas) sample {
	s := takeSample(o, u)
	for range 10 {
		if math.IsNaN(s.metric) {
			return s
		}
		time.Sleep(500 * time.Millisecond)
		n := takeSample(o, u)
		if n.metric == s.metric {
			return n
		}
		s = n
	}
	return s
}

// cpuTicks reads utime+stime of pid from /proc (-1 when pid is 0 or gone).
func cpuTicks(pid int) int64 {
	if pid <= 0 {
		return -1
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return -1
	}
	// The command name may hold spaces and parentheses: fields count from
	// the last ')'. utime and stime are fields 14 and 15 of the line.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return -1
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return -1
	}
	return ut + st
}

// scrape sums every sample of metric name at url (Prometheus text): 0
// when the page has none (a counter with labels has no sample before its
// first count), NaN when url is empty or does not answer 200.
func scrape(url, name string) float64 {
	if url == "" || name == "" {
		return math.NaN()
	}
	cl := http.Client{Timeout: 5 * time.Second} // an SBC under load answers slowly
	res, err := cl.Get(url)
	if err != nil {
		return math.NaN()
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return math.NaN()
	}
	sum := 0.0
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		l := sc.Text()
		if !strings.HasPrefix(l, name) || (len(l) > len(name) && l[len(name)] != ' ' && l[len(name)] != '{') {
			continue
		}
		f := strings.Fields(l)
		if v, err := strconv.ParseFloat(f[len(f)-1], 64); err == nil && len(f) >= 2 {
			sum += v
		}
	}
	if sc.Err() != nil {
		return math.NaN()
	}
	return sum
}

// report is what a run measured.
type report struct {
	opts                   *options
	runStart, runEnd       sample
	windowStart, windowEnd sample
	rampEnd                time.Time
	unknown                int64

	answered, mediaUp, failed, remoteBye, byeFailed int
	errors                                          map[string]int
	setup, ice, dtls                                []time.Duration
	sentAB, rxAB, sentBA, rxBA                      int64 // A: callers, B: the echo
	lostAtStart                                     int64 // caller→echo packets lost before the echo's first
	lossyCalls                                      int
}

// collect gathers the calls' figures once they have ended.
func (r *report) collect(slots []slot, u *uas, o *options) {
	r.errors = map[string]int{}
	for i, s := range slots {
		if s.err != nil {
			r.errors[short(s.err)]++
			r.failed++
		}
		if s.bye != nil {
			r.byeFailed++
			r.errors["bye: "+short(s.bye)]++
		}
		if s.c == nil {
			continue
		}
		st := s.c.stats()
		if !st.answered {
			continue
		}
		r.answered++
		r.setup = append(r.setup, st.setup)
		if s.err == nil {
			r.mediaUp++
			if o.mode == "webrtc" {
				r.ice, r.dtls = append(r.ice, st.ice), append(r.dtls, st.dtls)
			}
		}
		if st.d.remoteBye.Load() {
			r.remoteBye++
		}
		e := u.stats(user(o, i))
		var erx, etx int64
		if e != nil {
			erx, etx = e.rx.Load(), e.tx.Load()
		}
		sent, recv := st.sent.Load(), st.recv.Load()
		switch {
		case e != nil && e.hasFirst.Load():
			r.lostAtStart += int64(e.first.Load())
		case sent > 0:
			r.lostAtStart += sent
		}
		r.sentAB, r.rxAB, r.sentBA, r.rxBA = r.sentAB+sent, r.rxAB+erx, r.sentBA+etx, r.rxBA+recv
		if sent != erx || etx != recv {
			r.lossyCalls++
		}
	}
}

func short(err error) string {
	s := err.Error()
	if len(s) > 100 {
		s = s[:100]
	}
	return s
}

// pct is the q-quantile of ds in milliseconds (nearest rank); NaN if empty.
func pct(ds []time.Duration, q float64) float64 {
	if len(ds) == 0 {
		return math.NaN()
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(math.Ceil(q*float64(len(s)))) - 1
	return float64(s[max(i, 0)]) / float64(time.Millisecond)
}

// window figures: SBC CPU seconds, packets the tool saw relayed, the
// metric's delta.
func (r *report) windowFigures() (secs, cpu float64, relayed int64, metric float64) {
	a, b := r.windowStart, r.windowEnd
	if a.at.IsZero() || b.at.IsZero() {
		return 0, math.NaN(), 0, math.NaN()
	}
	secs = b.at.Sub(a.at).Seconds()
	cpu = math.NaN()
	if a.ticks >= 0 && b.ticks >= 0 {
		cpu = float64(b.ticks-a.ticks) / clockTicks
	}
	relayed = b.echoRx + b.callerRx - a.echoRx - a.callerRx
	return secs, cpu, relayed, b.metric - a.metric
}

// print writes the human summary and then one line of key=value fields
// separated by tabs, beginning with "sbc-load".
func (r *report) print(w io.Writer) {
	o := r.opts
	secs, cpu, relayed, metric := r.windowFigures()
	runMetric := r.runEnd.metric - r.runStart.metric
	runCPU := math.NaN()
	if r.runStart.ticks >= 0 && r.runEnd.ticks >= 0 {
		runCPU = float64(r.runEnd.ticks-r.runStart.ticks) / clockTicks
	}
	lossAB, lossBA := r.sentAB-r.rxAB, r.sentBA-r.rxBA
	fmt.Fprintf(w, "sbc-load %s: %d calls offered at %.0f/s, %d answered, %d with media up, %d failed, %d ended by the SBC, %d BYE failures\n",
		o.mode, o.calls, o.rate, r.answered, r.mediaUp, r.failed, r.remoteBye, r.byeFailed)
	for _, k := range slices.Sorted(maps.Keys(r.errors)) {
		fmt.Fprintf(w, "  error x%d: %s\n", r.errors[k], k)
	}
	fmt.Fprintf(w, "  setup (INVITE→200) ms: p50 %.1f p90 %.1f p99 %.1f max %.1f\n", pct(r.setup, .5), pct(r.setup, .9), pct(r.setup, .99), pct(r.setup, 1))
	if o.mode == "webrtc" {
		fmt.Fprintf(w, "  ICE (200→connected) ms: p50 %.1f p90 %.1f p99 %.1f max %.1f\n", pct(r.ice, .5), pct(r.ice, .9), pct(r.ice, .99), pct(r.ice, 1))
		fmt.Fprintf(w, "  DTLS (ICE→connected) ms: p50 %.1f p90 %.1f p99 %.1f max %.1f\n", pct(r.dtls, .5), pct(r.dtls, .9), pct(r.dtls, .99), pct(r.dtls, 1))
	}
	fmt.Fprintf(w, "  packets caller→echo: sent %d received %d lost %d (%.4f%%)\n", r.sentAB, r.rxAB, lossAB, ratio(lossAB, r.sentAB))
	fmt.Fprintf(w, "  packets echo→caller: sent %d received %d lost %d (%.4f%%); calls with any loss: %d\n", r.sentBA, r.rxBA, lossBA, ratio(lossBA, r.sentBA), r.lossyCalls)
	fmt.Fprintf(w, "  caller→echo packets lost before the echo's first of the call: %d\n", r.lostAtStart)
	wDrops, rDrops := r.windowEnd.udpDrops-r.windowStart.udpDrops, r.runEnd.udpDrops-r.runStart.udpDrops
	fmt.Fprintf(w, "  host UDP receive-buffer drops (any socket): %d in the window, %d over the run\n", wDrops, rDrops)
	nominal := float64(r.mediaUp) * secs * float64(time.Second/frameInterval)
	txWindow := r.windowEnd.callerTx - r.windowStart.callerTx
	ownCPU := float64(r.windowEnd.ownTicks-r.windowStart.ownTicks) / clockTicks
	otherPct := r.otherCPU(secs, ownCPU)
	fmt.Fprintf(w, "  the callers sent %d packets in the window, %.1f%% of the nominal 50/s per call; the tool used %.2f CPU-s (%.1f%% of a core); the rest of the machine %.1f%% of a core (other_cpu%%)\n",
		txWindow, 100*float64(txWindow)/nominal, ownCPU, 100*ownCPU/secs, otherPct)
	if r.unknown > 0 {
		fmt.Fprintf(w, "  %d packets reached the echo from addresses no offer named\n", r.unknown)
	}
	fmt.Fprintf(w, "  window %.1fs with %d calls up: the SBC relayed %d packets (%.0f/s) using %.2f CPU-s (%.1f%% of a core): %.0f packets per CPU-second\n",
		secs, r.mediaUp, relayed, float64(relayed)/secs, cpu, 100*cpu/secs, float64(relayed)/cpu)
	if runMetric == 0 {
		fmt.Fprintf(w, "  (no %s samples at %s)\n", o.metricName, o.metricsURL)
	}
	fmt.Fprintf(w, "  %s: %.0f over the window, %.0f over the run (run CPU %.2f s: %.0f per CPU-second)\n",
		o.metricName, metric, runMetric, runCPU, runMetric/runCPU)
	fields := []string{"sbc-load", "mode=" + o.mode, kv("calls", o.calls), kv("answered", r.answered), kv("media_up", r.mediaUp),
		kv("failed", r.failed), kv("ended_by_sbc", r.remoteBye), kv("bye_failed", r.byeFailed),
		kf("setup_p50_ms", pct(r.setup, .5)), kf("setup_p99_ms", pct(r.setup, .99)), kf("setup_max_ms", pct(r.setup, 1)),
		kf("ice_p50_ms", pct(r.ice, .5)), kf("ice_p99_ms", pct(r.ice, .99)),
		kf("dtls_p50_ms", pct(r.dtls, .5)), kf("dtls_p99_ms", pct(r.dtls, .99)), kf("dtls_max_ms", pct(r.dtls, 1)),
		kv("sent_ab", r.sentAB), kv("lost_ab", lossAB), kv("lost_ab_at_start", r.lostAtStart), kv("sent_ba", r.sentBA), kv("lost_ba", lossBA), kv("lossy_calls", r.lossyCalls),
		kf("window_s", secs), kf("sbc_cpu_s", cpu), kv("relayed", relayed), kf("relayed_per_cpu_s", float64(relayed)/cpu),
		kf("send_rate_pct", 100*float64(txWindow)/nominal), kf("tool_cpu_s", ownCPU), kv("udp_drops_window", wDrops), kv("udp_drops_run", rDrops), kf("other_cpu_pct", otherPct),
		kf("metric_window", metric), kf("metric_run", runMetric), kf("run_cpu_s", runCPU)}
	fmt.Fprintln(w, strings.Join(fields, "\t"))
}

// otherCPU is the percentage of a core the host spent over the window on
// anything but the SBC and the tool (NaN when unknown).
func (r *report) otherCPU(secs, ownCPU float64) float64 {
	a, b := r.windowStart, r.windowEnd
	if a.hostBusy < 0 || b.hostBusy < 0 || a.ticks < 0 || b.ticks < 0 || secs <= 0 {
		return math.NaN()
	}
	busy := float64(b.hostBusy-a.hostBusy) / clockTicks
	sbc := float64(b.ticks-a.ticks) / clockTicks
	return 100 * max(busy-sbc-ownCPU, 0) / secs
}

func ratio(a, b int64) float64 {
	if b == 0 {
		return 0
	}
	return 100 * float64(a) / float64(b)
}

func kv[T int | int64](k string, v T) string { return k + "=" + strconv.FormatInt(int64(v), 10) }

func kf(k string, v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return k + "=NA"
	}
	return k + "=" + strconv.FormatFloat(v, 'f', 1, 64)
}
