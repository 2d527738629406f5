package app

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/sbc-project/sbc/b2bua"
	"github.com/sbc-project/sbc/internal/admin"
	"github.com/sbc-project/sbc/internal/config"
	"github.com/sbc-project/sbc/internal/console"
	"github.com/sbc-project/sbc/media"
)

// adminOptions wires the admin server to the App.
func (a *App) adminOptions(cfg *config.Config) admin.Options {
	opt := admin.Options{
		Token:     cfg.Admin.Token,
		Hosts:     cfg.Admin.Hosts,
		Protected: a.protectedFromBans,
		Log:       a.log.With("part", "admin"),
		Metrics:   a.metrics.Handler(),
		Ready:     a.Ready,
		Calls:     adminCalls{a.server},
		Trunks:    a.trunks,
		Config:    func() any { return a.Config().Redacted() },
		Reload:    a.Reload,
		Drain:     a.Drain,
		Migrate:   a.Migrate,
		Traces:    a.traces,
		CDRs:      a.recentCDRs,
		Console:   console.Handler(),
		Timeline:  a.timeline,
	}
	if a.bans != nil {
		opt.Bans = adminBans{a.bans}
	}
	if a.bindings != nil {
		opt.Registrations = adminRegistrations{a}
	}
	if a.cluster != nil {
		opt.Cluster = a.clusterStatus
		opt.ClusterCalls = a.clusterCalls
	}
	return opt
}

// adminCalls serves /api/v1/calls from the B2BUA.
type adminCalls struct{ s *b2bua.Server }

func (c adminCalls) Hangup(id string) bool { return c.s.HangupCall(id) }

func (c adminCalls) Calls() []admin.Call {
	infos := c.s.Calls()
	out := make([]admin.Call, 0, len(infos))
	now := time.Now()
	for _, in := range infos {
		out = append(out, adminCall(in, now))
	}
	return out
}

func adminCall(in b2bua.CallInfo, now time.Time) admin.Call {
	r := in.Record
	c := admin.Call{ID: r.ID, State: in.State, From: r.FromURI, To: r.ToURI, SrcAddr: r.SrcAddr, Route: in.Route,
		Trunk: r.Trunk, Start: r.Start, Ring: timePtr(r.Ring), Answer: timePtr(r.Answer), Traced: in.Traced,
		DurationS: seconds(now.Sub(r.Start))}
	if !r.Answer.IsZero() {
		c.BillsecS = seconds(now.Sub(r.Answer))
	}
	for i, l := range in.Legs {
		leg := admin.Leg{Side: l.Side, CallID: l.CallID, Transport: l.Transport, Confirmed: l.Confirmed}
		if l.Peer.IsValid() {
			leg.Peer = l.Peer.String()
		}
		if i < len(in.Codecs) {
			leg.Codec = in.Codecs[i]
		}
		c.Legs = append(c.Legs, leg)
	}
	c.Media = admin.Media{AtoB: adminFlow(in.Media.AtoB), BtoA: adminFlow(in.Media.BtoA)}
	return c
}

