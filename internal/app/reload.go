package app

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/sbc-project/sbc/internal/admin"
	"github.com/sbc-project/sbc/internal/config"
	"github.com/sbc-project/sbc/internal/logging"
)

// errNoSource means the App was started without a way to load its
// configuration again (Options.Load).
var errNoSource = errors.New("reload: no configuration source (the SBC was started without Options.Load)")

// applied are the config keys a reload puts in force itself, by key
// prefix: the route table and trunks, the log level and traces (and the
// certificate, re-read from the same files). Parts add the sections they
// apply with OnReload; any other changed key needs a restart.
var applied = []string{"routes", "trunks", "log.level", "log.trace"}

// reloadable reports whether a reload applies key; under reloadMu.
func (a *App) reloadable(key string) bool {
	if changed([]string{key}, applied...) {
		return true
	}
	for _, h := range a.ops.onReload {
		if changed([]string{key}, h.keys...) {
			return true
		}
	}
	return false
}

// Reload loads and validates the configuration again (SIGHUP, POST
// /api/v1/reload). An invalid one is refused: every problem is logged,
// the error lists them one per line, and the running configuration stays.
// A valid one is put in force without touching calls in progress or
// registrations: routes and trunks (a new table; its trunks start up and
// are probed at once; calls in progress keep the trunk they have; a new
// table is also built, with their files read again, whenever a trunk names
// TLS files), the TLS certificate (re-read from the same files), the log
// level and traces, and
// whatever OnReload hooks apply. Keys that only a restart applies
// (listeners, media ports, timers...) are reported and logged.
func (a *App) Reload() (admin.ReloadResult, error) {
	a.ops.reloadMu.Lock()
	defer a.ops.reloadMu.Unlock()
	if a.ops.load == nil {
		a.metrics.Reloaded(false)
		return admin.ReloadResult{}, errNoSource
	}
	next, err := a.ops.load()
	if err == nil {
		err = a.checkReload(next)
	}
	if err != nil {
		a.metrics.Reloaded(false)
		for _, line := range strings.Split(err.Error(), "\n") {
			a.log.Error("reload refused; the running configuration stays", "problem", line)
		}
		return admin.ReloadResult{}, err
	}
	old := a.Config()
	res := admin.ReloadResult{Applied: []string{}, RestartRequired: []string{}}
	for _, key := range config.Diff(old, next) {
		if a.reloadable(key) {
			res.Applied = append(res.Applied, key)
		} else {
			res.RestartRequired = append(res.RestartRequired, key)
		}
	}
	if err := a.applyReload(old, next, &res); err != nil {
		a.metrics.Reloaded(false)
		a.log.Error("reload refused; the running configuration stays", "problem", err.Error())
		return admin.ReloadResult{}, err
	}
	a.ops.cfg.Store(next)
	for _, h := range a.ops.onReload {
		h.f(old, next)
	}
	a.metrics.Reloaded(true)
	a.log.Info("configuration reloaded", "applied", res.Applied)
	if len(res.RestartRequired) > 0 {
		a.log.Warn("changed keys need a restart to apply", "keys", res.RestartRequired)
	}
	return res, nil
}

// checkReload compiles what a reload would put in force, so that nothing
// is swapped when any part fails.
func (a *App) checkReload(next *config.Config) error {
	if _, err := newRouteTable(next, nil); err != nil {
		return fmt.Errorf("routes: %w", err)
	}
	if _, err := logging.ParseLevel(next.Log.Level); err != nil {
		return fmt.Errorf("log.level: %w", err)
	}
	return nil
}

// applyReload swaps in the parts of next that differ from old.
func (a *App) applyReload(old, next *config.Config, res *admin.ReloadResult) error {
	if a.certs != nil && next.SIP.TLS == old.SIP.TLS && next.SIP.TLS.CertFile != "" {
		// Certificates are renewed in place: re-read the same files.
		if err := a.certs.Reload(); err != nil {
			return fmt.Errorf("sip.tls.cert_file: %w", err)
		}
		res.Applied = append(res.Applied, "sip.tls (certificate re-read)")
	}
	reread := trunkTLSFiles(next)
	if changed(res.Applied, "routes", "trunks") || reread {
		if !changed(res.Applied, "routes", "trunks") {
			// Renewed client certificates and CA bundles are read again.
			res.Applied = append(res.Applied, "trunks[].tls (files re-read)")
		}
		table, err := a.newRouteTable(next, a.log.With("part", "routing"))
		if err != nil {
			return fmt.Errorf("routes: %w", err)
		}
		a.server.SetRoutes(table)
		a.startMonitor(a.ops.ctx, table)
		if a.trunkRegs != nil {
			a.trunkRegs.Apply(table.Trunks())
		}
	}
	if a.ops.level != nil {
		if lvl, err := logging.ParseLevel(next.Log.Level); err == nil {
			a.ops.level.Set(lvl)
		}
	} else if changed(res.Applied, "log.level") {
		res.RestartRequired = append(res.RestartRequired, "log.level")
		res.Applied = slices.DeleteFunc(res.Applied, func(k string) bool { return k == "log.level" })
	}
	a.traces.Set(next.Log.Trace)
	return nil
}

// trunkTLSFiles reports whether any trunk of c names TLS files (a CA
// bundle or a client certificate), which a reload reads again.
func trunkTLSFiles(c *config.Config) bool {
	for _, t := range c.Trunks {
		if !t.TLS.IsZero() {
			return true
		}
	}
	return false
}

// changed reports whether any key of keys starts with one of prefixes.
func changed(keys []string, prefixes ...string) bool {
	for _, k := range keys {
		for _, p := range prefixes {
			if k == p || strings.HasPrefix(k, p+".") {
				return true
			}
		}
	}
	return false
}
