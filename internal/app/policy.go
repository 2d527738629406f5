package app

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"time"

	"github.com/sbc-project/sbc/internal/admin"
	"github.com/sbc-project/sbc/internal/config"
	"github.com/sbc-project/sbc/policy"
	"github.com/sbc-project/sbc/security"
)

// setupPolicy opens the ban store and builds the policy chain the B2BUA
// puts in front of every request. It runs after setupOps (the chain counts
// into its metrics) and before the B2BUA is built. The chain is built once: a reload reports the
// policy keys it changes as needing a restart (see ops.go), because
// rebuilding the chain would forget the admission counts of the calls in
// progress.
func (a *App) setupPolicy(cfg *config.Config) error {
	log := a.log.With("part", "policy")
	bans, err := security.OpenBans(cfg.Policy.Bans.File, log)
	if err != nil {
		return fmt.Errorf("policy.bans.file: %w", err)
	}
	a.bans = bans
	chain, err := policy.New(policySpec(cfg.Policy), policy.Deps{
		Log:    log,
		Bans:   bans,
		Reject: a.metrics.PolicyRejected,
		// Trunks have per-trunk limits under admission; one busy PBX must
		// not be rate limited or banned as a single noisy source.
		Exempt: func(ip netip.Addr) bool {
			_, ok := a.Routes().TrunkBySource(ip)
			return ok
		},
		IsSelf: a.isSelf,
		// A registrar sending a call back to a contact the SBC registered
		// for a browser: a spiral, not a loop.
		Spiral: func(user string) bool {
			if a.bindings == nil {
				return false
			}
			_, ok := a.bindings.ByToken(user)
			return ok
		},
	})
	if err != nil {
		return fmt.Errorf("policy: %w", err)
	}
	a.policy = chain
	return nil
}

// policySpec is the chain the policy section asks for. The stage settings
// are policy types already; bans.file names the store setupPolicy opens
// and websocket is the transport's, so neither is part of the spec.
func policySpec(p config.Policy) policy.Spec {
	return policy.Spec{
		Stages:      p.Chain,
		LogInterval: p.LogInterval,
		Blacklist:   p.Blacklist,
		RateLimit:   p.RateLimit,
		Bans:        p.Bans.BanSpec,
		Admission:   p.Admission,
		DialRules:   p.DialRules,
	}
}

// noteSelf records the Via sent-by values this SBC writes (host:port of
// each bound listener, and public_addr:port), for the sanity stage's loop
// detection; the chain reads them through isSelf.
func (a *App) noteSelf(cfg *config.Config) {
	set := make(map[string]bool)
	for _, ap := range a.addrs {
		port := strconv.Itoa(int(ap.Port()))
		if !ap.Addr().IsUnspecified() {
			host := ap.Addr().String()
			if ap.Addr().Is6() {
				host = "[" + host + "]"
			}
			set[host+":"+port] = true
		}
		for _, h := range cfg.SIP.PublicHosts() {
			set[net.JoinHostPort(h, port)] = true
		}
	}
	a.self.Store(&set)
}

func (a *App) isSelf(sentBy string) bool {
	set := a.self.Load()
	return set != nil && (*set)[sentBy]
}

// adminBans serves /api/v1/bans from the ban store.
type adminBans struct{ b *security.Bans }

func (ab adminBans) List() []admin.Ban {
	entries := ab.b.List()
	out := make([]admin.Ban, 0, len(entries))
	for _, e := range entries {
		out = append(out, admin.Ban{Addr: e.Addr, Reason: e.Reason, Since: e.Since, Until: e.Until,
			Scope: e.Scope, Evidence: e.Evidence})
	}
	return out
}

func (ab adminBans) Add(addr, reason string, d time.Duration) error { return ab.b.Add(addr, reason, d) }
func (ab adminBans) Remove(addr string) bool                        { return ab.b.Remove(addr) }