func adminFlow(f media.Flow) admin.Flow {
	return admin.Flow{Packets: f.Packets, Bytes: f.Bytes, Lost: f.Lost, JitterMs: f.JitterMs, MOS: f.MOS}
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// seconds rounds a duration to milliseconds, as the CDR does.
func seconds(d time.Duration) float64 {
	return float64(d.Round(time.Millisecond)) / float64(time.Second)
}

// adminRegistrations serves /api/v1/registrations from the registrar.
type adminRegistrations struct{ a *App }

func (r adminRegistrations) List() []admin.Registration {
	bs := r.a.bindings.List()
	out := make([]admin.Registration, 0, len(bs))
	for _, b := range bs {
		t := b.Flow.Target
		reg := admin.Registration{AOR: "sip:" + b.AOR, Contact: b.Contact, Transport: strings.ToLower(t.Kind.String()),
			UserAgent: b.UserAgent, Expires: b.Expires.UTC()}
		if t.Addr.IsValid() {
			reg.Source = t.Addr.String()
		}
		out = append(out, reg)
	}
	return out
}

// trunks serves /api/v1/trunks from the route table in force.
func (a *App) trunks() []admin.Trunk {
	var out []admin.Trunk
	for _, tr := range a.Routes().Trunks() {
		st := tr.State()
		out = append(out, admin.Trunk{Name: tr.Name, URI: tr.URI(), Up: st.Up, LastProbe: timePtr(st.LastProbe),
			LastError: st.LastError, ConsecutiveFailures: st.ConsecutiveFailures,
			Registration: a.trunkRegistration(tr.Name), History: a.trunkHistory(tr.Name)})
	}
	return out
}

func (a *App) trunkHistory(name string) []admin.TrunkChange {
	var out []admin.TrunkChange
	for _, c := range a.ops.trunkLog.History(name) {
		out = append(out, admin.TrunkChange{At: c.At, Up: c.Up})
	}
	return out
}

// recentCDRs serves /api/v1/cdrs from the records of the calls this node
// ended since it started (console.Recent).
func (a *App) recentCDRs(q admin.CDRQuery) any {
	return a.ops.recent.Search(console.Query{Number: q.Number, CallID: q.CallID, Cause: q.Cause,
		Since: q.Since, Until: q.Until, Limit: q.Limit})
}

// Ready reports whether the SBC should get traffic (/readyz): its
// listeners are bound, at least one trunk is up when there are trunks,
// the CDR spool takes records, and it is not draining. A failing CDR
// writer alone does not make the SBC unready: its records wait in the
// spool, and every node sharing the writer would go unready together.
func (a *App) Ready() admin.Readiness {
	checks := []admin.Check{a.checkListeners(), a.checkTrunks(), a.checkCDR(), a.checkDraining()}
	if a.cluster != nil {
		checks = append(checks, a.checkCluster())
	}
	rd := admin.Readiness{Ready: true, Checks: checks}
	for _, c := range checks {
		rd.Ready = rd.Ready && c.OK
	}
	return rd
}

// checkListeners compares the listeners bound with the config they were
// bound from (a reload that adds one needs a restart to bind it, and must
// not make the SBC look unready meanwhile).
func (a *App) checkListeners() admin.Check {
	ok := len(a.bound) > 0
	for _, l := range a.bound {
		_, up := a.addrs[l.Name]
		ok = ok && up
	}
	return admin.Check{Name: "listeners", OK: ok, Detail: a.describe()}
}

func (a *App) checkTrunks() admin.Check {
	trunks := a.Routes().Trunks()
	if len(trunks) == 0 {
		return admin.Check{Name: "trunks", OK: true, Detail: "no trunks configured"}
	}
	var down []string
	for _, tr := range trunks {
		if !tr.Up() {
			down = append(down, tr.Name)
		}
	}
	c := admin.Check{Name: "trunks", OK: len(down) < len(trunks),
		Detail: fmt.Sprintf("%d of %d up", len(trunks)-len(down), len(trunks))}
	if len(down) > 0 {
		c.Detail += "; down: " + strings.Join(down, ", ")
	}
	return c
}

func (a *App) checkCDR() admin.Check {
	if a.cdr == nil {
		return admin.Check{Name: "cdr", OK: true, Detail: "cdr off"}
	}
	st := a.cdr.Stats()
	c := admin.Check{Name: "cdr", OK: !st.SpoolFailing, Detail: "spool writable"}
	if st.SpoolFailing {
		c.Detail = "spool not writable; " + strconv.Itoa(st.Backlog) + " records held in memory"
	}
	for _, w := range st.Writers {
		if w.Failing {
			c.Detail += "; writer " + w.Name + " failing (" + strconv.FormatUint(w.Pending, 10) + " queued): " + w.LastError
		}
		if w.Quarantined > 0 {
			c.Detail += "; writer " + w.Name + " quarantined " + strconv.FormatUint(w.Quarantined, 10) +
				" records in " + w.QuarantineFile + " (last " + w.LastQuarantined + ")"
		}
	}
	return c
}

func (a *App) checkDraining() admin.Check {
	if a.server.Draining() {
		return admin.Check{Name: "draining", OK: false, Detail: "draining: new calls are refused"}
	}
	return admin.Check{Name: "draining", OK: true}
}
