// Command sbc-load places many calls through the SBC and measures the
// media it relays.
//
// In webrtc mode each call is a simulated browser: SIP over its own
// secure WebSocket (RFC 7118) to the SBC's WSS listener and a pion
// PeerConnection (ICE, DTLS-SRTP) sending PCMU. In rtp mode each call is a
// plain SIP-over-UDP caller sending PCMU over RTP; the calls share a few
// RTP sockets per source address (-rtp-sockets), sending and receiving
// with sendmmsg/recvmmsg so the tool stays cheaper than the SBC it loads,
// and tell their packets apart by the SBC's address. Either way the SBC must
// route the calls (any user) to the tool's own UAS at -uas, which answers
// every INVITE with PCMU and echoes the RTP back, so each packet crosses
// the SBC twice and is counted at both ends, per call and per direction.
//
// The calls start at -rate per second. Once all are set up and -settle has
// passed, the tool holds them for -hold (the measured window: the SBC's
// CPU from /proc/<-sbc-pid>/stat, the packets the tool saw the SBC relay,
// and the -metric counter scraped from -metrics), then stops sending,
// waits for the packets in flight and hangs every call up with BYE at
// -rate. Ctrl-C or -timeout cuts the run short; the calls are still hung
// up. It prints a summary and one tab-separated key=value line beginning
// with "sbc-load" for scripts; scripts/load-media.sh runs it end to end.
//
// The SBC config needs a route from the callers to a trunk at -uas, the
// callers' addresses exempt from the per-source rate limit
// (policy.rate_limit.exempt_cidrs) and trusted by the route
// (trusted_sources), sip.max_conns_per_ip above the WebRTC calls per
// source, and enough media.rtp_ports (two legs per call).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

func main() {
	o, timeout, err := parseFlags(os.Args[1:])
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "sbc-load:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	go func() { // a second signal stops at once
		<-ctx.Done()
		stop()
	}()
	rep, err := run(ctx, o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "sbc-load:", err)
		os.Exit(1)
	}
	rep.print(os.Stdout)
	if rep.failed > 0 || rep.sentAB != rep.rxAB || rep.sentBA != rep.rxBA {
		os.Exit(3)
	}
}

const usage = `sbc-load places many calls with media through the SBC and measures them.

  webrtc mode: browsers (SIP over WSS, pion ICE + DTLS-SRTP, PCMU 20 ms)
  rtp mode:    SIP over UDP callers with plain RTP (PCMU 20 ms)

Every call goes to the tool's own UAS (-uas), which answers PCMU and echoes
the RTP: the SBC must route any user to a trunk at that address, trust the
callers (route trusted_sources, policy.rate_limit.exempt_cidrs) and allow
sip.max_conns_per_ip browsers per source. Calls start at -rate per second;
once all are up (and -settle passed) they are held for -hold, the measured
window (the SBC's CPU from /proc/<-sbc-pid>/stat, the packets the tool saw
relayed, -metric from -metrics), then hung up with BYE. Ctrl-C or -timeout
ends the run early, still with BYE. Output: a summary, then one line of
tab-separated key=value fields beginning with "sbc-load". Exit status 3
when a call failed or a packet was lost. scripts/load-media.sh runs it
end to end (build, config, SBC start and stop).

`

func parseFlags(args []string) (*options, time.Duration, error) {
	fs := flag.NewFlagSet("sbc-load", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usage)
		fs.PrintDefaults()
	}
	o := &options{}
	fs.StringVar(&o.mode, "mode", "webrtc", "webrtc (browsers over WSS, DTLS-SRTP) or rtp (SIP over UDP, plain RTP)")
	fs.IntVar(&o.calls, "calls", 10, "concurrent calls to place")
	fs.Float64Var(&o.rate, "rate", 50, "calls started (and hung up) per second")
	fs.DurationVar(&o.hold, "hold", 10*time.Second, "the measured window: how long all calls are held once set up")
	fs.DurationVar(&o.settle, "settle", time.Second, "wait after the last setup before the window starts")
	fs.DurationVar(&o.setupTimeout, "setup-timeout", 15*time.Second, "bound on one call's setup (INVITE to 200, then to DTLS connected)")
	fs.DurationVar(&o.byeTimeout, "bye-timeout", 10*time.Second, "bound on one BYE transaction")
	timeout := fs.Duration("timeout", 10*time.Minute, "bound on the ramp and the window; the calls are hung up after it")
	fs.StringVar(&o.sbcUDP, "sip", "127.0.0.1:5060", "the SBC's SIP UDP listener (rtp mode)")
	fs.StringVar(&o.sbcWSS, "wss", "127.0.0.1:8443", "the SBC's WSS listener host:port (webrtc mode)")
	fs.StringVar(&o.uasAddr, "uas", "127.0.0.1:25080", "the tool's UAS (SIP over UDP): the trunk the SBC routes to")
	srcs := fs.String("src", "127.0.0.1", "comma-separated local addresses the calls come from, round robin")
	fs.IntVar(&o.echoes, "echo-sockets", 8, "UDP sockets of the RTP echo (a goroutine each, recvmmsg/sendmmsg)")
	fs.IntVar(&o.rtpSockets, "rtp-sockets", 8, "RTP sockets per source address in rtp mode, shared by the calls (sendmmsg/recvmmsg)")
	fs.IntVar(&o.batch, "batch", 50, "WebRTC calls per sending goroutine (one 20 ms ticker each)")
	fs.IntVar(&o.sbcPID, "sbc-pid", 0, "the SBC's process id, for its CPU over the window (0: not measured)")
	fs.StringVar(&o.metricsURL, "metrics", "", "the SBC's metrics URL, e.g. http://127.0.0.1:9090/metrics (empty: not read)")
	fs.StringVar(&o.metricName, "metric", "sbc_media_relayed_packets_total", "the SBC's relayed-packets counter, samples summed (the default counts live calls' packets, RTP and RTCP; sbc_media_packets_total counts a call's when it ends, so 0 over a window with no call ending)")
	fs.StringVar(&o.userPrefix, "user", "load", "prefix of the dialed users (load0, load1, ...): they name the calls at the UAS")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write a Go CPU profile of the tool itself over the measured window to this file")
	if err := fs.Parse(args); err != nil {
		return nil, 0, err
	}
	for _, s := range strings.Split(*srcs, ",") {
		if s = strings.TrimSpace(s); s != "" {
			o.srcs = append(o.srcs, s)
		}
	}
	switch {
	case o.mode != "webrtc" && o.mode != "rtp":
		return nil, 0, fmt.Errorf("-mode %q: webrtc or rtp", o.mode)
	case o.calls < 1 || o.calls > 100000:
		return nil, 0, fmt.Errorf("-calls %d: 1 to 100000", o.calls)
	case o.rate <= 0 || o.rate > 10000:
		return nil, 0, fmt.Errorf("-rate %v: above 0, at most 10000", o.rate)
	case o.hold < 0 || o.settle < 0 || *timeout <= 0 || o.setupTimeout <= 0 || o.byeTimeout <= 0:
		return nil, 0, fmt.Errorf("durations must be positive (-hold, -settle may be 0)")
	case len(o.srcs) == 0:
		return nil, 0, fmt.Errorf("-src: at least one address")
	}
	return o, *timeout, nil
}
