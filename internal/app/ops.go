package app

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sbc-project/sbc/b2bua"
	"github.com/sbc-project/sbc/b2bua/outcome"
	"github.com/sbc-project/sbc/b2bua/routing"
	"github.com/sbc-project/sbc/b2bua/transport"
	"github.com/sbc-project/sbc/internal/admin"
	"github.com/sbc-project/sbc/internal/config"
	"github.com/sbc-project/sbc/internal/console"
	"github.com/sbc-project/sbc/internal/hep"
	"github.com/sbc-project/sbc/internal/logging"
	"github.com/sbc-project/sbc/internal/metrics"
	"github.com/sbc-project/sbc/media"
	"github.com/sbc-project/sbc/media/wrtc"
)

// ops is the operations side of an App: metrics, the admin server, HEP
// export, tracing, reload and drain. It is set up by New through
// setupOps (before the listeners open, so the first call is counted) and
// startOps (the admin server, last), and stopped by closeOps.
type ops struct {
	ctx   context.Context // the App's; done when it closes
	cfg   atomic.Pointer[config.Config]
	level *slog.LevelVar // nil: the log level cannot change at run time
	load  func() (*config.Config, error)

	hep       *hep.Sender   // nil: export off
	admin     *admin.Server // nil: admin.addr empty
	adminAddr net.Addr

	monitorMu     sync.Mutex
	monitorCancel context.CancelFunc

	recent   *console.Recent  // the last calls' records, for GET /api/v1/cdrs
	trunkLog console.TrunkLog // trunk up/down history, for GET /api/v1/trunks

	reloadMu sync.Mutex
	onReload []reloadHook

	drainMu       sync.Mutex
	draining      bool
	drainDeadline time.Time
	drained       chan struct{} // closed when a drain has finished (endDrain)
	drainedOnce   sync.Once
	migrated      bool // the calls were handed over (Migrate)
}

// callMetrics feeds call records to the metrics. It is an outcome.Observer.
type callMetrics struct{ m *metrics.Metrics }

func (o callMetrics) CallStarted(r outcome.CallRecord)  { o.m.CallStarted(r.ATransport) }
func (o callMetrics) CallAnswered(r outcome.CallRecord) { o.m.CallAnswered(r.Trunk) }
func (o callMetrics) CallEnded(r outcome.CallRecord) {
	o.m.CallEnded(metrics.Call{Trunk: r.Trunk, Cause: r.Cause, Side: r.Side, Answered: !r.Answer.IsZero(),
		Start: r.Start, Ring: r.Ring, Answer: r.Answer, End: r.End, FromA: r.Media.AtoB, FromB: r.Media.BtoA})
}

// observers hands each record to every observer in order: the CDR
// recorder first, so a record is durable before anything else sees it. Its
// zero value has none; add more with App.Observe. The calls read the list
// with one atomic load and hand the record straight to each observer: no
// lock shared by the calls, no closure, and one copy of the record less
// on the call's stack (ops_test.go holds the order).
type observers struct {
	mu   sync.Mutex // serializes add
	list atomic.Pointer[[]outcome.Observer]
}

func (os *observers) add(o outcome.Observer) {
	os.mu.Lock()
	defer os.mu.Unlock()
	var list []outcome.Observer
	if old := os.list.Load(); old != nil {
		list = append(list, *old...)
	}
	list = append(list, o)
	os.list.Store(&list)
}

// observed returns the observers, in order; nil when none.
func (os *observers) observed() []outcome.Observer {
	if l := os.list.Load(); l != nil {
		return *l
	}
	return nil
}

func (os *observers) CallStarted(r outcome.CallRecord) {
	for _, o := range os.observed() {
		o.CallStarted(r)
	}
}

func (os *observers) CallAnswered(r outcome.CallRecord) {
	for _, o := range os.observed() {
		o.CallAnswered(r)
	}
}

func (os *observers) CallEnded(r outcome.CallRecord) {
	for _, o := range os.observed() {
		o.CallEnded(r)
	}
}

// Observe adds a receiver of call records, after the CDR recorder and the
// metrics: it sees each record once it is durable.
func (a *App) Observe(o outcome.Observer) { a.observers.add(o) }

// setupOps creates the metrics, the tracer and the HEP sender, which the
// B2BUA gets as hooks. It runs before the B2BUA is built.
func (a *App) setupOps(cfg *config.Config, opt Options) error {
	a.ops.cfg.Store(cfg)
	a.ops.level, a.ops.load = opt.Level, opt.Load
	a.ops.drained = make(chan struct{})
	a.traces = new(logging.Traces)
	a.traces.Set(cfg.Log.Trace)
	m, err := metrics.New(a.sources())
	if err != nil {
		return err
	}
	a.metrics = m
	if a.cdr != nil {
		a.observers.add(a.cdr)
	}
	a.observers.add(callMetrics{m})
	a.ops.recent = console.NewRecent(console.DefaultRecent, cfg.NodeID)
	a.observers.add(a.ops.recent)
	if cfg.HEP.Addr != "" {
		a.ops.hep, err = hep.NewSender(hep.Config{Addr: cfg.HEP.Addr, CaptureID: uint32(cfg.HEP.CaptureID),
			AuthKey: cfg.HEP.Password, Log: a.log.With("part", "hep")})
		if err != nil {
			return fmt.Errorf("hep.addr: %w", err)
		}
	}
	return nil
}

