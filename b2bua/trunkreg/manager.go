// Package trunkreg keeps the SBC registered at the trunks whose
// configuration asks for it (routing.Registration): one client per trunk
// REGISTERs through the transaction layer, answers the registrar's digest
// challenges (MD5 and SHA-256, qop=auth), refreshes at half the granted
// time, retries failures with a bounded, jittered exponential backoff
// (Retry-After honoured), and unregisters (Expires: 0) when it stops.
//
// A Manager is driven by Apply, with the trunks of each route table
// (start, reload), and Close; Status reports every registration for the
// admin API. It is safe for concurrent use.
package trunkreg

import (
	"context"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/ghettovoice/gosip/sip"

	"github.com/sbc-project/sbc/b2bua/routing"
	"github.com/sbc-project/sbc/b2bua/transport"
	"github.com/sbc-project/sbc/b2bua/txn"
)

// Defaults of Config.
const (
	DefaultRetryMin   = 2 * time.Second
	DefaultRetryMax   = 5 * time.Minute
	DefaultUnregister = 2 * time.Second
)

// Config tunes every registration. The zero value takes the defaults.
type Config struct {
	UserAgent  string        // User-Agent of the REGISTERs; "": sbc
	RetryMin   time.Duration // first wait after a failure; 0: DefaultRetryMin
	RetryMax   time.Duration // bound on the wait; 0: DefaultRetryMax
	Unregister time.Duration // bound on the de-REGISTER at stop; 0: DefaultUnregister
}

// Requester starts client transactions: the *txn.Layer.
type Requester interface {
	Request(req sip.Request, dst transport.Target) (*txn.ClientTx, error)
}

// Deps are what the manager needs of the SIP stack.
type Deps struct {
	Tx Requester
	// Host is the host:port the SBC advertises on a transport toward dst
	// (its Contact and Via).
	Host func(kind transport.Kind, dst netip.Addr) (string, uint16, error)
	Log  *slog.Logger
	// OnChange, when set, hears each state change (metrics).
	OnChange func(Status)
}

// Manager runs the registrations.
type Manager struct {
	cfg  Config
	deps Deps

	mu     sync.Mutex
	clis   map[string]*client // by trunk name
	closed bool
	wg     sync.WaitGroup
}

// New returns a manager with no registrations.
func New(cfg Config, deps Deps) *Manager {
	if cfg.UserAgent == "" {
		cfg.UserAgent = "sbc"
	}
	if cfg.RetryMin <= 0 {
		cfg.RetryMin = DefaultRetryMin
	}
	if cfg.RetryMax < cfg.RetryMin {
		cfg.RetryMax = max(DefaultRetryMax, cfg.RetryMin)
	}
	if cfg.Unregister <= 0 {
		cfg.Unregister = DefaultUnregister
	}
	if deps.Log == nil {
		deps.Log = slog.New(slog.DiscardHandler)
	}
	return &Manager{cfg: cfg, deps: deps, clis: map[string]*client{}}
}

// Apply makes the running registrations those of trunks: a new one
// starts, a removed one unregisters and stops, a changed one (credentials,
// expiry, contact, registrar or trunk URI) is replaced, its successor
// registering once the old one has unregistered. An unchanged one keeps
// running with the new trunk.
func (m *Manager) Apply(trunks []*routing.Trunk) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return
	}
	want := map[string]*routing.Trunk{}
	for _, tr := range trunks {
		if tr.Register != nil {
			want[tr.Name] = tr
		}
	}
	for name, c := range m.clis {
		if tr, ok := want[name]; ok && sameRegistration(c.trunk(), tr) {
			c.setTrunk(tr)
			delete(want, name)
			continue
		}
		c.stop()
		delete(m.clis, name)
		if tr, ok := want[name]; ok {
			m.start(tr, c.done)
			delete(want, name)
		}
	}
	for _, tr := range want {
		m.start(tr, nil)
	}
}

// start runs a client for tr once after (if not nil) is closed.
func (m *Manager) start(tr *routing.Trunk, after <-chan struct{}) {
	c := newClient(m, tr)
	m.clis[tr.Name] = c
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		if after != nil {
			<-after
		}
		c.run()
	}()
}

// sameRegistration reports whether a and b register alike.
func sameRegistration(a, b *routing.Trunk) bool {
	return a.URI() == b.URI() && a.FromDomain == b.FromDomain && a.Register.RegisterSpec == b.Register.RegisterSpec
}

// Status lists every registration, by trunk name.
func (m *Manager) Status() []Status {
	m.mu.Lock()
	out := make([]Status, 0, len(m.clis))
	for _, c := range m.clis {
		out = append(out, c.status())
	}
	m.mu.Unlock()
	slices.SortFunc(out, func(a, b Status) int {
		switch {
		case a.Trunk < b.Trunk:
			return -1
		case a.Trunk > b.Trunk:
			return 1
		}
		return 0
	})
	return out
}

// Lookup returns the status of the trunk's registration.
func (m *Manager) Lookup(trunk string) (Status, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.clis[trunk]
	if !ok {
		return Status{}, false
	}
	return c.status(), true
}

// Close unregisters every registration (each bounded by
// Config.Unregister) and waits for them, or for ctx.
func (m *Manager) Close(ctx context.Context) {
	m.mu.Lock()
	m.closed = true
	for _, c := range m.clis {
		c.stop()
	}
	m.mu.Unlock()
	done := make(chan struct{})
	go func() { m.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		m.deps.Log.Warn("trunk registrations still stopping")
	}
}
