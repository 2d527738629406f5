// Package console is the operator console: a page served on the admin
// listener under /console/ that shows the live calls, a call's SIP ladder
// of both legs with its media milestones and quality, the registrations,
// the trunks with their up/down history, the bans and the recent CDRs. It
// is plain HTML, CSS and JavaScript embedded in the binary: no CDN, no
// build step.
//
// The assets hold no secret and are served without the token; the page
// asks the operator for the admin token, keeps it in memory only (a reload
// asks again), and sends it as "Authorization: Bearer" with every API
// request, which answers 401 without it. A strict Content-Security-Policy
// lets the page load only its own files and talk only to its own origin,
// so the admin server's Host and Origin checks (internal/admin/guard.go)
// see a same-origin page.
//
// The package also keeps what the API shows beyond the SBC's parts: the
// recent call records of this node (Recent) and the trunks' state changes
// (TrunkLog), both bounded.
package console

import (
	"embed"
	"io/fs"
	"net/http"
	"strings"
)

//go:embed assets
var assets embed.FS

// Prefix is the path the console is served under.
const Prefix = "/console/"

// CSP is the Content-Security-Policy of every console file: scripts,
// styles and images from the console itself only (no inline script or
// style), requests to its own origin only, no frames, no forms posting
// elsewhere.
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
	"base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// Handler serves the console's files for paths under Prefix; Prefix
// itself serves the page. A path outside the assets is 404. Safe for
// concurrent use.
func Handler() http.Handler {
	sub, err := fs.Sub(assets, "assets")
	if err != nil {
		panic("console: embedded assets: " + err.Error()) // the embed pattern guarantees the directory
	}
	files := http.FileServerFS(sub)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", CSP)
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		name, ok := strings.CutPrefix(r.URL.Path, Prefix)
		if !ok {
			http.NotFound(w, r)
			return
		}
		if name == "" {
			name = "index.html"
		}
		if _, err := fs.Stat(sub, name); err != nil || strings.HasSuffix(name, "/") {
			http.NotFound(w, r)
			return
		}
		r2 := r.Clone(r.Context())
		r2.URL.Path = "/" + name
		if name == "index.html" {
			// FileServer redirects /index.html to ./; serve the file itself.
			serveIndex(w, r2, sub)
			return
		}
		files.ServeHTTP(w, r2)
	})
}

func serveIndex(w http.ResponseWriter, r *http.Request, sub fs.FS) {
	b, err := fs.ReadFile(sub, "index.html")
	if err != nil {
		http.Error(w, "console page missing from the build", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(b) // the client went away: nothing to do
}
