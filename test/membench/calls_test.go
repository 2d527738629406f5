package membench

import (
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"
)

// Shape of BenchmarkCallMemory. SBC_MEM_CALLS overrides callsN and
// SBC_MEM_PTIME_MS the interval between one side's RTP packets.
const (
	callsN       = 1000
	callsPtimeMS = 100 // 10 packets/s per direction: light, yet flowing
	callsWarmup  = 20
	callsRate    = 200 // new calls per second
	callsWait    = 60 * time.Second
	txWait       = 90 * time.Second // Timer L (32 s) after the last answer, with margin
	uacIP        = "127.0.0.2"
	uasIP        = "127.0.0.3"
)

// BenchmarkCallMemory establishes N relayed calls (SIP over UDP, a UAC on
// 127.0.0.2 through the SBC to a UAS on 127.0.0.3, plain RTP flowing both
// ways through the SBC's relay) and reports kB/call: the change of the
// SBC's RSS, once stable with the calls up and media flowing, divided by
// N; then kB/steady-call, the same once the transactions of the calls'
// setup have ended. Run with -benchtime=1x.
func BenchmarkCallMemory(b *testing.B) {
	n := envInt(b, "SBC_MEM_CALLS", callsN)
	ptime := time.Duration(envInt(b, "SBC_MEM_PTIME_MS", callsPtimeMS)) * time.Millisecond
	needFDs(b, 2*(n+callsWarmup)+100)
	sbcPort := freePort(b)
	admin := fmt.Sprintf("127.0.0.1:%d", freePort(b))
	srv, err := newUAS(uasIP)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(srv.close)
	dir := b.TempDir()
	p := startSBC(b, fmt.Sprintf(`
node_id: membench
log: {level: info}
sip:
  listeners: [{name: udp, transport: udp, addr: "127.0.0.1:%d"}]
media: {bind_ip: 127.0.0.1, rtp_ports: 20000-39999}
trunks: [{name: uas, uri: "sip:%s:%d", options_interval: 0}]
routes: [{name: all, match: {}, target: trunks, trunks: [uas], trusted_sources: [%q]}]
policy:
  rate_limit: {exempt_cidrs: [%q]}
  bans: {file: %s/bans.json}
admin: {addr: %q}
cdr_spool: %s/spool
cdr: [{type: jsonl, dir: %s/cdr}]
`, sbcPort, uasIP, srv.port(), uacIP, uacIP, dir, admin, dir, dir), admin)
	cli, err := newUAC(uacIP, netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(sbcPort)))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(cli.close)
	stop := startMedia(cli, srv, ptime)
	b.Cleanup(stop)

	for b.Loop() {
		warm := placeCalls(b, cli, 0, callsWarmup)
		hangUp(b, cli, warm)
		rss0 := p.settledRSS(b)
		st0 := p.runtimeStats(b)
		p.heapProfile(b, "calls-before")
		calls := placeCalls(b, cli, callsWarmup, n)
		waitMedia(b, calls, ptime)
		rss1 := p.settledRSS(b)
		st1 := p.runtimeStats(b)
		p.heapProfile(b, "calls-after")
		report(b, "call", n, rss0, rss1, st0, st1)
		// A call lasts minutes; its setup's transactions end 64*T1 (32 s)
		// after the answer (RFC 6026 Accepted state). Measured again once
		// they have: what an established call costs for the rest of its
		// life.
		waitTransactions(b, p, st0.transactions)
		rss2 := p.settledRSS(b)
		st2 := p.runtimeStats(b)
		p.heapProfile(b, "calls-steady")
		report(b, "steady-call", n, rss0, rss2, st0, st2)
		hangUp(b, cli, calls)
	}
}

// placeCalls places n calls numbered from first at callsRate and waits
// until all are answered.
func placeCalls(b *testing.B, cli *uac, first, n int) []*uacCall {
	b.Helper()
	tick := time.NewTicker(time.Second / callsRate)
	defer tick.Stop()
	calls := make([]*uacCall, 0, n)
	for i := range n {
		c, err := cli.invite(first + i)
		if err != nil {
			b.Fatal(err)
		}
		calls = append(calls, c)
		<-tick.C
	}
	deadline := time.After(callsWait)
	for i, c := range calls {
		select {
		case <-c.answered:
		case <-deadline:
			b.Fatalf("call %d of %d not answered after %v", i, n, callsWait)
		}
	}
	return calls
}

// waitTransactions waits until the SBC has no more live transactions
// than want, for at most txWait.
func waitTransactions(b *testing.B, p *sbcProc, want float64) {
	b.Helper()
	deadline := time.Now().Add(txWait)
	for {
		st := p.metrics(b)
		if st.transactions <= want {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("%v transactions still live after %v, want %v", st.transactions, txWait, want)
		}
		time.Sleep(time.Second)
	}
}

// waitMedia waits until the caller's phone of every call has received
// RTP relayed from the callee.
func waitMedia(b *testing.B, calls []*uacCall, ptime time.Duration) {
	b.Helper()
	deadline := time.Now().Add(callsWait)
	for _, c := range calls {
		for c.rtp.recv.Load() == 0 {
			if time.Now().After(deadline) {
				b.Fatalf("call %s: no media after %v", c.id, callsWait)
			}
			time.Sleep(ptime)
		}
	}
}

// hangUp sends BYE on every call at callsRate, resends it each second to
// a call that has not answered it (UDP), and waits for the 200s.
func hangUp(b *testing.B, cli *uac, calls []*uacCall) {
	b.Helper()
	tick := time.NewTicker(time.Second / callsRate)
	defer tick.Stop()
	for _, c := range calls {
		cli.inDialog(c, 2, "BYE")
		<-tick.C
	}
	deadline := time.Now().Add(callsWait)
	for _, c := range calls {
		for done := false; !done; {
			select {
			case <-c.byeDone:
				done = true
			case <-time.After(time.Second):
				if time.Now().After(deadline) {
					b.Fatalf("call %s: no 200 to BYE after %v", c.id, callsWait)
				}
				cli.inDialog(c, 2, "BYE")
			}
		}
		c.rtp.peer.Store(nil)
	}
}

// startMedia sends one RTP packet per ptime from every phone that knows
// its peer, until the returned stop is called.
func startMedia(cli *uac, srv *uas, ptime time.Duration) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		pkt := make([]byte, 172)
		tick := time.NewTicker(ptime)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
			}
			cli.mu.Lock()
			for _, c := range cli.legs {
				c.rtp.send(uint32(c.n), pkt)
			}
			cli.mu.Unlock()
			srv.mu.Lock()
			// Each phone keeps its SSRC (numbering them in the map's
			// random order gave a new SSRC nearly every packet: an
			// ssrc-switch event each, every call's timeline full).
			for _, ph := range srv.rtp {
				ph.send(ph.ssrc, pkt)
			}
			srv.mu.Unlock()
		}
	})
	return func() {
		close(done)
		wg.Wait()
	}
}
