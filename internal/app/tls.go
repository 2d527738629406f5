package app

import (
	"context"

	"github.com/sbc-project/sbc/internal/config"
)

// watchCerts reloads the TLS certificate when its files change, every
// sip.tls.reload_interval until ctx is done (Close waits for it). Nothing
// runs without a TLS or WSS listener, for the generated self-signed
// certificate, or with an interval of 0. The interval is read at start: a
// reload that changes it needs a restart.
func (a *App) watchCerts(ctx context.Context, cfg *config.Config) {
	if a.certs == nil || cfg.SIP.TLS.CertFile == "" || cfg.SIP.TLS.ReloadInterval <= 0 {
		return
	}
	a.wg.Go(func() { a.certs.Watch(ctx, cfg.SIP.TLS.ReloadInterval) })
}