// tap counts every SIP message and exports it over HEP.
func (a *App) tap(m *b2bua.TapMessage) {
	dir := metrics.In
	if m.Dir == b2bua.Sent {
		dir = metrics.Out
	}
	a.metrics.SIPMessage(dir, m.Method, m.Code)
	if s := a.ops.hep; s != nil {
		proto := hep.TransportTCP
		if m.Kind == transport.UDP {
			proto = hep.TransportUDP
		}
		s.SIP(m.Data, m.Src, m.Dst, proto, time.Now(), m.Correlation())
	}
}

// rtcpExport is the media relay's RTCP hook: nil when HEP is off, so
// the relay pays nothing for it.
func (a *App) rtcpExport(cfg *config.Config) func(media.RTCPPacket) {
	if cfg.HEP.Addr == "" {
		return nil
	}
	return a.exportRTCP
}

// exportRTCP sends one RTCP packet of a call's media over HEP, under the
// caller leg's Call-ID like the call's SIP. It runs on the relay's path:
// the sender only copies a packet that holds a report and queues it.
func (a *App) exportRTCP(p media.RTCPPacket) {
	// The sender is made after the media manager, before any call.
	if s := a.ops.hep; s != nil {
		s.RTCP(p.Data, p.Src, p.Dst, time.Now(), p.Session)
	}
}

// sources are what the metrics read at each scrape.
func (a *App) sources() metrics.Sources {
	src := metrics.Sources{
		// The B2BUA is built after the metrics: read it at scrape time.
		ActiveCalls:   func() int { return a.server.ActiveCalls() },
		Transactions:  func() int { return a.server.Transactions() },
		MediaSessions: a.media.Active,
		MediaRelayed: func() metrics.MediaRelayed {
			r := a.media.Relayed()
			return metrics.MediaRelayed{RTP: r.RTP, RTCP: r.RTCP}
		},
		WebRTC: webrtcStats,
		Transcoding: func() metrics.TranscodingStats {
			active, total := a.media.Transcoding()
			return metrics.TranscodingStats{Active: active, Total: total}
		},
		Server: func() metrics.ServerStats {
			st := a.server.Stats()
			return metrics.ServerStats{BadMessages: st.BadMessages.Load(), NoDialog: st.NoDialog.Load()}
		},
		Overload: func() metrics.OverloadStats {
			o := a.server.Overload()
			return metrics.OverloadStats{Overloaded: o.Overloaded, Shed: o.Shed, StandingDelay: o.StandingDelay,
				Refused: o.Refused, WaitBounds: o.WaitBounds, WaitCounts: o.WaitCounts, WaitSum: o.WaitSum}
		},
		Transport: func() metrics.TransportStats { return transportStats(a.server.Transport().Stats()) },
		Trunks: func() []metrics.TrunkState {
			var out []metrics.TrunkState
			for _, tr := range a.Routes().Trunks() {
				out = append(out, metrics.TrunkState{Name: tr.Name, Up: tr.Up()})
			}
			return out
		},
		HEP: func() metrics.HEPStats {
			if a.ops.hep == nil {
				return metrics.HEPStats{}
			}
			st := a.ops.hep.Stats()
			return metrics.HEPStats{Sent: st.Sent, Dropped: st.Dropped, Errors: st.Errors}
		},
	}
	if a.bindings != nil {
		src.Registrations = a.bindings.Len
	}
	if a.cdr != nil {
		src.CDR = a.cdrStats
	}
	if a.cluster != nil {
		src.Cluster = a.clusterStats
	}
	src.Bans = func() metrics.BanStats {
		// The ban store opens after the metrics (setupPolicy).
		if a.bans == nil {
			return metrics.BanStats{}
		}
		st := a.bans.Stats()
		return metrics.BanStats{Active: st.Active, Policy: st.Dynamic, Admin: st.Admin}
	}
	return src
}

func transportStats(st transport.Stats) metrics.TransportStats {
	d := st.Dropped
	out := metrics.TransportStats{SendErrors: st.SendErrors,
		Dropped: map[string]uint64{"oversize": d.Oversize, "line_too_long": d.LineTooLong, "bad_framing": d.BadFraming,
			"handshake": d.Handshake, "conn_limit": d.ConnLimit, "idle_closed": d.IdleClosed,
			"queue_full": d.QueueFull, "socket_overflow": d.SocketOverflow},
		Open: make(map[string]int, len(st.Open))}
	for k, n := range st.Open {
		out.Open[strings.ToLower(k.String())] = n
	}
	return out
}

