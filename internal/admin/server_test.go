package admin

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sbc-project/sbc/internal/logging"
)

type fakeCalls struct {
	mu     sync.Mutex
	calls  []Call
	hungUp []string
}

func (f *fakeCalls) Calls() []Call {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Call(nil), f.calls...)
}

func (f *fakeCalls) Hangup(id string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := findCall(f.calls, id); !ok {
		return false
	}
	f.hungUp = append(f.hungUp, id)
	return true
}

type fakeBans struct {
	mu   sync.Mutex
	bans map[string]Ban
}

func (f *fakeBans) List() []Ban {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []Ban
	for _, b := range f.bans {
		out = append(out, b)
	}
	return out
}

func (f *fakeBans) Add(addr, reason string, d time.Duration) error {
	if addr == "10.0.0.66" {
		return errors.New("store down")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	b := Ban{Addr: addr, Reason: reason, Since: time.Now().UTC()}
	if d > 0 {
		u := b.Since.Add(d)
		b.Until = &u
	}
	f.bans[addr] = b
	return nil
}

func (f *fakeBans) Remove(addr string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.bans[addr]
	delete(f.bans, addr)
	return ok
}

type fakeRegs struct{}

func (fakeRegs) List() []Registration {
	return []Registration{{AOR: "sip:alice@example.com", Contact: "sip:alice@df7j.invalid;transport=ws", Transport: "wss"}}
}

// startServer runs a Server with opt on 127.0.0.1 and returns its base URL.
func startServer(t *testing.T, opt Options) string {
	t.Helper()
	s := New(opt)
	addr, err := s.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Close(ctx); err != nil {
			t.Errorf("close: %v", err)
		}
		if err := s.Close(ctx); err != nil {
			t.Errorf("second close: %v", err)
		}
	})
	return "http://" + addr.String()
}

// do sends a request as an operator's client does (Content-Type:
// application/json on a request that changes state) and returns the
// status and the decoded JSON body.
func do(t *testing.T, method, url, token, body string) (int, map[string]any) {
	t.Helper()
	h := http.Header{}
	if changesState(method) {
		h.Set("Content-Type", "application/json")
	}
	if token != "" {
		h.Set("Authorization", "Bearer "+token)
	}
	return doHeaders(t, method, url, h, body)
}

// doHeaders sends a request with exactly the headers h (and the Host
// header h names, if any) and returns the status and the decoded body.
func doHeaders(t *testing.T, method, url string, h http.Header, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header = h.Clone()
	if host := h.Get("Host"); host != "" {
		req.Host = host
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	var doc map[string]any
	if strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(b, &doc); err != nil {
			t.Fatalf("%s %s: bad json %q", method, url, b)
		}
	} else {
		doc = map[string]any{"text": string(b)}
	}
	return res.StatusCode, doc
}

func fullOptions() (Options, *fakeCalls, *fakeBans, *logging.Traces) {
	t0 := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	calls := &fakeCalls{calls: []Call{{ID: "c0ffee", State: "answered", Start: t0, Answer: &t0,
		Legs: []Leg{{Side: "a", CallID: "a-leg@caller"}, {Side: "b", CallID: "b-leg"}}}}}
	bans := &fakeBans{bans: map[string]Ban{}}
	traces := &logging.Traces{}
	ready := true
	opt := Options{
		Token:         "s3cret",
		Metrics:       http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "sbc_up 1\n") }),
		Ready:         func() Readiness { return Readiness{Ready: ready, Checks: []Check{{Name: "listeners", OK: ready}}} },
		Calls:         calls,
		Registrations: fakeRegs{},
		Bans:          bans,
		Trunks:        func() []Trunk { return []Trunk{{Name: "pbx", URI: "sip:10.0.0.1:5060", Up: true}} },
		Config: func() any {
			return map[string]any{"node_id": "sbc-1", "trunks": []any{map[string]string{"password": "REDACTED"}}}
		},
		Reload: func() (ReloadResult, error) {
			return ReloadResult{Applied: []string{"routes"}, RestartRequired: []string{"sip.listeners"}}, nil
		},
		Drain:  func() DrainStatus { return DrainStatus{Draining: true, ActiveCalls: 1} },
		Traces: traces,
	}
	return opt, calls, bans, traces
}

