package app

import (
	"errors"
	"fmt"
	"log/slog"

	"github.com/sbc-project/sbc/b2bua/routing"
	"github.com/sbc-project/sbc/internal/config"
)

// newRouteTable compiles the route table of c, reading the TLS files of
// the trunks that name them (so a reload reads renewed ones).
func newRouteTable(c *config.Config, log *slog.Logger) (*routing.Table, error) {
	spec, err := routeSpec(c)
	if err != nil {
		return nil, err
	}
	return routing.New(spec, log)
}

// newRouteTable is newRouteTable with the App's DNS resolver, so trunk
// hosts are located by RFC 3263 and the cache outlives a reload.
func (a *App) newRouteTable(c *config.Config, log *slog.Logger) (*routing.Table, error) {
	spec, err := routeSpec(c)
	if err != nil {
		return nil, err
	}
	spec.Resolver = a.resolver
	return routing.New(spec, log)
}

// routeSpec translates the listeners, trunks and routes of c into what
// routing compiles. A listener without a name is named by its transport,
// as config.Load names it.
func routeSpec(c *config.Config) (routing.TableSpec, error) {
	var spec routing.TableSpec
	for _, l := range c.SIP.Listeners {
		name := l.Name
		if name == "" {
			name = l.Transport
		}
		spec.Listeners = append(spec.Listeners, name)
	}
	var errs []error
	for i, t := range c.Trunks {
		ts, err := trunkSpec(t)
		if err != nil {
			errs = append(errs, fmt.Errorf("trunks[%d] %q: %w", i, t.Name, err))
		}
		spec.Trunks = append(spec.Trunks, ts)
	}
	if c.Cluster.Enabled() {
		// Calls from other nodes ring the bindings they name here; they
		// were routed and judged by the policy where they came in.
		spec.Listeners = append(spec.Listeners, config.ClusterListener)
		spec.Routes = append(spec.Routes, routing.RouteSpec{Name: config.ClusterListener,
			Match:  routing.MatchSpec{Listener: config.ClusterListener},
			Target: config.TargetRegistered, TrustedSources: []string{"0.0.0.0/0", "::/0"}})
	}
	for _, r := range c.Routes {
		spec.Routes = append(spec.Routes, routing.RouteSpec{
			Name: r.Name,
			Match: routing.MatchSpec{Listener: r.Match.Listener, Trunk: r.Match.Trunk, SourceCIDRs: r.Match.SourceCIDRs,
				RURIUser: r.Match.RURIUser, FromDomain: r.Match.FromDomain},
			Target:         r.Target,
			Trunks:         r.Trunks,
			TrustedSources: r.TrustedSources,
			Transfer:       r.Transfer,
			WebRTCCodecs:   config.LowerCodecs(r.WebRTCCodecs),
		})
	}
	if err := errors.Join(errs...); err != nil {
		return spec, fmt.Errorf("routing: %w", err)
	}
	return spec, nil
}

// trunkSpec translates one trunk, reading its TLS files when it names any.
func trunkSpec(t config.Trunk) (routing.TrunkSpec, error) {
	spec := routing.TrunkSpec{
		Name:        t.Name,
		URI:         t.URI,
		Username:    t.Username,
		Password:    t.Password,
		FromDomain:  t.FromDomain,
		PassHeaders: t.PassHeaders,
		Trusted:     t.Trusted,
		Identity: routing.IdentitySpec{Assert: t.Identity.Assert, From: t.Identity.From, Domain: t.Identity.Domain,
			TrustDomain: t.Identity.TrustDomain},
		Media:            t.Media,
		DTMF:             t.DTMF,
		Transfer:         t.Transfer,
		OptionsInterval:  t.OptionsInterval,
		OptionsTimeout:   t.OptionsTimeout,
		FailureThreshold: t.FailureThreshold,
		Register:         registerSpec(t.Register),
		Codecs:           config.LowerCodecs(t.Codecs),
	}
	if t.TLS.IsZero() {
		return spec, nil
	}
	conf, err := t.TLS.ClientConfig()
	spec.TLS = conf
	return spec, err
}
