package security

import (
	"bufio"
	"encoding/json"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sbc-project/sbc/internal/admin"
	"github.com/sbc-project/sbc/internal/config"
	"github.com/sbc-project/sbc/test/browser"
	"github.com/sbc-project/sbc/test/e2e"
)

// The admin API against web pages (issue 13, point 5). The SBC runs with
// the admin server on loopback and no token, as by default; a trunk "pbx"
// on e2e.PBXIP() and trusted sources 192.0.2.0/24. An attacker's page,
// served from another origin (http://<e2e.CallerIP()>:port), and a page whose
// name was rebound to the admin server's address try to ban everyone and
// to drain. They get nothing; the operator's own requests still work.

// adminAttackSBC starts the SBC of these tests and returns it with a
// client for its admin API.
func adminAttackSBC(t *testing.T, token string) (*e2e.SBC, *e2e.AdminClient) {
	t.Helper()
	pbx := e2e.NewUAS(t)
	sbc := e2e.StartSBC(t, e2e.SBCOptions{Trunks: e2e.PBXTrunk(pbx), Mutate: func(c *config.Config) {
		e2e.WithAdmin(token)(c)
		c.Routes[1].TrustedSources = []string{"192.0.2.0/24"}
	}})
	return sbc, sbc.Admin(t, token)
}

// attackerPage serves a harmless-looking page on e2e.CallerIP() (another
// origin, another site) and returns its URL.
func attackerPage(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", e2e.CallerIP()+":0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		_, _ = w.Write([]byte("<!doctype html><title>cute cats</title><p>nothing to see</p>"))
	}), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return "http://" + ln.Addr().String() + "/"
}

// adminState is what an attack could change: the bans and the drain.
type adminState struct {
	bans     []admin.Ban
	draining bool
	refused  float64
}

func readAdminState(t *testing.T, sbc *e2e.SBC, api *e2e.AdminClient) adminState {
	t.Helper()
	var l struct{ Bans []admin.Ban }
	api.JSON("GET", "/api/v1/bans", "", 200, &l)
	return adminState{bans: l.Bans, draining: sbc.App.Server().Draining(), refused: api.Metrics()["sbc_admin_refused_total"]}
}

// fetchResult is what the page's fetch got.
type fetchResult struct {
	Type   string `json:"type"`
	Status int    `json:"status"`
	Body   string `json:"body"`
	Error  string `json:"error"`
}

// fetched is what the page's fetch step kept under label.
func fetched(t *testing.T, r browser.PhoneResult, label string) fetchResult {
	t.Helper()
	var f fetchResult
	if err := json.Unmarshal(r.Marks[label], &f); err != nil {
		t.Fatalf("no fetch result %q: %v", label, err)
	}
	return f
}

// TestAdminCSRFFromBrowser: a real Chromium on the attacker's page sends
// the no-cors text/plain POSTs that used to ban 0.0.0.0/0 and start a
// drain. Each reaches the admin server (its refusal counter moves by one)
// and changes nothing. The requests that need a CORS preflight (JSON, a
// DELETE) never get past it.
func TestAdminCSRFFromBrowser(t *testing.T) {
	sbc, api := adminAttackSBC(t, "")
	api.JSON("POST", "/api/v1/bans", `{"addr":"203.0.113.5","reason":"operator"}`, 201, nil)
	before := readAdminState(t, sbc, api)
	page := attackerPage(t)
	base := api.Base
	goAhead := filepath.Join(t.TempDir(), "go")
	noCors := func(body string) map[string]any {
		return map[string]any{"method": "POST", "mode": "no-cors", "headers": map[string]string{"Content-Type": "text/plain"}, "body": body}
	}
	steps := []browser.Step{
		browser.Do("fetch", "url", base+"/api/v1/bans", "init", noCors(`{"addr":"0.0.0.0/0"}`), "label", "ban"),
		browser.Do("mark", "name", "ban"), browser.Do("waitFile", "path", goAhead+"1"),
		browser.Do("fetch", "url", base+"/api/v1/drain", "init", noCors(`{}`), "label", "drain"),
		browser.Do("mark", "name", "drain"), browser.Do("waitFile", "path", goAhead+"2"),
		browser.Do("fetch", "url", base+"/api/v1/bans", "label", "json", "init", map[string]any{"method": "POST",
			"headers": map[string]string{"Content-Type": "application/json"}, "body": `{"addr":"0.0.0.0/0"}`}),
		browser.Do("fetch", "url", base+"/api/v1/bans/203.0.113.5", "label", "delete", "init", map[string]any{"method": "DELETE"}),
		browser.Do("fetch", "url", base+"/api/v1/config", "label", "read", "init", map[string]any{"mode": "no-cors"}),
	}
	sc := e2e.NewScenario(t, browser.Phone{Name: "attacker", URL: page, Steps: steps})
	run := browser.Start(t, sc)

	// Each no-cors POST went out and reached the server, which refused it.
	run.WaitEvent("attacker", "mark", "ban", 60*time.Second)
	afterBan := readAdminState(t, sbc, api)
	if afterBan.refused != before.refused+1 {
		t.Errorf("refused %v after the ban POST, want %v: it did not reach the server, or was not refused", afterBan.refused, before.refused+1)
	}
	sameBans(t, "after the ban POST", before.bans, afterBan.bans)
	e2e.Touch(t, goAhead+"1")
	run.WaitEvent("attacker", "mark", "drain", 30*time.Second)
	afterDrain := readAdminState(t, sbc, api)
	if afterDrain.refused != before.refused+2 {
		t.Errorf("refused %v after the drain POST, want %v", afterDrain.refused, before.refused+2)
	}
	if afterDrain.draining {
		t.Fatal("the page started a drain")
	}
	e2e.Touch(t, goAhead+"2")

	res := run.MustPass()["attacker"]
	for _, label := range []string{"ban", "drain", "read"} {
		if f := fetched(t, res, label); f.Type != "opaque" || f.Error != "" {
			t.Errorf("%s: %+v, want an opaque answer (the request went out)", label, f)
		}
	}
	for _, label := range []string{"json", "delete"} {
		if f := fetched(t, res, label); f.Error == "" {
			t.Errorf("%s: %+v, want a failed preflight", label, f)
		}
	}
	after := readAdminState(t, sbc, api)
	sameBans(t, "after the attack", before.bans, after.bans)
	if after.draining {
		t.Error("draining after the attack")
	}
	if after.refused < before.refused+3 {
		t.Errorf("refused %v at the end, want at least %v (ban, drain, read)", after.refused, before.refused+3)
	}
	operatorKeepsControl(t, sbc, api)
}

