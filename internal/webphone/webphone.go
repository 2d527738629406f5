// Package webphone serves the SBC's browser phone: a plain HTML page with
// vanilla JavaScript on JsSIP that registers or calls over the SBC's own
// WebSocket listeners, with a test call to the echo destination.
//
// Everything the page loads is embedded here (static/), JsSIP included
// (static/vendor/jssip.min.js, bundled from npm at build time by
// web/build.sh, run through `go generate ./internal/webphone`): the page
// fetches nothing from any other origin, and its Content-Security-Policy
// forbids it to.
package webphone

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"
)

//go:generate sh ../../web/build.sh

//go:embed static
var static embed.FS

// DefaultEchoUser is the request-URI user of the test call when Options
// names none; the default route sends it to the echo destination.
const DefaultEchoUser = "echo"

// Options configure the page's defaults, served as /config.json. The zero
// value is usable: the page then takes the SIP domain from its own host
// name and calls sip:echo@<domain> for the test call.
type Options struct {
	// Domain is the SIP domain the page fills in; empty: the host name the
	// page was loaded from.
	Domain string
	// Echo is the test call's target: a user (placed at the domain) or a
	// full sip: URI. Empty: DefaultEchoUser.
	Echo string
}

// Headers every response carries. The policy allows scripts and styles
// from the SBC only and WebSocket connections to any SBC the user names
// (the server field); nothing may frame the page.
const (
	contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
		"media-src 'self' blob: mediastream:; connect-src 'self' wss: ws:; " +
		"base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
	permissionsPolicy = "microphone=(self), camera=(), geolocation=()"
)

// contentTypes maps the extensions of the embedded files to their types;
// a file with any other extension is not served.
var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".svg":  "image/svg+xml",
	".txt":  "text/plain; charset=utf-8",
	".json": "application/json",
}

// file is one servable response, read once at Handler time.
type file struct {
	body  []byte
	ctype string
	etag  string
}

// handler serves the files it was built with; it is read-only after
// Handler returns, so safe for concurrent use.
type handler struct {
	files map[string]file // by URL path, "/" included
	start time.Time       // Last-Modified of every file
}

// Handler returns the web phone's HTTP handler, to be mounted at "/": the
// page at / (and /index.html), its assets, and /config.json with opt. It
// answers GET and HEAD only (405 otherwise), 404 for any other path, and
// sets Content-Security-Policy, X-Content-Type-Options, Referrer-Policy
// and Cache-Control: no-cache with an ETag on every file, so that a
// browser revalidates the page and its assets after an SBC upgrade. It
// panics only if the embedded files are missing, a build error.
func Handler(opt Options) http.Handler {
	h := &handler{files: map[string]file{}, start: time.Now()}
	err := fs.WalkDir(static, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		ctype, ok := contentTypes[path.Ext(p)]
		if !ok {
			return nil
		}
		body, err := static.ReadFile(p)
		if err != nil {
			return err
		}
		h.add(strings.TrimPrefix(p, "static"), ctype, body)
		return nil
	})
	if err != nil {
		panic(fmt.Sprintf("webphone: reading embedded files: %v", err))
	}
	index, ok := h.files["/index.html"]
	if !ok {
		panic("webphone: static/index.html is not embedded")
	}
	h.files["/"] = index
	h.add("/config.json", contentTypes[".json"], configJSON(opt))
	return h
}

func (h *handler) add(urlPath, ctype string, body []byte) {
	sum := sha256.Sum256(body)
	h.files[urlPath] = file{body: body, ctype: ctype, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
}

// pageConfig is /config.json: the defaults the page starts from.
type pageConfig struct {
	Domain string `json:"domain"` // empty: the page's host name
	Echo   string `json:"echo"`   // a user or a sip: URI
}

func configJSON(opt Options) []byte {
	c := pageConfig{Domain: opt.Domain, Echo: opt.Echo}
	if c.Echo == "" {
		c.Echo = DefaultEchoUser
	}
	b, err := json.Marshal(c)
	if err != nil {
		panic(fmt.Sprintf("webphone: encoding config.json: %v", err)) // two strings cannot fail
	}
	return b
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", contentSecurityPolicy)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Permissions-Policy", permissionsPolicy)
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		hd.Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	f, ok := h.files[r.URL.Path]
	if !ok {
		http.NotFound(w, r)
		return
	}
	hd.Set("Content-Type", f.ctype)
	hd.Set("Cache-Control", "no-cache")
	hd.Set("ETag", f.etag)
	// ServeContent answers HEAD, If-None-Match (304) and ranges.
	http.ServeContent(w, r, "", h.start, bytes.NewReader(f.body))
}
