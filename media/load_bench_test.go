//go:build linux || darwin

package media

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// Load shape of BenchmarkRelayCalls: every call sends one 172-byte RTP
// packet (PCMU, 20 ms) per ptime in each direction.
const (
	loadPtime = 20 * time.Millisecond
	// loadWindow is one measured run; loadBaseWindow the run without the
	// SBC that prices the load generator itself.
	loadWindow     = 3 * time.Second
	loadBaseWindow = 2 * time.Second
	// loadSenders is how many goroutines share the sending; each sends
	// for its share of the calls once per ptime, phases spread out.
	loadSenders = 4
	// loadDrainPolls bounds the wait for packets in flight after a run:
	// polls of loadDrainPoll, ending early once nothing more arrives.
	loadDrainPolls = 100
	loadDrainPoll  = 10 * time.Millisecond
	// loadFDsPerCall: the SBC's four sockets and the two test phones'.
	loadFDsPerCall = 6
)

// BenchmarkRelayCalls relays N concurrent calls on loopback, each with a
// plain RTP phone on side A and one on side B sending 50 packets/s toward
// each other through the SBC, for loadWindow per iteration. One iteration
// takes the whole window: run it with -benchtime=1x.
//
// Metrics (ns/op is suppressed):
//   - relayed_pkts/s: RTP packets the SBC relayed (its own counters), per
//     second of sending.
//   - loss_%: packets sent by the phones that never reached the far phone.
//   - cpu_cores: process CPU time (user+system, getrusage) per second of
//     sending.
//   - pkts/s/core: relayed packets per process CPU second. The load
//     generator runs in the same process, so this is a lower bound.
//   - go_B/call: Go memory (heap in use, goroutine stacks) taken by the
//     calls' sessions once set up, per call; the kernel's socket memory
//     is not in it.
//   - sbc_pkts/s/core: the same with the generator's CPU taken out, as
//     priced by a run of the same phones sending to each other directly
//     (no SBC) before the measurement. An estimate.
func BenchmarkRelayCalls(b *testing.B) {
	if raceEnabled {
		b.Skip("the race detector makes a load figure meaningless")
	}
	for _, calls := range []int{100, 500, 1000} {
		b.Run(fmt.Sprintf("calls=%d", calls), func(b *testing.B) {
			benchRelayCalls(b, calls)
		})
	}
}

func benchRelayCalls(b *testing.B, calls int) {
	checkFDLimit(b, calls*loadFDsPerCall+calls*4+100) // + loadRange's probe
	rig := newLoadRig(b, calls)
	base := rig.run(true, loadBaseWindow)
	if base.received == 0 {
		b.Fatal("baseline run delivered nothing")
	}
	var total loadResult
	for b.Loop() {
		total.add(rig.run(false, loadWindow))
	}
	if total.sent == 0 {
		b.Fatal("nothing sent")
	}
	secs, cpu := total.wall.Seconds(), total.cpu.Seconds()
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(float64(total.relayed)/secs, "relayed_pkts/s")
	b.ReportMetric(100*float64(total.sent-min(total.received, total.sent))/float64(total.sent), "loss_%")
	b.ReportMetric(cpu/secs, "cpu_cores")
	b.ReportMetric(float64(total.relayed)/cpu, "pkts/s/core")
	genPerPkt := base.cpu.Seconds() / float64(base.sent)
	if sbcCPU := cpu - genPerPkt*float64(total.sent); sbcCPU > 0 {
		b.ReportMetric(float64(total.relayed)/sbcCPU, "sbc_pkts/s/core")
	}
	b.ReportMetric(rig.perCall, "go_B/call")
	if total.sendErrs > 0 {
		b.ReportMetric(float64(total.sendErrs), "send_errors")
	}
}