// TestAdminDNSRebinding: Chromium resolves attacker.example to the admin
// server's address, as a rebinding attacker's DNS does once the page is
// loaded; the page is then same-origin with the server and may read the
// answers. Every request carries Host: attacker.example and is refused.
func TestAdminDNSRebinding(t *testing.T) {
	sbc, api := adminAttackSBC(t, "")
	before := readAdminState(t, sbc, api)
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(api.Base, "http://"))
	origin := "http://attacker.example:" + port
	jsonType := map[string]string{"Content-Type": "application/json"}
	steps := []browser.Step{
		browser.Do("fetch", "url", origin+"/api/v1/config", "label", "config"),
		browser.Do("fetch", "url", origin+"/api/v1/bans", "label", "ban", "init",
			map[string]any{"method": "POST", "headers": jsonType, "body": `{"addr":"0.0.0.0/0"}`}),
		browser.Do("fetch", "url", origin+"/api/v1/drain", "label", "drain", "init", map[string]any{"method": "POST", "headers": jsonType, "body": `{}`}),
	}
	sc := e2e.NewScenario(t, browser.Phone{Name: "rebound", URL: origin + "/healthz", Steps: steps})
	sc.HostResolverRules = "MAP attacker.example 127.0.0.1"
	res := browser.Start(t, sc).MustPass()["rebound"]
	for _, label := range []string{"config", "ban", "drain"} {
		f := fetched(t, res, label)
		if f.Status != 403 || !strings.Contains(f.Body, `Host \"attacker.example:`+port+`\"`) {
			t.Errorf("%s: %+v, want 403 naming the Host", label, f)
		}
		if strings.Contains(f.Body, "node_id") {
			t.Errorf("%s: the page read the configuration: %s", label, f.Body)
		}
	}
	after := readAdminState(t, sbc, api)
	sameBans(t, "after the rebinding attack", before.bans, after.bans)
	if after.draining {
		t.Error("draining after the rebinding attack")
	}
	// The page itself (/healthz) and the three fetches.
	if after.refused < before.refused+4 {
		t.Errorf("refused %v, want at least %v", after.refused, before.refused+4)
	}
	operatorKeepsControl(t, sbc, api)
}