func TestToken(t *testing.T) {
	opt, _, _, _ := fullOptions()
	base := startServer(t, opt)
	tests := []struct {
		name, method, path, token string
		want                      int
	}{
		{"healthz open", "GET", "/healthz", "", 200},
		{"readyz open", "GET", "/readyz", "", 200},
		{"metrics without token", "GET", "/metrics", "", 401},
		{"metrics with token", "GET", "/metrics", "s3cret", 200},
		{"api without token", "GET", "/api/v1/calls", "", 401},
		{"api wrong token", "GET", "/api/v1/calls", "s3cre", 401},
		{"api longer token", "GET", "/api/v1/calls", "s3cret2", 401},
		{"api with token", "GET", "/api/v1/calls", "s3cret", 200},
		{"hangup without token", "DELETE", "/api/v1/calls/c0ffee", "", 401},
		{"reload without token", "POST", "/api/v1/reload", "", 401},
		{"unknown api path without token", "GET", "/api/v1/nothing", "", 401},
		{"profiler without token", "GET", "/debug/pprof/heap", "", 401},
		{"profile without token", "GET", "/debug/pprof/profile?seconds=1", "", 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := do(t, tt.method, base+tt.path, tt.token, "")
			if code != tt.want {
				t.Errorf("status %d, want %d: %v", code, tt.want, body)
			}
			if code == 401 && body["error"] == nil {
				t.Errorf("401 without a JSON error: %v", body)
			}
		})
	}
}

// TestProfiler reads a heap profile with the token, as `go tool pprof
// -http : http://127.0.0.1:9090/debug/pprof/heap` would.
func TestProfiler(t *testing.T) {
	opt, _, _, _ := fullOptions()
	base := startServer(t, opt)
	req, err := http.NewRequest("GET", base+"/debug/pprof/heap", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer s3cret")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	// A profile is gzipped protobuf: the gzip magic is the first two bytes.
	if res.StatusCode != 200 || len(body) < 2 || body[0] != 0x1f || body[1] != 0x8b {
		t.Fatalf("heap profile: status %d, %d bytes %q", res.StatusCode, len(body), body[:min(len(body), 40)])
	}
}

func TestEndpoints(t *testing.T) {
	opt, calls, _, _ := fullOptions()
	opt.Token = ""
	base := startServer(t, opt)
	tests := []struct {
		name, method, path, body string
		want                     int
		check                    func(t *testing.T, doc map[string]any)
	}{
		{name: "healthz", method: "GET", path: "/healthz", want: 200, check: field("status", "ok")},
		{name: "metrics", method: "GET", path: "/metrics", want: 200, check: field("text", "sbc_up 1\n")},
		{name: "calls", method: "GET", path: "/api/v1/calls", want: 200, check: func(t *testing.T, doc map[string]any) {
			list := doc["calls"].([]any)
			c := list[0].(map[string]any)
			if len(list) != 1 || c["id"] != "c0ffee" || c["ring_time"] != nil || c["answer_time"] != "2026-11-21T10:00:00Z" {
				t.Errorf("calls %v", doc)
			}
		}},
		{name: "call by id", method: "GET", path: "/api/v1/calls/c0ffee", want: 200, check: field("id", "c0ffee")},
		{name: "call by b-leg call-id", method: "GET", path: "/api/v1/calls/b-leg", want: 200, check: field("id", "c0ffee")},
		{name: "unknown call", method: "GET", path: "/api/v1/calls/nope", want: 404},
		{name: "hang up", method: "DELETE", path: "/api/v1/calls/a-leg@caller", want: 200, check: field("hung_up", "a-leg@caller")},
		{name: "hang up unknown", method: "DELETE", path: "/api/v1/calls/nope", want: 404},
		{name: "registrations", method: "GET", path: "/api/v1/registrations", want: 200, check: func(t *testing.T, doc map[string]any) {
			if l := doc["registrations"].([]any); len(l) != 1 {
				t.Errorf("registrations %v", doc)
			}
		}},
		{name: "trunks", method: "GET", path: "/api/v1/trunks", want: 200, check: func(t *testing.T, doc map[string]any) {
			tr := doc["trunks"].([]any)[0].(map[string]any)
			if tr["name"] != "pbx" || tr["up"] != true || tr["last_probe"] != nil {
				t.Errorf("trunks %v", doc)
			}
		}},
		{name: "config", method: "GET", path: "/api/v1/config", want: 200, check: field("node_id", "sbc-1")},
		{name: "reload", method: "POST", path: "/api/v1/reload", want: 200, check: func(t *testing.T, doc map[string]any) {
			if doc["applied"].([]any)[0] != "routes" || doc["restart_required"].([]any)[0] != "sip.listeners" {
				t.Errorf("reload %v", doc)
			}
		}},
		{name: "drain", method: "POST", path: "/api/v1/drain", want: 202, check: field("draining", true)},
		{name: "reload is POST only", method: "GET", path: "/api/v1/reload", want: 404},
		{name: "unknown endpoint", method: "GET", path: "/api/v1/nothing", want: 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, doc := do(t, tt.method, base+tt.path, "", tt.body)
			if code != tt.want {
				t.Fatalf("status %d, want %d: %v", code, tt.want, doc)
			}
			if code >= 400 && doc["error"] == nil {
				t.Errorf("error answer without a JSON error: %v", doc)
			}
			if tt.check != nil {
				tt.check(t, doc)
			}
		})
	}
	if len(calls.hungUp) != 1 || calls.hungUp[0] != "a-leg@caller" {
		t.Errorf("hung up %v", calls.hungUp)
	}
}

