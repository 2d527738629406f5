// Package routing holds the SBC's route table and the state of its trunks.
//
// A Table is compiled once by New from a TableSpec, which the program's
// edge translates from its configuration: this package reads no
// configuration of its own. Route picks the first route whose match holds
// for an INVITE (described by a Request that the B2BUA core extracts);
// Route.Candidates lists that route's trunks that are up, in configured
// order, for failover. Monitor keeps trunk state current by OPTIONS probes
// that the caller performs with its SIP stack, so this package knows
// nothing about SIP messages.
//
// ParseURI is the one parser of trunk URIs, for the table and for config
// validation alike, and a Trunk's RequestURI, built from the parsed URI,
// is what the core dials.
//
// A Table is immutable after New apart from trunk health and DNS caches,
// and every method is safe for concurrent use.
package routing

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/sbc-project/sbc/b2bua/routing/dnsres"
)

// Request is what routing looks at, extracted from an INVITE by the core.
type Request struct {
	Listener   string     // name of the listener it arrived on ("" if on an outbound connection)
	Src        netip.Addr // source IP
	RURIUser   string     // user part of the request-URI
	FromDomain string     // host of the From URI
}

// Route is a compiled RouteSpec. Its fields must not be modified.
type Route struct {
	Name   string
	Target string // TargetTrunks, TargetRegistered or TargetEcho
	// Trunks, for target trunks, in the configured order; empty otherwise.
	Trunks []*Trunk
	// Transfer is what a REFER on the route's calls does: TransferLocal,
	// TransferRelay or TransferRefuse (a trunk's own mode comes first).
	Transfer string
	// WebRTCCodecs are the codecs a browser side of the route's calls
	// may use (RouteSpec.WebRTCCodecs); empty: any.
	WebRTCCodecs []string

	match   matcher
	trusted []netip.Prefix // routes[].trusted_sources
}

// Trusts reports whether calls from src on this route need no digest
// authentication (routes[].trusted_sources).
func (r *Route) Trusts(src netip.Addr) bool {
	src = src.Unmap()
	for _, p := range r.trusted {
		if p.Contains(src) {
			return true
		}
	}
	return false
}

// Candidates returns the route's trunks that are up, in configured order.
// Empty means every trunk is down (the core answers 503 with Retry-After)
// or the route's target is not trunks. The slice is the caller's.
func (r *Route) Candidates() []*Trunk {
	out := make([]*Trunk, 0, len(r.Trunks))
	for _, tr := range r.Trunks {
		if tr.Up() {
			out = append(out, tr)
		}
	}
	return out
}

// Table is the compiled route table and trunk set.
type Table struct {
	log     *slog.Logger
	routes  []*Route
	trunks  []*Trunk
	byName  map[string]*Trunk
	refresh time.Duration // period of Monitor's DNS refresh
	hookMu  sync.Mutex
	hook    func(tr *Trunk, up bool) // guarded by hookMu
	running sync.Mutex               // held while Monitor runs
}

// New compiles spec: it parses every trunk URI and source CIDR, compiles
// every ruri_user regexp and checks that routes name existing listeners and
// trunks and a known target. All problems are reported together, each
// naming its trunk or route. A nil log discards logging. New does no I/O:
// DNS names are resolved by Trunk.Addr, Table.Resolve and Monitor.
func New(spec TableSpec, log *slog.Logger) (*Table, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	t := &Table{log: log, byName: make(map[string]*Trunk, len(spec.Trunks)), refresh: resolveTTL}
	var errs []error
	for i, c := range spec.Trunks {
		if err := t.addTrunk(c, spec.Resolver); err != nil {
			errs = append(errs, fmt.Errorf("trunks[%d] %q: %w", i, c.Name, err))
		}
	}
	listeners := make(map[string]bool, len(spec.Listeners))
	for _, name := range spec.Listeners {
		listeners[name] = true
	}
	for i, c := range spec.Routes {
		r, err := compileRoute(c, listeners, t.byName)
		if err != nil {
			errs = append(errs, fmt.Errorf("routes[%d] %q: %w", i, c.Name, err))
			continue
		}
		t.routes = append(t.routes, r)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("routing: %w", err)
	}
	return t, nil
}

