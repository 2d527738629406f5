package app

import (
	"context"
	"fmt"

	"github.com/sbc-project/sbc/b2bua/routing"
	"github.com/sbc-project/sbc/b2bua/routing/dnsres"
	"github.com/sbc-project/sbc/b2bua/trunkreg"
	"github.com/sbc-project/sbc/internal/admin"
	"github.com/sbc-project/sbc/internal/config"
)

// newResolver builds the RFC 3263 resolver of trunk hosts from dns.
func newResolver(d config.DNS) (*dnsres.Resolver, error) {
	r, err := dnsres.New(dnsres.Config{Servers: d.Servers, MinTTL: d.MinTTL, MaxTTL: d.MaxTTL, Timeout: d.Timeout})
	if err != nil {
		return nil, fmt.Errorf("dns: %w", err)
	}
	return r, nil
}

// registerSpec translates trunks[].register; nil when it is empty.
func registerSpec(r config.TrunkRegister) *routing.RegisterSpec {
	if r.IsZero() {
		return nil
	}
	spec := &routing.RegisterSpec{Username: r.Username, Password: r.Password, Realm: r.Realm,
		Expires: r.Expires, ContactUser: r.ContactUser, Registrar: r.Registrar, AOR: r.AOR}
	if spec.Expires == 0 {
		spec.Expires = config.DefaultRegisterExpires
	}
	if spec.ContactUser == "" {
		spec.ContactUser = r.Username
	}
	return spec
}

// startTrunkRegs starts the registrations of table's trunks, their state
// fed to the metrics.
func (a *App) startTrunkRegs(table *routing.Table) {
	a.trunkRegs = a.server.TrunkRegistrations(trunkreg.Config{}, func(st trunkreg.Status) {
		a.metrics.TrunkRegistration(st.Trunk, string(st.State))
	})
	a.trunkRegs.Apply(table.Trunks())
}

// closeTrunkRegs unregisters every trunk, bounded by ctx.
func (a *App) closeTrunkRegs(ctx context.Context) {
	if a.trunkRegs != nil {
		a.trunkRegs.Close(ctx)
	}
}

// trunkRegistration is the admin view of a trunk's registration; nil
// when the trunk has none.
func (a *App) trunkRegistration(name string) *admin.TrunkRegistration {
	if a.trunkRegs == nil {
		return nil
	}
	st, ok := a.trunkRegs.Lookup(name)
	if !ok {
		return nil
	}
	return &admin.TrunkRegistration{State: string(st.State), Registrar: st.Registrar, Contact: st.Contact,
		Expires: timePtr(st.Expires), LastError: st.LastError, Failures: st.Failures, Since: timePtr(st.Since),
		NextTry: timePtr(st.NextTry)}
}
