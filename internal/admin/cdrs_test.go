package admin

import (
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestCDRs: the query parameters reach the backend parsed, with the
// default limit, and a bad one is 400 naming it; the token is required.
func TestCDRs(t *testing.T) {
	var mu sync.Mutex
	var got CDRQuery
	base := startServer(t, Options{Token: "tk", CDRs: func(q CDRQuery) any {
		mu.Lock()
		defer mu.Unlock()
		got = q
		return []map[string]string{{"id": "r1"}}
	}})
	since := time.Date(2026, 12, 7, 5, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name, query string
		code        int
		want        CDRQuery
		err         string
	}{
		{"none", "", 200, CDRQuery{Limit: DefaultCDRs}, ""},
		{"all", "?number=1000&call_id=abc%40h&cause=callee_bye&since=2026-12-07T05:00:00Z&until=2026-12-07T06:00:00.5Z&limit=7", 200,
			CDRQuery{Number: "1000", CallID: "abc@h", Cause: "callee_bye", Since: since,
				Until: since.Add(time.Hour + 500*time.Millisecond), Limit: 7}, ""},
		{"bad since", "?since=yesterday", 400, CDRQuery{}, `since "yesterday": want an RFC 3339 time`},
		{"limit 0", "?limit=0", 400, CDRQuery{}, `limit "0": want 1 to 1000`},
		{"limit too big", "?limit=1001", 400, CDRQuery{}, `limit "1001"`},
		{"unknown", "?from=x", 400, CDRQuery{}, `unknown parameter "from"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mu.Lock()
			got = CDRQuery{}
			mu.Unlock()
			code, doc := do(t, "GET", base+"/api/v1/cdrs"+tc.query, "tk", "")
			if code != tc.code {
				t.Fatalf("%d, want %d: %v", code, tc.code, doc)
			}
			if tc.code != 200 {
				if e, _ := doc["error"].(string); !strings.Contains(e, tc.err) {
					t.Errorf("error %q, want it to contain %q", e, tc.err)
				}
				return
			}
			mu.Lock()
			q := got
			mu.Unlock()
			if q.Number != tc.want.Number || q.CallID != tc.want.CallID || q.Cause != tc.want.Cause ||
				!q.Since.Equal(tc.want.Since) || !q.Until.Equal(tc.want.Until) || q.Limit != tc.want.Limit {
				t.Errorf("query %+v, want %+v", q, tc.want)
			}
			if l, _ := doc["cdrs"].([]any); len(l) != 1 {
				t.Errorf("cdrs %v", doc)
			}
		})
	}
	if code, _ := do(t, "GET", base+"/api/v1/cdrs", "", ""); code != http.StatusUnauthorized {
		t.Errorf("without the token: %d, want 401", code)
	}
	if code, _ := do(t, "GET", startServer(t, Options{})+"/api/v1/cdrs", "", ""); code != http.StatusNotImplemented {
		t.Errorf("without a backend: %d, want 501", code)
	}
}

// TestConsoleRoute: the console's files are served without the token
// (the page asks for it) but behind the Host and Origin checks, and
// /console redirects to /console/; without a console, 404.
func TestConsoleRoute(t *testing.T) {
	page := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("page " + r.URL.Path)) })
	base := startServer(t, Options{Token: "tk", Console: page})
	get := func(path string, h http.Header) (int, string, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", base+path, nil)
		for k, v := range h {
			req.Header[k] = v
		}
		c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		res, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b), res.Header.Get("Location")
	}
	if code, body, _ := get("/console/app.js", nil); code != 200 || body != "page /console/app.js" {
		t.Errorf("console file without token: %d %q", code, body)
	}
	if code, _, loc := get("/console", nil); code != http.StatusMovedPermanently || loc != "/console/" {
		t.Errorf("/console: %d to %q", code, loc)
	}
	if code, _, _ := get("/console/", http.Header{"Sec-Fetch-Site": {"cross-site"}}); code != http.StatusForbidden {
		t.Errorf("cross-site: %d, want 403", code)
	}
	if code, _, _ := get("/console/", http.Header{"Origin": {"http://evil.example"}}); code != http.StatusForbidden {
		t.Errorf("other origin: %d, want 403", code)
	}
	none := startServer(t, Options{})
	res, err := http.Get(none + "/console/")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusNotFound {
		t.Errorf("no console: %d, want 404", res.StatusCode)
	}
}