// TestAdminBrowserRequestsRaw replays, byte for byte, what browsers send
// for a cross-site form or fetch, and a rebound page's request, with a
// token configured too: each is refused before it does anything.
func TestAdminBrowserRequestsRaw(t *testing.T) {
	sbc, api := adminAttackSBC(t, "0p3rator-t0ken")
	before := readAdminState(t, sbc, api)
	host := strings.TrimPrefix(api.Base, "http://")
	chrome := "User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36\r\n" +
		"Accept: */*\r\nAccept-Encoding: gzip, deflate, br, zstd\r\nAccept-Language: en-US,en;q=0.9\r\n"
	tests := []struct {
		name, head, body string
		want             int
	}{
		{"fetch no-cors text/plain (Chromium)", "POST /api/v1/bans HTTP/1.1\r\nHost: " + host + "\r\nConnection: keep-alive\r\n" + chrome +
			"Content-Type: text/plain;charset=UTF-8\r\nOrigin: http://" + e2e.CallerIP() + ":8000\r\nSec-Fetch-Site: cross-site\r\n" +
			"Sec-Fetch-Mode: no-cors\r\nSec-Fetch-Dest: empty\r\nReferer: http://" + e2e.CallerIP() + ":8000/\r\n",
			`{"addr":"0.0.0.0/0"}`, 403},
		{"HTML form post (old browser: no Sec-Fetch)", "POST /api/v1/drain HTTP/1.1\r\nHost: " + host + "\r\n" +
			"User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:60.0) Gecko/20100101 Firefox/60.0\r\n" +
			"Content-Type: application/x-www-form-urlencoded\r\nOrigin: http://evil.example\r\nReferer: http://evil.example/\r\n",
			`{"x":"="}`, 403},
		{"multipart form (no Origin: a privacy extension strips it)", "POST /api/v1/bans HTTP/1.1\r\nHost: " + host + "\r\n" + chrome +
			"Content-Type: multipart/form-data; boundary=b\r\nSec-Fetch-Site: cross-site\r\nSec-Fetch-Mode: navigate\r\n",
			"--b\r\nContent-Disposition: form-data; name=\"addr\"\r\n\r\n0.0.0.0/0\r\n--b--\r\n", 403},
		{"text/plain with neither Origin nor Sec-Fetch", "POST /api/v1/bans HTTP/1.1\r\nHost: " + host + "\r\n" +
			"Authorization: Bearer 0p3rator-t0ken\r\nContent-Type: text/plain\r\n", `{"addr":"0.0.0.0/0"}`, 415},
		{"rebound page reads the config", "GET /api/v1/config HTTP/1.1\r\nHost: attacker.example:" + portOf(host) + "\r\n" + chrome +
			"Sec-Fetch-Site: same-origin\r\nSec-Fetch-Mode: cors\r\nSec-Fetch-Dest: empty\r\n", "", 403},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := rawHTTP(t, host, tt.head, tt.body)
			if code != tt.want || !strings.Contains(body, `"error"`) {
				t.Errorf("status %d, want %d: %s", code, tt.want, body)
			}
		})
	}
	after := readAdminState(t, sbc, api)
	sameBans(t, "after the raw requests", before.bans, after.bans)
	if after.draining {
		t.Error("draining after the raw requests")
	}
	if after.refused != before.refused+float64(len(tests)) {
		t.Errorf("refused %v, want %v", after.refused, before.refused+float64(len(tests)))
	}
	operatorKeepsControl(t, sbc, api)
}

// operatorKeepsControl: the operator's curl-style requests (JSON, the
// token if set) work: a ban; bans that would cut the trunk, the trusted
// sources or everyone off are refused with the reason, and the trunk still
// reaches the SBC; a forced ban of the trunk holds; a drain starts.
func operatorKeepsControl(t *testing.T, sbc *e2e.SBC, api *e2e.AdminClient) {
	t.Helper()
	api.JSON("POST", "/api/v1/bans", `{"addr":"198.51.100.0/24","reason":"scanner"}`, 201, nil)
	for body, want := range map[string]string{
		`{"addr":"` + e2e.PBXIP() + `"}`:    `covers trunk \"pbx\" (` + e2e.PBXIP() + `)`,
		`{"addr":"127.0.0.0/8"}`:            `covers trunk \"pbx\" (` + e2e.PBXIP() + `)`,
		`{"addr":"192.0.2.9"}`:              `routes[1].trusted_sources`,
		`{"addr":"0.0.0.0/0","force":true}`: "would ban every source",
	} {
		code, b := api.Do("POST", "/api/v1/bans", body)
		if (code != 409 && code != 422) || !strings.Contains(string(b), want) {
			t.Errorf("operator ban %s: %d %s, want a refusal saying %s", body, code, b, want)
		}
	}
	if !e2e.OptionsAnswered(t, e2e.PBXIP(), sbc.UDP) {
		t.Error("the trunk gets no answer")
	}
	api.JSON("POST", "/api/v1/bans", `{"addr":"`+e2e.PBXIP()+`","force":true,"reason":"pbx compromised"}`, 201, nil)
	if e2e.OptionsAnswered(t, e2e.PBXIP(), sbc.UDP) {
		t.Error("a forced ban of the trunk is not in force")
	}
	api.JSON("POST", "/api/v1/drain", "", 202, nil)
	if !sbc.App.Server().Draining() {
		t.Error("the operator's drain did not start")
	}
}

// sameBans fails unless the ban lists hold the same addresses.
func sameBans(t *testing.T, when string, want, got []admin.Ban) {
	t.Helper()
	addrs := func(l []admin.Ban) string {
		var s []string
		for _, b := range l {
			s = append(s, b.Addr)
		}
		return strings.Join(s, ",")
	}
	if addrs(want) != addrs(got) {
		t.Errorf("bans %s: %s, want %s", when, addrs(got), addrs(want))
	}
}

func portOf(hostport string) string {
	_, p, _ := net.SplitHostPort(hostport)
	return p
}

// rawHTTP sends head (request line and headers, each ending in CRLF; the
// Content-Length is added) and body on a new connection and returns the
// status and the body of the answer.
func rawHTTP(t *testing.T, addr, head, body string) (int, string) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	req := head + "Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body
	if _, err := conn.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var b strings.Builder
	_, _ = bufio.NewReader(res.Body).WriteTo(&b)
	return res.StatusCode, b.String()
}