// checkFDLimit skips the benchmark when the process may not open need
// descriptors.
func checkFDLimit(b *testing.B, need int) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		b.Fatalf("getrlimit: %v", err)
	}
	if lim.Cur < uint64(need) {
		b.Skipf("needs %d file descriptors, the limit is %d", need, lim.Cur)
	}
}

// loadPhone is a test phone: one RTP socket that sends toward the SBC (or,
// for the baseline, straight to the far phone) and counts what arrives.
type loadPhone struct {
	conn   *net.UDPConn
	addr   netip.AddrPort
	sbc    netip.AddrPort // the SBC port facing this phone
	peer   netip.AddrPort // the far phone
	ssrc   uint32
	seq    uint16
	ts     uint32
	sent   uint64 // owned by the sender goroutine of its shard
	failed uint64
	recv   atomic.Uint64
}

// loadRig is N calls set up through one Manager, with a reader goroutine
// per phone.
type loadRig struct {
	// perCall is the Go memory (heap in use and goroutine stacks) the
	// calls' sessions took, per call, once set up.
	perCall  float64
	sessions []*Session
	phones   []*loadPhone // 2 per call: A then B
	readers  sync.WaitGroup
}

func newLoadRig(b *testing.B, calls int) *loadRig {
	b.Helper()
	rig := &loadRig{}
	for i := range 2 * calls {
		rig.phones = append(rig.phones, newLoadPhone(b, uint32(i+1)))
	}
	b.Cleanup(rig.close)
	lo, hi := loadRange(b, 2*calls)
	m := newTestManager(b, 1, netip.Addr{}, func(c *Config) { c.PortMin, c.PortMax = lo, hi })
	before := goMemory()
	for i := range calls {
		a, bp := rig.phones[2*i], rig.phones[2*i+1]
		s := m.NewSession(fmt.Sprintf("load-%d", i))
		rig.sessions = append(rig.sessions, s)
		offer, err := s.Offer(SideA, sipSDP("127.0.0.1", int(a.addr.Port())))
		if err != nil {
			b.Fatalf("call %d: Offer: %v", i, err)
		}
		answer, err := s.Answer(SideB, sipSDP("127.0.0.1", int(bp.addr.Port())))
		if err != nil {
			b.Fatalf("call %d: Answer: %v", i, err)
		}
		bp.sbc = netip.AddrPortFrom(loopback, uint16(mPort(b, offer, 0)))
		a.sbc = netip.AddrPortFrom(loopback, uint16(mPort(b, answer, 0)))
		a.peer, bp.peer = bp.addr, a.addr
	}
	rig.perCall = float64(goMemory()-before) / float64(calls)
	for _, p := range rig.phones {
		rig.readers.Go(p.read)
	}
	return rig
}

// goMemory is the heap in use and the goroutine stacks, after a
// collection.
func goMemory() int64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapInuse + ms.StackInuse)
}

// loadRange finds pairs free port pairs below the kernel's ephemeral
// range (32768 up on Linux), where the phones' sockets cannot be: a range
// among 2000 phone sockets is rarely free.
func loadRange(b *testing.B, pairs int) (lo, hi int) {
	b.Helper()
	n := 2 * pairs
	for base := 32768 - n; base >= 10000; base -= n {
		if probe(base, n) {
			return base, base + n - 1
		}
	}
	b.Skipf("no free range of %d ports below 32768", n)
	return 0, 0
}

func newLoadPhone(b *testing.B, ssrc uint32) *loadPhone {
	b.Helper()
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatalf("listen: %v", err)
	}
	return &loadPhone{conn: conn, addr: conn.LocalAddr().(*net.UDPAddr).AddrPort(), ssrc: ssrc}
}

