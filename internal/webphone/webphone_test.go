package webphone

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func TestHandlerServesFiles(t *testing.T) {
	srv := httptest.NewServer(Handler(Options{}))
	defer srv.Close()
	tests := []struct {
		path  string
		ctype string
		body  string // a substring the body must hold
	}{
		{"/", "text/html; charset=utf-8", `id="test-call"`},
		{"/index.html", "text/html; charset=utf-8", `<script src="phone.js"`},
		{"/phone.js", "text/javascript; charset=utf-8", "window.webphone"},
		{"/meter.js", "text/javascript; charset=utf-8", "class LevelMeters"},
		{"/phone.css", "text/css; charset=utf-8", ".keypad"},
		{"/favicon.svg", "image/svg+xml", "<svg"},
		{"/vendor/jssip.min.js", "text/javascript; charset=utf-8", "JsSIP"},
		{"/vendor/jssip.LICENSE.txt", "text/plain; charset=utf-8", "MIT"},
		{"/config.json", "application/json", `"echo":"echo"`},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			res, body := get(t, srv.URL+tt.path, http.MethodGet)
			if res.StatusCode != http.StatusOK {
				t.Fatalf("status %d", res.StatusCode)
			}
			if got := res.Header.Get("Content-Type"); got != tt.ctype {
				t.Errorf("Content-Type %q, want %q", got, tt.ctype)
			}
			if got := res.Header.Get("Cache-Control"); got != "no-cache" {
				t.Errorf("Cache-Control %q, want no-cache", got)
			}
			if !strings.Contains(body, tt.body) {
				t.Errorf("body lacks %q", tt.body)
			}
			checkSecurityHeaders(t, res.Header)
		})
	}
}

func checkSecurityHeaders(t *testing.T, h http.Header) {
	t.Helper()
	want := map[string]string{
		"X-Content-Type-Options": "nosniff",
		"Referrer-Policy":        "no-referrer",
		"X-Frame-Options":        "DENY",
	}
	for k, v := range want {
		if got := h.Get(k); got != v {
			t.Errorf("%s %q, want %q", k, got, v)
		}
	}
	csp := h.Get("Content-Security-Policy")
	for _, d := range []string{"default-src 'none'", "script-src 'self'", "style-src 'self'",
		"connect-src 'self' wss: ws:", "frame-ancestors 'none'"} {
		if !strings.Contains(csp, d+";") && !strings.HasSuffix(csp, d) {
			t.Errorf("Content-Security-Policy %q lacks %q", csp, d)
		}
	}
	if strings.Contains(csp, "unsafe-") || strings.Contains(csp, "http") {
		t.Errorf("Content-Security-Policy %q allows inline code or another origin", csp)
	}
}

func TestHandlerRefuses(t *testing.T) {
	srv := httptest.NewServer(Handler(Options{}))
	defer srv.Close()
	tests := []struct {
		name, method, path string
		status             int
	}{
		{"unknown path", http.MethodGet, "/nope.html", http.StatusNotFound},
		{"directory", http.MethodGet, "/vendor/", http.StatusNotFound},
		{"embed root", http.MethodGet, "/static/index.html", http.StatusNotFound},
		{"traversal", http.MethodGet, "/../webphone.go", http.StatusNotFound},
		{"post", http.MethodPost, "/", http.StatusMethodNotAllowed},
		{"put", http.MethodPut, "/phone.js", http.StatusMethodNotAllowed},
		{"delete unknown", http.MethodDelete, "/nope", http.StatusMethodNotAllowed},
		{"options", http.MethodOptions, "/", http.StatusMethodNotAllowed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, _ := get(t, srv.URL+tt.path, tt.method)
			if res.StatusCode != tt.status {
				t.Fatalf("status %d, want %d", res.StatusCode, tt.status)
			}
			if tt.status == http.StatusMethodNotAllowed && res.Header.Get("Allow") != "GET, HEAD" {
				t.Errorf("Allow %q, want GET, HEAD", res.Header.Get("Allow"))
			}
			checkSecurityHeaders(t, res.Header)
		})
	}
}