func field(k string, want any) func(t *testing.T, doc map[string]any) {
	return func(t *testing.T, doc map[string]any) {
		t.Helper()
		if doc[k] != want {
			t.Errorf("%s = %v, want %v (%v)", k, doc[k], want, doc)
		}
	}
}

func TestBans(t *testing.T) {
	opt, _, bans, _ := fullOptions()
	opt.Token = ""
	base := startServer(t, opt)
	steps := []struct {
		name, method, path, body string
		want                     int
	}{
		{"add ip", "POST", "/api/v1/bans", `{"addr":"203.0.113.9","reason":"scanner","duration":"1h"}`, 201},
		{"add cidr is masked", "POST", "/api/v1/bans", `{"addr":"198.51.100.7/24"}`, 201},
		{"add bad addr", "POST", "/api/v1/bans", `{"addr":"example.com"}`, 400},
		{"add bad duration", "POST", "/api/v1/bans", `{"addr":"192.0.2.1","duration":"-5m"}`, 400},
		{"add unknown field", "POST", "/api/v1/bans", `{"addr":"192.0.2.1","forever":true}`, 400},
		{"add not json", "POST", "/api/v1/bans", `addr=1`, 400},
		{"store failure", "POST", "/api/v1/bans", `{"addr":"10.0.0.66"}`, 500},
		{"list", "GET", "/api/v1/bans", "", 200},
		{"remove cidr", "DELETE", "/api/v1/bans/198.51.100.0/24", "", 200},
		{"remove again", "DELETE", "/api/v1/bans/198.51.100.0/24", "", 404},
		{"remove bad addr", "DELETE", "/api/v1/bans/nothing", "", 400},
	}
	for _, st := range steps {
		code, doc := do(t, st.method, base+st.path, "", st.body)
		if code != st.want {
			t.Errorf("%s: status %d, want %d: %v", st.name, code, st.want, doc)
		}
	}
	list := bans.List()
	if len(list) != 1 || list[0].Addr != "203.0.113.9" || list[0].Reason != "scanner" || list[0].Until == nil {
		t.Errorf("bans left %+v", list)
	}
}