// read counts datagrams until the socket is closed (or, as a bound, for
// ten minutes).
func (p *loadPhone) read() {
	buf := make([]byte, maxPacket)
	p.conn.SetReadDeadline(time.Now().Add(10 * time.Minute))
	for {
		if _, _, err := p.conn.ReadFromUDPAddrPort(buf); err != nil {
			if errors.Is(err, net.ErrClosed) || errors.Is(err, syscall.EINVAL) || isTimeout(err) {
				return
			}
			continue
		}
		p.recv.Add(1)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func (r *loadRig) close() {
	for _, s := range r.sessions {
		s.Close()
	}
	for _, p := range r.phones {
		p.conn.Close()
	}
	r.readers.Wait()
}

// loadResult is what one run measured.
type loadResult struct {
	sent, sendErrs, received, relayed uint64
	cpu, wall                         time.Duration
}

func (r *loadResult) add(o loadResult) {
	r.sent += o.sent
	r.sendErrs += o.sendErrs
	r.received += o.received
	r.relayed += o.relayed
	r.cpu += o.cpu
	r.wall += o.wall
}

// run sends for window, through the SBC or (direct) phone to phone, waits
// for the packets in flight, and returns the counters' growth.
func (r *loadRig) run(direct bool, window time.Duration) loadResult {
	before := r.counters()
	cpu0, start := cpuTime(), time.Now()
	ticks := int(window / loadPtime)
	var senders sync.WaitGroup
	for k := range loadSenders {
		shard := r.phones[k*len(r.phones)/loadSenders : (k+1)*len(r.phones)/loadSenders]
		phase := start.Add(loadPtime * time.Duration(k) / loadSenders)
		senders.Go(func() { sendShard(shard, direct, phase, ticks) })
	}
	senders.Wait()
	// The last tick leaves one ptime before the window ends; a sender
	// that fell behind makes the run longer.
	wall := max(time.Since(start), window)
	r.drain(before)
	after := r.counters()
	return loadResult{
		sent:     after.sent - before.sent,
		sendErrs: after.sendErrs - before.sendErrs,
		received: after.received - before.received,
		relayed:  after.relayed - before.relayed,
		cpu:      cpuTime() - cpu0,
		wall:     wall,
	}
}

// sendShard sends one packet from every phone of shard per ptime, ticks
// times, from phase on. A sender that falls behind sends at once rather
// than skip ticks, so the packet count is fixed.
func sendShard(shard []*loadPhone, direct bool, phase time.Time, ticks int) {
	pkt := rtpPacket(0)
	for tick := range ticks {
		if d := time.Until(phase.Add(loadPtime * time.Duration(tick))); d > 0 {
			time.Sleep(d)
		}
		for _, p := range shard {
			to := p.sbc
			if direct {
				to = p.peer
			}
			p.seq++
			p.ts += 160
			binary.BigEndian.PutUint16(pkt[2:], p.seq)
			binary.BigEndian.PutUint32(pkt[4:], p.ts)
			binary.BigEndian.PutUint32(pkt[8:], p.ssrc)
			if _, err := p.conn.WriteToUDPAddrPort(pkt, to); err != nil {
				p.failed++
				continue
			}
			p.sent++
		}
	}
}

// counters sums the phones' and the sessions' counters. It runs between
// runs: the senders' fields are not being written.
func (r *loadRig) counters() loadResult {
	var c loadResult
	for _, p := range r.phones {
		c.sent += p.sent
		c.sendErrs += p.failed
		c.received += p.recv.Load()
	}
	for _, s := range r.sessions {
		st := s.Stats()
		c.relayed += st.AtoB.Packets + st.BtoA.Packets
	}
	return c
}

// drain waits, bounded by loadDrainPolls, until every packet sent since
// before has arrived or arrivals stop for five polls.
func (r *loadRig) drain(before loadResult) {
	var last uint64
	still := 0
	for range loadDrainPolls {
		c := r.counters()
		got := c.received - before.received
		if got >= c.sent-before.sent {
			return
		}
		if got == last {
			if still++; still >= 5 {
				return
			}
		} else {
			last, still = got, 0
		}
		time.Sleep(loadDrainPoll)
	}
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
