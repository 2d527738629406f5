// Package app wires the SBC together from a validated configuration: the
// certificate store, the route table, the media manager, the echo
// destination and the B2BUA with its listeners. cmd/sbc and the end-to-end
// tests both start the SBC through it.
package app

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sbc-project/sbc/b2bua"
	"github.com/sbc-project/sbc/b2bua/echo"
	"github.com/sbc-project/sbc/b2bua/registrar"
	"github.com/sbc-project/sbc/b2bua/routing"
	"github.com/sbc-project/sbc/b2bua/routing/dnsres"
	"github.com/sbc-project/sbc/b2bua/sipmsg"
	"github.com/sbc-project/sbc/b2bua/timeline"
	"github.com/sbc-project/sbc/b2bua/transport"
	"github.com/sbc-project/sbc/b2bua/trunkreg"
	"github.com/sbc-project/sbc/b2bua/txn"
	"github.com/sbc-project/sbc/cdr"
	"github.com/sbc-project/sbc/internal/cluster"
	"github.com/sbc-project/sbc/internal/config"
	"github.com/sbc-project/sbc/internal/logging"
	"github.com/sbc-project/sbc/internal/metrics"
	"github.com/sbc-project/sbc/media"
	"github.com/sbc-project/sbc/policy"
	"github.com/sbc-project/sbc/security"
)

// DrainTimeout bounds how long Close waits for calls to end after BYE.
const DrainTimeout = 10 * time.Second

// App is a running SBC. Its parts are reached through its methods; the
// route table in force is the B2BUA's (Routes), which a reload swaps.
type App struct {
	log      *slog.Logger
	server   *b2bua.Server
	echo     *echo.UA
	media    *media.Manager
	certs    *security.CertStore
	cdr      *cdr.Recorder    // nil when the config lists no cdr writer
	bindings *registrar.Store // users registered through the SBC
	// resolver locates trunk hosts (RFC 3263); trunkRegs keeps the SBC
	// registered at trunks that ask for it (trunkreg.go).
	resolver  *dnsres.Resolver
	trunkRegs *trunkreg.Manager
	cluster   *cluster.Node // nil on a single node (cluster.go)
	regShare  *cluster.RegShare
	callShare *cluster.CallShare
	replica   *cluster.CallReplica // nil unless cluster.replicate_calls (replica.go)

	policy *policy.Chain                   // the policy chain in front of the B2BUA
	bans   *security.Bans                  // static and dynamic bans (policy.bans)
	self   atomic.Pointer[map[string]bool] // Via sent-by values of this SBC (policy.go)

	metrics   *metrics.Metrics // the Prometheus registry (ops.go)
	observers observers        // the B2BUA's call records go to each (ops.go)
	traces    *logging.Traces  // users and numbers whose calls are traced
	ops       ops              // admin server, HEP, reload, drain (ops.go)
	web       webPhone         // the web phone's own HTTPS server (webphone.go)
	timelines *timeline.Store  // the calls' timelines (timeline.go)

	addrs  map[string]netip.AddrPort // bound listeners, by name
	bound  []config.Listener         // the listeners start bound (a reload does not rebind)
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once
}

// Server is the B2BUA.
func (a *App) Server() *b2bua.Server { return a.server }

// Echo is the built-in echo destination.
func (a *App) Echo() *echo.UA { return a.echo }

// Media is the media manager.
func (a *App) Media() *media.Manager { return a.media }

// CDR is the CDR recorder; nil when the config lists no cdr writer.
func (a *App) CDR() *cdr.Recorder { return a.cdr }

// Bindings are the registrations made through the SBC.
func (a *App) Bindings() *registrar.Store { return a.bindings }

// Routes is the route table in force (a reload swaps it).
func (a *App) Routes() *routing.Table { return a.server.Routes() }

// Options tune an App. The zero value runs with RFC 3261 timers, a log
// level fixed at start and no reload; the sbc command sets Level and Load.
type Options struct {
	Timers txn.Timers // SIP timers; zero: RFC 3261 defaults
	// Level is the level the App's logger filters at (from logging.New);
	// a reload sets it from log.level. Nil: the level needs a restart.
	Level *slog.LevelVar
	// Load loads and validates the configuration again, for Reload. Nil:
	// Reload fails.
	Load func() (*config.Config, error)
}

// New starts every part of the SBC. On error, what was started is stopped
// again (no goroutine, socket or spool lock is left) and the error names
// the part and, for a listener, its config key and address.
func New(cfg *config.Config, log *slog.Logger, opt Options) (*App, error) {
	a := &App{log: log, addrs: make(map[string]netip.AddrPort)}
	if err := a.start(cfg, opt); err != nil {
		if cerr := a.Close(); cerr != nil {
			log.Warn("stopping the parts already started", "err", cerr)
		}
		return nil, err
	}
	return a, nil
}

