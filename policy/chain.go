package policy

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"time"

	"github.com/sbc-project/sbc/security"
)

// Deps is what the chain needs from the rest of the SBC.
type Deps struct {
	// Log receives refusals (rate-limited per source and stage) and bans.
	// Nil discards.
	Log *slog.Logger
	// Bans is the ban store. Nil: a store in memory only.
	Bans *security.Bans
	// Reject counts a refusal for metrics, by stage and cause. May be nil.
	Reject func(stage, cause string)
	// Now is the clock. Nil: time.Now.
	Now func() time.Time
	// Exempt reports trunk addresses: never rate limited per source and
	// never banned dynamically. May be nil.
	Exempt func(netip.Addr) bool
	// IsSelf reports whether a Via sent-by (host[:port]) is one of this
	// SBC's listeners or its public address, for loop detection. May be
	// nil (no loop check).
	IsSelf func(sentBy string) bool
	// Spiral reports whether a request-URI user names a contact this SBC
	// registered on a browser's behalf (a relayed REGISTER's binding
	// token): a request to it that carries one of the SBC's own Vias is a
	// spiral, not a loop (RFC 3261 16.3 step 4). May be nil (none is).
	Spiral func(ruriUser string) bool
}

// Chain is the policy chain, built once from a Spec by New. Its methods
// are safe for concurrent use.
type Chain struct {
	early, late []named
	admission   *Admission
	rates       *rateLimit // the rate-limit stage, for a cluster to share
	bans        *security.Bans
	f2b         *fail2ban
	logs        *logLimiter
	reject      func(stage, cause string)
	checkBans   bool // the blacklist stage runs (it is the one that honours bans)
}

type named struct {
	name  string
	stage Stage
}

// New builds the stages spec.Stages lists, in StageOrder whatever order
// they are listed in. It fails on a spec the config validation refuses
// (unknown stages, bad CIDRs, patterns or dial rules), with errors that
// name the config key (policy.chain[1], policy.blacklist.cidrs[0] ...).
func New(spec Spec, d Deps) (*Chain, error) {
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Bans == nil {
		d.Bans, _ = security.OpenBans("", d.Log) // in memory: cannot fail
	}
	if d.Reject == nil {
		d.Reject = func(string, string) {}
	}
	exempt, err := exemptFunc(d.Exempt, spec.RateLimit.ExemptCIDRs)
	if err != nil {
		return nil, fmt.Errorf("policy.rate_limit.exempt_cidrs: %w", err)
	}
	banExempt, err := exemptFunc(d.Exempt, spec.Bans.ExemptCIDRs)
	if err != nil {
		return nil, fmt.Errorf("policy.bans.exempt_cidrs: %w", err)
	}
	c := &Chain{
		bans:   d.Bans,
		reject: d.Reject,
		logs:   newLogLimiter(d.Log, spec.LogInterval, d.Now),
		f2b:    newFail2ban(spec.Bans, spec.RateLimit.MaxSources, d.Bans, d.Log, d.Now, banExempt),
	}
	for i, name := range spec.Stages {
		if !slices.Contains(StageOrder, name) {
			return nil, fmt.Errorf("policy.chain[%d]: unknown stage %q", i, name)
		}
	}
	for _, name := range StageOrder {
		if !slices.Contains(spec.Stages, name) {
			continue
		}
		s, err := c.build(name, spec, d, exempt)
		if err != nil {
			return nil, err
		}
		c.checkBans = c.checkBans || name == StageBlacklist
		switch name {
		case StageBlacklist, StageRateLimit, StageSanity:
			c.early = append(c.early, named{name, s})
		default:
			c.late = append(c.late, named{name, s})
		}
	}
	return c, nil
}