func (a *App) cdrStats() metrics.CDRStats {
	st := a.cdr.Stats()
	out := metrics.CDRStats{Recorded: st.Recorded, SpoolErrors: st.SpoolErrors, SpoolFailing: st.SpoolFailing,
		Backlog: st.Backlog, Dropped: st.Dropped}
	for _, w := range st.Writers {
		out.Writers = append(out.Writers, metrics.CDRWriterStats{Name: w.Name, Delivered: w.Delivered,
			Pending: w.Pending, Failures: w.Failures, Failing: w.Failing, Quarantined: w.Quarantined})
	}
	return out
}

// startMonitor runs OPTIONS probing of table's trunks until the App
// closes or a reload replaces the table, stopping the previous monitor.
func (a *App) startMonitor(ctx context.Context, table *routing.Table) {
	a.ops.monitorMu.Lock()
	defer a.ops.monitorMu.Unlock()
	if a.ops.monitorCancel != nil {
		a.ops.monitorCancel()
	}
	mctx, cancel := context.WithCancel(ctx)
	a.ops.monitorCancel = cancel
	table.OnChange(func(tr *routing.Trunk, up bool) {
		a.metrics.TrunkChanged(tr.Name, up)
		a.ops.trunkLog.Changed(tr.Name, up)
	})
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		table.Monitor(mctx, a.server.Probe)
	}()
}

// startOps starts the admin server on admin.addr; it runs last in New.
func (a *App) startOps(ctx context.Context, cfg *config.Config) error {
	a.ops.ctx = ctx
	if cfg.Admin.Addr == "" {
		return nil
	}
	a.ops.admin = admin.New(a.adminOptions(cfg))
	addr, err := a.ops.admin.Start(cfg.Admin.Addr)
	if err != nil {
		a.ops.admin = nil
		if lerr := asListenError(err, "admin.addr", "admin server", "tcp", cfg.Admin.Addr); lerr != err {
			return lerr
		}
		return fmt.Errorf("admin.addr %s: %w", cfg.Admin.Addr, err)
	}
	a.ops.adminAddr = addr
	srv := a.ops.admin
	return a.metrics.Registry().Register(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "sbc_admin_refused_total",
		Help: "Admin requests refused by the Host, Origin and Content-Type checks (requests a web page made a browser send).",
	}, func() float64 { return float64(srv.Refused()) }))
}

// closeOps stops the admin server and the HEP sender; it runs after the
// calls have ended, so their last messages are exported.
func (a *App) closeOps() error {
	var err error
	if a.ops.admin != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err = a.ops.admin.Close(ctx)
		cancel()
	}
	if a.ops.hep != nil {
		if e := a.ops.hep.Close(); err == nil {
			err = e
		}
	}
	return err
}

// Config returns the configuration in force (the last one loaded).
func (a *App) Config() *config.Config { return a.ops.cfg.Load() }

// AdminAddr returns the admin server's address; ok is false when it does
// not run (admin.addr empty).
func (a *App) AdminAddr() (addr net.Addr, ok bool) {
	return a.ops.adminAddr, a.ops.adminAddr != nil
}

// reloadHook is a part's way to apply its config sections on reload.
type reloadHook struct {
	keys []string
	f    func(old, next *config.Config)
}

// OnReload registers f to run after each successful reload with the old
// and the new configuration, for parts that apply their own sections
// (users, auth, policy): keys are the key prefixes f puts in force, which
// a reload then reports as applied instead of needing a restart. f runs
// under the reload lock and must not block long.
func (a *App) OnReload(keys []string, f func(old, next *config.Config)) {
	a.ops.reloadMu.Lock()
	a.ops.onReload = append(a.ops.onReload, reloadHook{keys: keys, f: f})
	a.ops.reloadMu.Unlock()
}

// Started logs "sbc started" with the listeners and the admin address.
func (a *App) Started(cfg *config.Config) {
	args := []any{"node_id", cfg.NodeID, "listeners", a.describe()}
	if addr, ok := a.AdminAddr(); ok {
		args = append(args, "admin", addr.String())
	}
	if cfg.HEP.Addr != "" {
		args = append(args, "hep", cfg.HEP.Addr)
	}
	a.log.Info("sbc started", args...)
}

// webrtcStats are the process's WebRTC transport counters by metric kind.
func webrtcStats() map[string]uint64 {
	t := wrtc.ReadTotals()
	c := t.Transports
	return map[string]uint64{
		"rtp_in": c.RTPIn, "rtp_out": c.RTPOut, "rtcp_in": c.RTCPIn, "rtcp_out": c.RTCPOut,
		"dtls": c.DTLSPackets, "srtp_auth_fail": c.SRTPAuthFail, "srtp_replay": c.SRTPReplay,
		"malformed": c.Malformed, "unknown": c.Unknown, "unrouted": c.Unrouted,
		"not_ready": c.NotReady, "early": c.Early,
		"mux_direct": t.Mux.Direct, "mux_to_ice": t.Mux.ToPion, "mux_dropped": t.Mux.Dropped,
	}
}
