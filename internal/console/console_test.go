package console

import (
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestHandler: the page, its script and style are served under Prefix
// with the strict CSP; anything else is 404.
func TestHandler(t *testing.T) {
	h := Handler()
	for _, tc := range []struct {
		path, ctype string
		code        int
		contains    string
	}{
		{"/console/", "text/html; charset=utf-8", 200, `<script src="console.js"`},
		{"/console/index.html", "text/html; charset=utf-8", 200, `id="login-form"`},
		{"/console/console.js", "text/javascript; charset=utf-8", 200, "Authorization: 'Bearer '"},
		{"/console/console.css", "text/css; charset=utf-8", 200, "table"},
		{"/console/nope.js", "", 404, ""},
		{"/console/../console.go", "", 404, ""},
		{"/elsewhere", "", 404, ""},
	} {
		t.Run(tc.path, func(t *testing.T) {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, tc.path, nil))
			res := w.Result()
			body, _ := io.ReadAll(res.Body)
			if res.StatusCode != tc.code {
				t.Fatalf("status %d, want %d", res.StatusCode, tc.code)
			}
			if got := res.Header.Get("Content-Security-Policy"); got != CSP {
				t.Errorf("CSP %q", got)
			}
			if tc.code != 200 {
				return
			}
			if got := res.Header.Get("Content-Type"); got != tc.ctype {
				t.Errorf("Content-Type %q, want %q", got, tc.ctype)
			}
			if !strings.Contains(string(body), tc.contains) {
				t.Errorf("body lacks %q", tc.contains)
			}
		})
	}
}

// TestAssetsKeepTokenInMemory: the page stores the token nowhere a later
// visitor or another page could read it, and loads nothing from another
// origin (no CDN): no storage, cookie or URL, no inline script or style
// (which the CSP would block), no absolute URL.
func TestAssetsKeepTokenInMemory(t *testing.T) {
	forbidden := []string{"localStorage", "sessionStorage", "document.cookie", "indexedDB", "http://", "https://",
		"<script>", "style=", "onclick=", "eval("}
	err := fs.WalkDir(assets, "assets", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(assets, path)
		if err != nil {
			return err
		}
		text := strings.ReplaceAll(string(b), "http://www.w3.org/2000/svg", "") // the SVG namespace, not a fetch
		for _, f := range forbidden {
			if strings.Contains(text, f) {
				t.Errorf("%s contains %q", path, f)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
