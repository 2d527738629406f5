package media

import (
	"encoding/json"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/sbc-project/sbc/media/rtpproc"
)

// The restore tests' addresses (127.0.16.0/24 is this package's range
// for them): the SBC's media address, and the far ends.
const (
	restoreSBC = "127.0.16.1"
	restoreA   = "127.0.16.2"
	restoreB   = "127.0.16.3"
)

// pacer sends a 20 ms RTP stream from conn to dst until stop, with its
// own SSRC and sequence numbers.
func pacer(t *testing.T, conn *net.UDPConn, dst netip.AddrPort, ssrc uint32, stop <-chan struct{}, wg *sync.WaitGroup) {
	wg.Go(func() {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for seq := uint16(1); ; seq++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			pkt := rtpPacket(seq)
			pkt[4], pkt[5], pkt[6], pkt[7] = byte(seq>>8), byte(seq), 0, 0 // timestamp: any
			pkt[8], pkt[9], pkt[10], pkt[11] = byte(ssrc>>24), byte(ssrc>>16), byte(ssrc>>8), byte(ssrc)
			if _, err := conn.WriteToUDPAddrPort(pkt, dst); err != nil {
				t.Errorf("send to %s: %v", dst, err)
				return
			}
		}
	})
}

// receive records the RTP arriving on conn until it is closed.
func receive(conn *net.UDPConn, a *arrivals, wg *sync.WaitGroup) {
	wg.Go(func() {
		buf := make([]byte, maxPacket)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			a.add(buf[:n])
		}
	})
}

// TestRestorePlainRTP: a plain RTP call through a node process; the
// node's state is taken, it goes on relaying a while, and is killed
// (SIGKILL); a new Manager restores the session from the state: the same
// ports, the latched peers, and each direction continues its stream
// (one SSRC, sequence numbers past any the dead node sent) after a short
// gap.
func TestRestorePlainRTP(t *testing.T) {
	min, max := freeRange(t, 4)
	n := startNode(t, restoreSBC, min, max)
	a, b := newPeerAt(t, restoreA, true), newPeerAt(t, restoreB, true)
	toB := n.sdp("offer", SideA, a.sdp())
	toA := n.sdp("answer", SideB, b.sdp())
	sbcA := netip.AddrPortFrom(netip.MustParseAddr(restoreSBC), uint16(mPort(t, toA, 0)))
	sbcB := netip.AddrPortFrom(netip.MustParseAddr(restoreSBC), uint16(mPort(t, toB, 0)))

	var atA, atB arrivals
	stop := make(chan struct{})
	var wg sync.WaitGroup
	defer wg.Wait()
	defer a.rtp.Close()
	defer b.rtp.Close()
	defer close(stop)
	receive(a.rtp, &atA, &wg)
	receive(b.rtp, &atB, &wg)
	pacer(t, a.rtp, sbcA, 0xaaaa0001, stop, &wg)
	pacer(t, b.rtp, sbcB, 0xbbbb0001, stop, &wg)
	waitFor(t, "media both ways through the node", func() bool { return atA.count() >= 20 && atB.count() >= 20 })

	st := n.state()
	time.Sleep(300 * time.Millisecond) // the node relays past its state, as it would between snapshots
	n.kill()
	cut := time.Now()

	m2 := newTestManagerAt(t, restoreSBC)
	raw, err := json.Marshal(st) // what ReplicaState gives the B2BUA
	if err != nil {
		t.Fatal(err)
	}
	s, err := m2.RestoreJSON(raw)
	if err != nil {
		t.Fatalf("RestoreJSON: %v", err)
	}
	t.Cleanup(s.Close)
	restored := time.Since(cut)
	waitFor(t, "media both ways after the restore", func() bool {
		return atA.count() >= st.packetsTo(SideA)+50 && atB.count() >= st.packetsTo(SideB)+50
	})
	t.Logf("restored %v after the kill", restored)
	atA.check(t, "toward A", cut, 300*time.Millisecond)
	atB.check(t, "toward B", cut, 300*time.Millisecond)
}

// packetsTo is how many packets the state says were relayed toward side.
func (st SessionState) packetsTo(side Side) int {
	n := 0
	for _, ss := range st.Streams {
		n += int(ss.Flows[side.Other()].Packets)
	}
	return n
}

