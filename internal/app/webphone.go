package app

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"regexp"
	"strings"
	"time"

	"github.com/sbc-project/sbc/internal/config"
	"github.com/sbc-project/sbc/internal/webphone"
)

// webPhone is the web phone's own HTTPS server, when webphone.addr is set.
// The zero value is "not running".
type webPhone struct {
	srv  *http.Server
	addr net.Addr
	done chan struct{} // closed when Serve returned
}

// setupWebPhone serves the browser phone: on every ws and wss listener
// (webphone.addr empty) or on its own HTTPS server. It runs after listen,
// so the certificate store exists when a wss or tls listener needed it.
func (a *App) setupWebPhone(cfg *config.Config) error {
	w := cfg.WebPhone
	if !w.Enabled {
		return nil
	}
	domain := ""
	if hosts := cfg.SIP.PublicHosts(); len(hosts) > 0 {
		domain = hosts[0]
		if ip, err := netip.ParseAddr(domain); err == nil && ip.Is6() {
			domain = "[" + domain + "]" // the host of a SIP URI
		}
	}
	h := webphone.Handler(webphone.Options{Domain: domain, Echo: echoUser(cfg.Routes)})
	log := a.log.With("part", "webphone")
	if w.Addr == "" {
		a.server.Transport().SetHTTPHandler(h)
		log.Info("web phone served on the ws and wss listeners", "urls", a.webPhoneURLs(cfg))
		return nil
	}
	if err := a.openCerts(cfg); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", w.Addr)
	if err != nil {
		if lerr := asListenError(err, "webphone.addr", "web phone", "tcp", w.Addr); lerr != err {
			return lerr
		}
		return fmt.Errorf("webphone.addr %s: %w", w.Addr, err)
	}
	tc := a.certs.TLSConfig()
	tc.NextProtos = []string{"http/1.1"}
	a.web = webPhone{
		srv: &http.Server{
			Handler:           h,
			ReadHeaderTimeout: cfg.SIP.HandshakeTimeout,
			IdleTimeout:       time.Minute,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
		},
		addr: ln.Addr(),
		done: make(chan struct{}),
	}
	go func(s webPhone) {
		defer close(s.done)
		if err := s.srv.Serve(tls.NewListener(ln, tc)); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("web phone server stopped", "err", err)
		}
	}(a.web)
	log.Info("web phone served", "url", "https://"+ln.Addr().String()+"/")
	return nil
}

// WebPhoneAddr is the bound address of the web phone's own HTTPS server,
// or nil when it is served on the WebSocket listeners or off.
func (a *App) WebPhoneAddr() net.Addr { return a.web.addr }

// closeWebPhone stops the web phone's own server, if any. Safe to call
// more than once.
func (a *App) closeWebPhone() error {
	if a.web.srv == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := a.web.srv.Shutdown(ctx)
	<-a.web.done
	a.web.srv = nil
	if err != nil {
		return fmt.Errorf("web phone server: %w", err)
	}
	return nil
}

// webPhoneURLs lists where the page is, for the log.
func (a *App) webPhoneURLs(cfg *config.Config) []string {
	var urls []string
	for _, l := range cfg.SIP.Listeners {
		ap, ok := a.addrs[l.Name]
		switch {
		case !ok:
		case l.Transport == "wss":
			urls = append(urls, "https://"+ap.String()+"/")
		case l.Transport == "ws":
			urls = append(urls, "http://"+ap.String()+"/")
		}
	}
	return urls
}

// echoUser is the request-URI user of the test call: the literal user a
// route to the echo destination matches (ruri_user "^echo$"), else
// webphone.DefaultEchoUser.
func echoUser(routes []config.Route) string {
	for _, r := range routes {
		if r.Target != config.TargetEcho {
			continue
		}
		u := strings.TrimSuffix(strings.TrimPrefix(r.Match.RURIUser, "^"), "$")
		if u != "" && regexp.QuoteMeta(u) == u {
			return u
		}
	}
	return webphone.DefaultEchoUser
}