// build makes the stage called name.
func (c *Chain) build(name string, spec Spec, d Deps, exempt func(netip.Addr) bool) (Stage, error) {
	switch name {
	case StageBlacklist:
		return newBlacklist(spec.Blacklist, d.Bans, func(src netip.Addr, transport, reason string) {
			c.f2b.hit(src, transport, eventBlacklisted, reason)
		})
	case StageRateLimit:
		start := d.Now()
		clock := func() int64 { return int64(d.Now().Sub(start)) } // monotonic when Now is
		c.rates = newRateLimit(spec.RateLimit, exempt, func(src netip.Addr, transport string) {
			c.f2b.hit(src, transport, eventRateLimited, "")
		}, clock)
		return c.rates, nil
	case StageSanity:
		return &sanity{isSelf: d.IsSelf, spiral: d.Spiral}, nil
	case StageAuth:
		return NewAuth(spec.DialRules.DefaultGroup, func(src netip.Addr, transport string) { c.Report(src, transport, EventAuthFailure) }), nil
	case StageAdmission:
		c.admission = NewAdmission(spec.Admission)
		return c.admission, nil
	case StageDialRules:
		dr, err := NewDialRules(spec.DialRules)
		if err != nil {
			return nil, fmt.Errorf("policy.dial_rules: %w", err)
		}
		return dr, nil
	}
	return nil, fmt.Errorf("policy.chain: unknown stage %q", name)
}

// exemptFunc combines f (may be nil) with a list of IPs and prefixes.
func exemptFunc(f func(netip.Addr) bool, cidrs []string) (func(netip.Addr) bool, error) {
	prefixes := make([]netip.Prefix, 0, len(cidrs))
	for i, s := range cidrs {
		p, err := security.ParseBanAddr(s)
		if err != nil {
			return nil, fmt.Errorf("[%d]: %w", i, err)
		}
		prefixes = append(prefixes, p)
	}
	return func(ip netip.Addr) bool {
		ip = ip.Unmap()
		for _, p := range prefixes {
			if p.Contains(ip) {
				return true
			}
		}
		return f != nil && f(ip)
	}, nil
}

// Early runs blacklist, rate_limit and sanity (those configured) on any
// request, before a transaction exists.
func (c *Chain) Early(ctx context.Context, r *Request) Decision {
	return c.run(ctx, c.early, r)
}

// Late runs auth, admission and dial_rules (those configured) on a new
// INVITE once it is routed. When a stage after admission refuses the call,
// what admission counted is given back at once (r.Admitted is called and
// cleared); on Continue the caller owns r.Admitted.
func (c *Chain) Late(ctx context.Context, r *Request) Decision {
	d := c.run(ctx, c.late, r)
	if d.Action != Continue && r.Admitted != nil {
		r.Admitted()
		r.Admitted = nil
	}
	return d
}

// run runs stages in order until one does not continue, and labels,
// counts and logs that decision.
func (c *Chain) run(ctx context.Context, stages []named, r *Request) Decision {
	for _, s := range stages {
		d := s.stage.Check(ctx, r)
		if d.Action == Continue {
			continue
		}
		if d.Stage == "" {
			d.Stage = s.name
		}
		if d.Cause == "" {
			d.Cause = "refused"
		}
		if d.Action == Answer && r.Method == "ACK" {
			// Nothing answers an ACK.
			d = Decision{Action: Drop, Stage: d.Stage, Cause: d.Cause}
		}
		c.reject(d.Stage, d.Cause)
		c.logs.refused(r, d)
		return d
	}
	return Pass
}

// Banned reports whether packets from src that came over transport (udp,
// tcp, tls, ws or wss, as in Request.Transport) are to be ignored before
// they are even parsed: the blacklist stage runs and src is banned on that
// transport (a ban on evidence from UDP covers UDP only; see
// security.Scope). Such a packet is counted as a blacklist drop but not
// logged: a banned flood costs one or two map lookups per packet.
func (c *Chain) Banned(src netip.Addr, transport string) bool {
	if !c.checkBans {
		return false
	}
	if _, ok := c.bans.Banned(src.Unmap(), datagram(transport)); !ok {
		return false
	}
	c.reject(StageBlacklist, causeBanned)
	return true
}

// Report counts what src did over transport toward a dynamic ban: the
// b2bua calls it when it refuses credentials (EventAuthFailure) or
// answers 404 (EventNotFound).
func (c *Chain) Report(src netip.Addr, transport string, ev Event) {
	if ev == EventAuthFailure || ev == EventNotFound {
		c.f2b.hit(src, transport, ev, "")
	}
}

// MaxDuration is the longest an answered call may last (admission); 0
// when admission is not configured or sets no bound.
func (c *Chain) MaxDuration() time.Duration {
	if c.admission == nil {
		return 0
	}
	return c.admission.MaxDuration()
}

// Bans returns the ban store the chain consults and adds to.
func (c *Chain) Bans() *security.Bans { return c.bans }

// Admission returns the admission stage, for a cluster to share its
// counts; nil when the chain has none.
func (c *Chain) Admission() *Admission { return c.admission }