// newTestManagerAt is a survivor's manager on ip, with a port range of
// its own.
func newTestManagerAt(t *testing.T, ip string) *Manager {
	t.Helper()
	min, max := freeRange(t, 4)
	m, err := NewManager(Config{Addrs: []Addr{{Bind: netip.MustParseAddr(ip)}}, PortMin: min, PortMax: max}, testLog())
	if err != nil {
		t.Fatalf("NewManager: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// A socket that latches its side's source reports EventState: the call
// replicates the latched peer.
func TestLatchReportsState(t *testing.T) {
	m := newTestManager(t, 4, netip.Addr{}, nil)
	events := make(chan Event, 16)
	c := setupCall(t, m)
	c.s.Notify(func(ev Event) { events <- ev })
	send(t, c.a.rtp, rtpPacket(1), c.portA)
	// The latch is reported twice: EventLatched for the call's timeline,
	// EventState for replication; the first packet adds EventFirstRTP.
	deadline := time.After(2 * time.Second)
	for state := false; !state; {
		select {
		case ev := <-events:
			switch ev.Kind {
			case EventState:
				state = true
			case EventLatched, EventFirstRTP:
			default:
				t.Fatalf("event %+v, want EventState", ev)
			}
		case <-deadline:
			t.Fatal("no EventState after the latch")
		}
	}
	if st := c.s.State(); !st.Streams[0].Ends[SideA].RTP.Latched {
		t.Fatalf("state after the latch: %+v", st.Streams[0].Ends[SideA].RTP)
	}
}

// The sequence numbers a restored flow skips grow with the state's age at
// the flow's rate, stay below half the sequence space, and are never
// negative when the survivor's clock is behind.
func TestSkipFor(t *testing.T) {
	at := time.Now()
	st := SessionState{Since: at.Add(-10 * time.Second), At: at}
	fs := FlowState{Packets: 2000, Norm: rtpprocState(true)} // 200 packets a second
	early := FlowState{Packets: 1, Norm: rtpprocState(true)} // a state taken as the call began
	for _, tc := range []struct {
		fs       FlowState
		elapsed  time.Duration
		min, max uint16
	}{
		{fs, -time.Minute, 100 + 16, 100 + 16},
		{fs, 0, 100 + 16, 100 + 16},
		{fs, 2 * time.Second, 600 + 16, 600 + 16},
		{early, 2 * time.Second, 300 + 16, 300 + 16},
		{fs, time.Hour, 30000, 30000},
	} {
		if got := skipFor(tc.fs, st, tc.elapsed); got < tc.min || got > tc.max {
			t.Errorf("skip after %v = %d, want %d-%d", tc.elapsed, got, tc.min, tc.max)
		}
	}
	// A state taken before the flow's first packet: the dead node may
	// have sent from the same starting point since.
	if got := skipFor(FlowState{}, st, time.Second); got != 100*1.75+16 {
		t.Errorf("skip of a flow that had sent nothing = %d", got)
	}
	if got := wraps(65530, 10); got != 1 {
		t.Errorf("wraps(65530, 10) = %d", got)
	}
}

func rtpprocState(sent bool) rtpproc.NormalizerState {
	return rtpproc.NormalizerState{Sent: sent, Seq: 100}
}

// An answered session reports EventState every Config.StateEvery, and
// no more once closed.
func TestStateEvery(t *testing.T) {
	m := newTestManager(t, 4, netip.Addr{}, func(c *Config) { c.StateEvery = 30 * time.Millisecond })
	events := make(chan Event, 64)
	c := setupCall(t, m)
	c.s.Notify(func(ev Event) { events <- ev })
	for range 3 {
		select {
		case ev := <-events:
			if ev.Kind != EventState {
				t.Fatalf("event %+v, want EventState", ev)
			}
		case <-time.After(2 * time.Second):
			t.Fatal("no periodic EventState")
		}
	}
	c.s.Close()
	for len(events) > 0 {
		<-events
	}
	select {
	case ev := <-events:
		t.Fatalf("event after Close: %+v", ev)
	case <-time.After(100 * time.Millisecond):
	}
}