func TestTraceEndpoints(t *testing.T) {
	opt, _, _, traces := fullOptions()
	opt.Token = ""
	base := startServer(t, opt)
	if code, doc := do(t, "POST", base+"/api/v1/trace", "", `{"target":"+4930123"}`); code != 201 {
		t.Fatalf("add: %d %v", code, doc)
	}
	if code, _ := do(t, "POST", base+"/api/v1/trace", "", `{"target":""}`); code != 400 {
		t.Errorf("empty target: %d", code)
	}
	if !traces.Traced("4930123") {
		t.Error("target not traced")
	}
	code, doc := do(t, "GET", base+"/api/v1/trace", "", "")
	if code != 200 || len(doc["targets"].([]any)) != 1 {
		t.Errorf("list: %d %v", code, doc)
	}
	if code, _ := do(t, "DELETE", base+"/api/v1/trace/4930123", "", ""); code != 200 {
		t.Errorf("remove: %d", code)
	}
	if code, _ := do(t, "DELETE", base+"/api/v1/trace/4930123", "", ""); code != 404 {
		t.Errorf("remove again: %d", code)
	}
}

func TestMissingBackends(t *testing.T) {
	base := startServer(t, Options{})
	tests := []struct {
		method, path string
		want         int
	}{
		{"GET", "/readyz", 200},
		{"GET", "/metrics", 501},
		{"GET", "/api/v1/calls", 501},
		{"DELETE", "/api/v1/calls/x", 501},
		{"GET", "/api/v1/registrations", 200}, // nobody registered
		{"GET", "/api/v1/bans", 501},
		{"POST", "/api/v1/bans", 501},
		{"DELETE", "/api/v1/bans/192.0.2.1", 501},
		{"GET", "/api/v1/trunks", 200},
		{"GET", "/api/v1/config", 501},
		{"POST", "/api/v1/reload", 501},
		{"POST", "/api/v1/drain", 501},
		{"GET", "/api/v1/trace", 501},
		{"GET", "/api/v1/calls/x/timeline", 501},
	}
	for _, tt := range tests {
		code, doc := do(t, tt.method, base+tt.path, "", "")
		if code != tt.want {
			t.Errorf("%s %s: %d, want %d: %v", tt.method, tt.path, code, tt.want, doc)
		}
		if code == 501 && !strings.Contains(doc["error"].(string), "not available") {
			t.Errorf("%s %s: 501 error %q", tt.method, tt.path, doc["error"])
		}
	}
	if _, doc := do(t, "GET", base+"/api/v1/registrations", "", ""); len(doc["registrations"].([]any)) != 0 {
		t.Errorf("registrations %v", doc)
	}
}

func TestReadyAndReloadFailures(t *testing.T) {
	opt := Options{
		Ready: func() Readiness {
			return Readiness{Ready: false, Checks: []Check{{Name: "draining", OK: false, Detail: "drain in progress"}}}
		},
		Reload: func() (ReloadResult, error) {
			return ReloadResult{}, errors.New("routes[0].target: \"x\": want one of trunks, registered, echo\nsip.tls.cert_file: \"/nope\": cannot open: no such file or directory")
		},
	}
	base := startServer(t, opt)
	code, doc := do(t, "GET", base+"/readyz", "", "")
	if code != 503 || doc["ready"] != false {
		t.Errorf("readyz %d %v", code, doc)
	}
	code, doc = do(t, "POST", base+"/api/v1/reload", "", "")
	if code != 422 {
		t.Fatalf("reload %d %v", code, doc)
	}
	if ps := doc["problems"].([]any); len(ps) != 2 || !strings.HasPrefix(ps[1].(string), "sip.tls.cert_file") {
		t.Errorf("problems %v", doc["problems"])
	}
}

func TestStartBusyAddr(t *testing.T) {
	s := New(Options{})
	addr, err := s.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	if _, err := New(Options{}).Start(addr.String()); err == nil {
		t.Error("second server bound the same address")
	}
}