func TestHandlerHeadAndRevalidation(t *testing.T) {
	srv := httptest.NewServer(Handler(Options{}))
	defer srv.Close()
	res, body := get(t, srv.URL+"/phone.js", http.MethodHead)
	if res.StatusCode != http.StatusOK || body != "" || res.ContentLength <= 0 {
		t.Fatalf("HEAD: status %d, body %d bytes, Content-Length %d", res.StatusCode, len(body), res.ContentLength)
	}
	etag := res.Header.Get("ETag")
	if etag == "" {
		t.Fatal("no ETag")
	}
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/phone.js", nil)
	req.Header.Set("If-None-Match", etag)
	res2, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res2.Body.Close()
	if res2.StatusCode != http.StatusNotModified {
		t.Errorf("If-None-Match: status %d, want 304", res2.StatusCode)
	}
}

func TestConfigJSON(t *testing.T) {
	tests := []struct {
		name string
		opt  Options
		want pageConfig
	}{
		{"zero", Options{}, pageConfig{Domain: "", Echo: DefaultEchoUser}},
		{"set", Options{Domain: "sbc.example.com", Echo: "sip:echo@sbc.example.com"},
			pageConfig{Domain: "sbc.example.com", Echo: "sip:echo@sbc.example.com"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(Handler(tt.opt))
			defer srv.Close()
			_, body := get(t, srv.URL+"/config.json", http.MethodGet)
			var got pageConfig
			if err := json.Unmarshal([]byte(body), &got); err != nil {
				t.Fatalf("%s: %v", body, err)
			}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestPageLoadsNothingFromElsewhere checks that the page's own files name
// no http(s) URL: everything comes from the SBC (the CSP enforces it in
// the browser too).
func TestPageLoadsNothingFromElsewhere(t *testing.T) {
	url := regexp.MustCompile(`(?i)https?://|//[a-z0-9.-]+\.[a-z]{2,}/`)
	attr := regexp.MustCompile(`(?i)(?:src|href)="([^"]*)"`)
	for _, name := range []string{"index.html", "phone.js", "meter.js", "phone.css"} {
		b, err := static.ReadFile("static/" + name)
		if err != nil {
			t.Fatal(err)
		}
		if m := url.Find(b); m != nil {
			t.Errorf("%s names an absolute URL: %q", name, m)
		}
		if name != "index.html" {
			continue
		}
		for _, m := range attr.FindAllSubmatch(b, -1) {
			ref := string(m[1])
			if _, err := static.ReadFile("static/" + ref); err != nil {
				t.Errorf("index.html refers to %q, which is not embedded", ref)
			}
		}
	}
}

// TestVendoredJsSIPIsBuilt checks that the committed JsSIP bundle is what
// web/bundle.sh builds from the pinned npm packages.
func TestVendoredJsSIPIsBuilt(t *testing.T) {
	web, err := filepath.Abs("../../web")
	if err != nil {
		t.Fatal(err)
	}
	for _, need := range []string{"node_modules/jssip/lib/JsSIP.js", "node_modules/.bin/esbuild"} {
		if _, err := os.Stat(filepath.Join(web, need)); err != nil {
			t.Skipf("web/%s missing (run web/build.sh or `npm ci` in web/ to check the vendored JsSIP): %v", need, err)
		}
	}
	cmd := exec.Command("sh", filepath.Join(web, "bundle.sh"))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	want, err := cmd.Output()
	if err != nil {
		t.Fatalf("web/bundle.sh: %v\n%s", err, stderr.String())
	}
	got, err := static.ReadFile("static/vendor/jssip.min.js")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("static/vendor/jssip.min.js (%d bytes) differs from web/bundle.sh output (%d bytes): run `go generate ./internal/webphone`",
			len(got), len(want))
	}
	lock, err := os.ReadFile(filepath.Join(web, "node_modules/jssip/package.json"))
	if err != nil {
		t.Fatal(err)
	}
	var pkg struct{ Version string }
	if err := json.Unmarshal(lock, &pkg); err != nil {
		t.Fatal(err)
	}
	lic, err := static.ReadFile("static/vendor/jssip.LICENSE.txt")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(lic, []byte("JsSIP "+pkg.Version)) {
		t.Errorf("jssip.LICENSE.txt does not name JsSIP %s", pkg.Version)
	}
}

func get(t *testing.T, url, method string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, string(b)
}