// start brings the parts up in order; New closes what it started when it
// fails.
func (a *App) start(cfg *config.Config, opt Options) (err error) {
	log := a.log
	if a.resolver, err = newResolver(cfg.DNS); err != nil {
		return err
	}
	routes, err := a.newRouteTable(cfg, log.With("part", "routing"))
	if err != nil {
		return fmt.Errorf("routes: %w", err)
	}
	// The cluster (lazily connected) before the records: the CDR journal
	// asks it which calls left up peers took over (replica.go).
	if a.cluster, err = a.newCluster(cfg); err != nil {
		return err
	}
	if a.cdr, err = newRecorder(cfg, a.takenOver(cfg), log.With("part", "cdr")); err != nil {
		return err
	}
	replicated := a.cluster != nil && cfg.Cluster.ReplicateCalls // as newReplica decides
	if a.media, err = newMedia(cfg.Media, a.rtcpExport(cfg), !replicated, log.With("part", "media")); err != nil {
		return err
	}
	if a.echo, err = echo.Start(netip.MustParseAddr("127.0.0.1"), 0, log.With("part", "echo")); err != nil {
		return fmt.Errorf("echo destination: %w", err)
	}
	a.replica = a.newReplica(cfg)
	auth, err := a.setupRegistrar(cfg)
	if err != nil {
		return err
	}
	if err = a.setupOps(cfg, opt); err != nil {
		return err
	}
	if err = a.setupPolicy(cfg); err != nil {
		return err
	}
	a.timelines = newTimelines(cfg)
	bcfg := serverConfig(cfg, opt)
	if bcfg.EarlyMedia, err = earlyMedia(cfg); err != nil {
		return err
	}
	a.server = b2bua.New(bcfg, b2bua.Hooks{
		Routes:   routes,
		Media:    func(id string) (b2bua.MediaSession, error) { return a.media.NewSession(id), nil },
		Bindings: a.bindings, Auth: auth,
		Peers:     a.clusterPeers(cfg),
		Observer:  &a.observers,
		Policy:    a.policy,
		Tap:       a.tap,
		Tracer:    a.traces,
		Echo:      a.echo.Addr(),
		Timelines: a.timelines,

		Replicate:    a.replicator(),
		RestoreMedia: a.restoreMedia,
	}, log.With("part", "b2bua"))
	a.setupOrigin(cfg)
	if err = a.listen(cfg); err != nil {
		return err
	}
	a.noteSelf(cfg)
	a.warnConfig(cfg)
	if err = a.setupWebPhone(cfg); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	a.cancel = cancel
	a.startMonitor(ctx, routes)
	a.startTrunkRegs(routes)
	a.watchCerts(ctx, cfg)
	a.runRegistrar(ctx, cfg)
	a.runCluster(ctx)
	a.runTimelines(ctx, cfg)
	return a.startOps(ctx, cfg)
}

func serverConfig(cfg *config.Config, opt Options) b2bua.Config {
	s := cfg.SIP
	return b2bua.Config{
		UserAgent:   s.UserAgent,
		PublicHosts: s.PublicHosts(),
		Limits:      sipmsg.Limits{MaxMessageSize: s.MaxMessageSize, MaxHeaders: s.MaxHeaders, MaxLineLength: s.MaxLineLength},
		Transport: transport.Limits{MaxMessageSize: s.MaxMessageSize, MaxLineLength: s.MaxLineLength,
			HandshakeTimeout: s.HandshakeTimeout, IdleTimeout: s.IdleTimeout, MaxConnsPerIP: s.MaxConnsPerIP},
		HeaderWhitelist: s.HeaderWhitelist,
		SessionExpires:  s.SessionExpires,
		MinSE:           s.MinSE,
		InviteTimeout:   s.InviteTimeout,
		RingTimeout:     s.RingTimeout,
		RetryAfter:      s.RetryAfter,
		OverloadDelay:   overloadDelay(s.OverloadDelay),
		Timers:          opt.Timers,
		CallerIDs:       callerIDs(cfg.Users),
		Rel100:          rel100(s.PRACK),
		FlowGrace:       s.FlowGrace,
	}
}

// rel100 translates sip.prack (validated) into b2bua.Config.Rel100.
func rel100(v string) b2bua.Rel100 {
	switch v {
	case config.PRACKRequired:
		return b2bua.Rel100Required
	case config.PRACKOff:
		return b2bua.Rel100Off
	default:
		return b2bua.Rel100Supported
	}
}

// overloadDelay translates sip.overload_delay (0: off) into
// b2bua.Config.OverloadDelay (negative: off).
func overloadDelay(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}

// callerIDs maps users to the identity their calls assert
// (users[].caller_id), for those that have one.
func callerIDs(users []config.User) map[string]string {
	ids := make(map[string]string)
	for _, u := range users {
		if u.CallerID != "" {
			ids[u.Username] = u.CallerID
		}
	}
	return ids
}

