package main

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"runtime/pprof"
	"sync"
	"sync/atomic"
	"time"
)

// options are the load run's settings; see the flags in main.go.
type options struct {
	mode         string // webrtc or rtp
	calls        int
	rate         float64 // calls started per second
	hold         time.Duration
	settle       time.Duration
	setupTimeout time.Duration
	byeTimeout   time.Duration
	sbcUDP       string
	sbcWSS       string
	uasAddr      string
	srcs         []string
	echoes       int
	rtpSockets   int // per source address
	batch        int
	sbcPID       int
	metricsURL   string
	metricName   string
	userPrefix   string
	cpuProfile   string // the tool's own CPU profile over the window; "": none
}

// slot is one call of the run: the caller once dialed, or why not.
type slot struct {
	c   caller
	err error // the setup's
	bye error // the hangup's
}

// run places o.calls calls, holds them for o.hold once all are set up,
// measures that window, then hangs every call up with BYE. Canceling ctx
// cuts the ramp and the window short; the calls are still hung up.
func run(ctx context.Context, o *options) (*report, error) {
	u, err := startUAS(o.uasAddr, o.echoes)
	if err != nil {
		return nil, err
	}
	defer u.close()
	p := newPacer(o.batch)
	dial, cleanup, err := dialer(o, &p.on)
	if err != nil {
		p.close()
		return nil, err
	}
	defer cleanup()

	rep := &report{opts: o}
	rep.runStart = takeSample(o, u)
	slots := make([]slot, o.calls)
	ramp(ctx, o, func(i int) {
		// Setup outlives a cancel: a call the SBC answers is hung up below.
		c, err := dial(context.WithoutCancel(ctx), i)
		slots[i] = slot{c: c, err: err}
		if _, batched := c.(*rtpCall); c != nil && err == nil && !batched { // rtp calls are sent by their socket
			p.add(c)
		}
	})
	rep.rampEnd = time.Now()

	if wait(ctx, o.settle) {
		rep.windowStart = takeSample(o, u)
		stopProfile, err := startProfile(o.cpuProfile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "sbc-load:", err)
		}
		wait(ctx, o.hold)
		stopProfile()
		rep.windowEnd = takeSample(o, u)
	}
	p.silence()
	drain(u)
	p.close()
	hangupAll(o, slots)
	rep.runEnd = settleMetric(o, u)
	rep.unknown = u.unknown.Load()
	rep.collect(slots, u, o)
	return rep, nil
}

// startProfile starts the tool's own CPU profile into path (nothing when
// path is empty) and returns what stops it.
func startProfile(path string) (stop func(), err error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return func() {}, fmt.Errorf("-cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return func() {}, fmt.Errorf("-cpuprofile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}

// dialer returns the function that places call i in o.mode and what to
// release after the run; on is the pacer's sending switch.
func dialer(o *options, on *atomic.Bool) (func(context.Context, int) (caller, error), func(), error) {
	switch o.mode {
	case "rtp":
		sbc, err := netip.ParseAddrPort(o.sbcUDP)
		if err != nil {
			return nil, nil, fmt.Errorf("-sip %q: %w", o.sbcUDP, err)
		}
		var sips []*udpSIP
		var socks [][]*rtpSock // per source
		cleanup := func() {
			for _, s := range sips {
				s.close()
			}
			for _, ss := range socks {
				for _, s := range ss {
					s.close()
				}
			}
		}
		for _, src := range o.srcs {
			s, err := newUDPSIP(src, sbc)
			if err != nil {
				cleanup()
				return nil, nil, err
			}
			sips = append(sips, s)
			var ss []*rtpSock
			for range max(o.rtpSockets, 1) {
				r, err := newRTPSock(src, on)
				if err != nil {
					socks = append(socks, ss)
					cleanup()
					return nil, nil, err
				}
				ss = append(ss, r)
			}
			socks = append(socks, ss)
		}
		return func(ctx context.Context, i int) (caller, error) {
			n := i % len(sips)
			ss := socks[n]
			c, err := dialRTP(ctx, sips[n], ss[(i/len(sips))%len(ss)], user(o, i), o)
			if c == nil {
				return nil, err
			}
			return c, err
		}, cleanup, nil
	case "webrtc":
		api, err := newBrowserAPI()
		if err != nil {
			return nil, nil, err
		}
		return func(ctx context.Context, i int) (caller, error) {
			c, err := dialWeb(ctx, api, o.srcs[i%len(o.srcs)], o.sbcWSS, user(o, i), o)
			if c == nil {
				return nil, err
			}
			return c, err
		}, func() {}, nil
	}
	return nil, nil, fmt.Errorf("unknown mode %q (webrtc or rtp)", o.mode)
}

func user(o *options, i int) string { return fmt.Sprintf("%s%d", o.userPrefix, i) }

// ramp starts place(i) for each call at o.rate per second and waits for
// every setup to finish (each is bounded by the setup timeout).
func ramp(ctx context.Context, o *options, place func(int)) {
	var wg sync.WaitGroup
	defer wg.Wait()
	interval := time.Duration(float64(time.Second) / o.rate)
	next := time.Now()
	for i := range o.calls {
		if d := time.Until(next); d > 0 && !wait(ctx, d) {
			return
		}
		if ctx.Err() != nil {
			return
		}
		wg.Go(func() { place(i) })
		next = next.Add(interval)
	}
}

// wait sleeps for d unless ctx ends first; it reports whether ctx is live.
func wait(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// drain waits, once sending stopped, for the packets in flight: until
// neither the echo nor the callers received anything for 300 ms (at most
// 3 s).
func drain(u *uas) {
	last, quiet := u.rx.Load()+callerRx.Load(), 0
	for range 30 {
		time.Sleep(100 * time.Millisecond)
		now := u.rx.Load() + callerRx.Load()
		if now == last {
			if quiet++; quiet >= 3 {
				return
			}
		} else {
			quiet = 0
		}
		last = now
	}
}

// hangupAll sends BYE on every answered call at the ramp rate, waits for
// the answers and closes everything.
func hangupAll(o *options, slots []slot) {
	var wg sync.WaitGroup
	interval := time.Duration(float64(time.Second) / o.rate)
	next := time.Now()
	for i := range slots {
		c := slots[i].c
		if c == nil {
			continue
		}
		time.Sleep(time.Until(next))
		next = next.Add(interval)
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), o.byeTimeout+time.Second)
			defer cancel()
			if err := c.hangup(ctx, o.byeTimeout); err != nil && !errors.Is(err, context.Canceled) {
				slots[i].bye = err
			}
			c.close()
		})
	}
	wg.Wait()
}