func (t *Table) addTrunk(c TrunkSpec, loc *dnsres.Resolver) error {
	if c.Name == "" {
		return errors.New("empty name")
	}
	if _, dup := t.byName[c.Name]; dup {
		return errors.New("name used by an earlier trunk")
	}
	tr, err := newTrunk(c)
	if err != nil {
		return err
	}
	tr.locator = loc
	if tr.Register != nil {
		tr.Register.registrar.locator = loc
	}
	t.byName[c.Name] = tr
	t.trunks = append(t.trunks, tr)
	return nil
}

func compileRoute(c RouteSpec, listeners map[string]bool, trunks map[string]*Trunk) (*Route, error) {
	m, err := compileMatch(c.Match, listeners, trunks)
	if err != nil {
		return nil, err
	}
	if !ValidTransfer(c.Transfer) {
		return nil, fmt.Errorf("transfer %q: want %s", c.Transfer, TransferModes)
	}
	r := &Route{Name: c.Name, Target: c.Target, Transfer: c.Transfer, WebRTCCodecs: slices.Clone(c.WebRTCCodecs), match: m}
	if r.Transfer == "" {
		r.Transfer = TransferLocal
	}
	for i, s := range c.TrustedSources {
		p, err := parsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("trusted_sources[%d] %q: %w", i, s, err)
		}
		r.trusted = append(r.trusted, p)
	}
	switch c.Target {
	case TargetTrunks:
		if len(c.Trunks) == 0 {
			return nil, errors.New("target trunks with no trunks")
		}
		for j, name := range c.Trunks {
			tr, ok := trunks[name]
			if !ok {
				return nil, fmt.Errorf("trunks[%d] %q names no trunk", j, name)
			}
			if slices.Contains(r.Trunks, tr) {
				return nil, fmt.Errorf("trunks[%d] %q is listed twice", j, name)
			}
			r.Trunks = append(r.Trunks, tr)
		}
	case TargetRegistered, TargetEcho:
		if len(c.Trunks) > 0 {
			return nil, fmt.Errorf("trunks are set but target is %s", c.Target)
		}
	default:
		return nil, fmt.Errorf("target %q is not %s, %s or %s", c.Target, TargetTrunks, TargetRegistered, TargetEcho)
	}
	return r, nil
}

// Route returns the first route whose match holds for r; ok is false when
// none does (the core answers 404). A match holds when every field it sets
// holds: listener equals r.Listener; trunk: r.Src is one of that trunk's
// addresses (as for TrunkBySource) or r.RURIUser
// is the contact user the SBC registers at that trunk
// (RegisterSpec.ContactUser); source_cidrs: r.Src is in any of them
// (IPv4-mapped sources count as IPv4); ruri_user: the regexp matches
// r.RURIUser *unanchored*, so write ^...$ to match the whole user;
// from_domain equals r.FromDomain ignoring case. An empty match holds for
// every request.
func (t *Table) Route(r Request) (*Route, bool) {
	for _, rt := range t.routes {
		if rt.match.holds(r) {
			return rt, true
		}
	}
	return nil, false
}

// Routes returns the routes in order. The slice is the caller's.
func (t *Table) Routes() []*Route { return slices.Clone(t.routes) }

// TrunkBySource returns the first trunk, in configured order, whose address
// IP equals src: its IP literal, or any address its DNS name last resolved
// to. A DNS-named trunk matches only once its name has been resolved (by
// Trunk.Addr, Table.Resolve or Monitor). Used for match.trunk and to mark a
// request as coming from a trusted trunk.
func (t *Table) TrunkBySource(src netip.Addr) (*Trunk, bool) {
	for _, tr := range t.trunks {
		if tr.hasIP(src) {
			return tr, true
		}
	}
	return nil, false
}

// Trunk returns the trunk with the given name.
func (t *Table) Trunk(name string) (*Trunk, bool) {
	tr, ok := t.byName[name]
	return tr, ok
}

// Trunks returns every trunk in configured order. The slice is the caller's.
func (t *Table) Trunks() []*Trunk { return slices.Clone(t.trunks) }