// newMedia opens the media manager; rtcp (nil: off) hears the relay's
// RTCP; noState: calls are not replicated, so nobody takes a session's
// State (media.Config.NoState).
func newMedia(m config.Media, rtcp func(media.RTCPPacket), noState bool, log *slog.Logger) (*media.Manager, error) {
	pairs, err := m.Addrs()
	if err != nil {
		return nil, err
	}
	addrs := make([]media.Addr, len(pairs))
	for i, p := range pairs {
		addrs[i] = media.Addr{Bind: p.Bind, Public: p.Public}
	}
	lo, hi := m.PortRange()
	mgr, err := media.NewManager(media.Config{Addrs: addrs, PortMin: lo, PortMax: hi, Timeout: m.Timeout,
		WebRTCPort: m.WebRTCPort, HandshakeTimeout: m.HandshakeTimeout, RTCP: rtcp,
		NoTranscoding: !m.Transcoding.Enabled, MaxTranscoded: m.Transcoding.MaxCalls, NoState: noState}, log)
	if err != nil {
		// The manager binds one socket at start: the shared WebRTC port.
		return nil, asListenError(err, "media.webrtc_port", "WebRTC media", "", "")
	}
	return mgr, nil
}

// openCerts loads sip.tls (or makes the self-signed certificate) once, for
// the TLS and WSS listeners and the web phone's own server.
func (a *App) openCerts(cfg *config.Config) error {
	if a.certs != nil {
		return nil
	}
	t := cfg.SIP.TLS
	certs, err := security.NewCertStore(t.CertFile, t.KeyFile, nil, a.log.With("part", "tls"))
	if err != nil {
		if t.CertFile != "" {
			return fmt.Errorf("sip.tls.cert_file %s, key_file %s: %w", t.CertFile, t.KeyFile, err)
		}
		return fmt.Errorf("sip.tls: %w", err)
	}
	a.certs = certs
	return nil
}

// listen binds every configured listener, with one certificate store for
// the TLS and WSS ones.
func (a *App) listen(cfg *config.Config) error {
	var tlsConf *tls.Config
	for i, l := range cfg.SIP.Listeners {
		key := "sip.listeners[" + strconv.Itoa(i) + "]"
		kind, err := transport.ParseKind(l.Transport)
		if err != nil {
			return fmt.Errorf("%s.transport: %w", key, err)
		}
		if kind.Secure() && tlsConf == nil {
			if err = a.openCerts(cfg); err != nil {
				return err
			}
			tlsConf = a.certs.TLSConfig()
		}
		var tc *tls.Config
		if kind.Secure() {
			tc = tlsConf
		}
		addr, err := a.server.Listen(l.Name, kind, l.Addr, transport.ListenOptions{TLS: tc, Symmetric: l.Symmetric})
		if err != nil {
			if lerr := asListenError(err, key, "listener "+strconv.Quote(l.Name), l.Transport, l.Addr); lerr != err {
				return lerr
			}
			return fmt.Errorf("%s (listener %q, %s %s): %w", key, l.Name, l.Transport, l.Addr, err)
		}
		a.addrs[l.Name] = addr
	}
	a.bound = slices.Clone(cfg.SIP.Listeners)
	return a.listenCluster(cfg)
}

// Addr returns the bound address of the named listener.
func (a *App) Addr(name string) (netip.AddrPort, bool) {
	ap, ok := a.addrs[name]
	return ap, ok
}

func (a *App) describe() string {
	var b strings.Builder
	for name, ap := range a.addrs {
		fmt.Fprintf(&b, "%s=%s ", name, ap)
	}
	return strings.TrimSpace(b.String())
}

// Close ends every call with BYE, then stops every part. Safe to call more
// than once, and after Kill.
func (a *App) Close() error {
	var errs []error
	a.once.Do(func() {
		if a.cancel != nil {
			a.cancel()
		}
		a.wg.Wait()
		if a.cluster != nil {
			errs = append(errs, a.cluster.Close())
		}
		if a.server != nil {
			ctx, cancel := context.WithTimeout(context.Background(), DrainTimeout)
			a.closeTrunkRegs(ctx) // before the server: the de-REGISTERs use it
			errs = append(errs, a.server.Close(ctx))
			cancel()
		}
		errs = append(errs, a.closeParts()...)
	})
	return errors.Join(errs...)
}

// Kill stops the node as a crash would, for tests of what survives it
// (issue 19): the Redis client closes first, so the node leaves no clean
// trace (its heartbeat entry and its replicated calls stay in Redis until
// they expire), its calls are dropped without BYE and without record
// (b2bua Server.Abandon), then every part closes. Close after it does
// nothing.
func (a *App) Kill() {
	a.once.Do(func() {
		if a.cluster != nil {
			_ = a.cluster.Close()
		}
		if a.cancel != nil {
			a.cancel()
		}
		a.wg.Wait()
		if a.server != nil {
			a.server.Abandon()
		}
		_ = a.closeParts()
	})
}

// closeParts closes what Close and Kill close after the B2BUA.
func (a *App) closeParts() []error {
	errs := []error{a.closeOps()}
	if a.bans != nil {
		errs = append(errs, a.bans.Flush()) // bans made during a flood are written late
	}
	errs = append(errs, a.closeWebPhone())
	if a.echo != nil {
		errs = append(errs, a.echo.Close())
	}
	if a.media != nil {
		errs = append(errs, a.media.Close())
	}
	// Last: the calls the server ended above handed it their records.
	if a.cdr != nil {
		errs = append(errs, a.cdr.Close())
	}
	return errs
}
