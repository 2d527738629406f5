package admin

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"
)

// hdr builds a header from name, value pairs.
func hdr(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Set(kv[i], kv[i+1])
	}
	return h
}

// TestGuard sends the requests a web page can make a browser send, and
// those of an operator's tools, to a server on 127.0.0.1 without a token
// (the default), and checks which get through. A refused request must not
// reach its backend.
func TestGuard(t *testing.T) {
	opt, calls, bans, _ := fullOptions()
	opt.Token = ""
	opt.Hosts = []string{"SBC-Admin.Example.com", "192.0.2.80"}
	drains := 0
	opt.Drain = func() DrainStatus { drains++; return DrainStatus{Draining: true} }
	s := New(opt)
	addr, err := s.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	base := "http://" + addr.String()
	refused := uint64(0)
	for _, tt := range guardCases(addr.String()) {
		t.Run(tt.name, func(t *testing.T) {
			code, doc := doHeaders(t, tt.method, base+tt.path, tt.h, tt.body)
			if code != tt.want {
				t.Errorf("status %d, want %d: %v", code, tt.want, doc)
			}
			if code >= 400 && doc["error"] == nil {
				t.Errorf("refusal without a JSON error: %v", doc)
			}
			if code == 403 || code == 415 {
				refused++
			}
		})
	}
	if got := s.Refused(); got != refused {
		t.Errorf("Refused() = %d, want %d", got, refused)
	}
	if drains != 1 {
		t.Errorf("drain ran %d times, want once (the operator's)", drains)
	}
	if len(calls.hungUp) != 1 {
		t.Errorf("calls hung up %v, want the operator's one", calls.hungUp)
	}
	for _, b := range bans.List() {
		if b.Addr == "203.0.113.7" {
			t.Error("a refused request added its ban")
		}
	}
	if len(bans.List()) != 2 {
		t.Errorf("bans %+v, want the operator's two", bans.List())
	}
}

type guardCase struct {
	name, method, path string
	h                  http.Header
	body               string
	want               int
}

// guardCases are TestGuard's requests to the server at addr.
func guardCases(addr string) []guardCase {
	_, port, _ := net.SplitHostPort(addr)
	const ban = `{"addr":"203.0.113.7"}`
	json := "application/json"
	return []guardCase{
		// What an attacker's page makes the browser send.
		{"simple cross-site POST text/plain", "POST", "/api/v1/bans",
			hdr("Content-Type", "text/plain;charset=UTF-8", "Origin", "http://127.0.0.2:8000", "Sec-Fetch-Site", "cross-site"), ban, 403},
		{"form POST", "POST", "/api/v1/drain",
			hdr("Content-Type", "application/x-www-form-urlencoded", "Origin", "http://evil.example", "Sec-Fetch-Site", "cross-site"), "a=1", 403},
		{"same-site page (web phone port)", "POST", "/api/v1/bans",
			hdr("Content-Type", json, "Origin", "http://127.0.0.1:8080", "Sec-Fetch-Site", "same-site"), ban, 403},
		{"Origin null (sandboxed frame)", "POST", "/api/v1/bans", hdr("Content-Type", json, "Origin", "null"), ban, 403},
		{"old browser: Origin only", "POST", "/api/v1/bans", hdr("Content-Type", json, "Origin", "http://evil.example"), ban, 403},
		{"cross-site GET without Origin (img)", "GET", "/api/v1/calls", hdr("Sec-Fetch-Site", "cross-site"), "", 403},
		{"DNS rebinding read", "GET", "/api/v1/calls", hdr("Host", "attacker.example:"+port), "", 403},
		{"DNS rebinding, same-origin POST", "POST", "/api/v1/bans",
			hdr("Host", "attacker.example:"+port, "Origin", "http://attacker.example:"+port, "Content-Type", json, "Sec-Fetch-Site", "same-origin"), ban, 403},
		{"rebinding metrics", "GET", "/metrics", hdr("Host", "attacker.example"), "", 403},
		{"rebinding healthz", "GET", "/healthz", hdr("Host", "attacker.example"), "", 403},
		{"another IP as Host", "GET", "/api/v1/calls", hdr("Host", "127.0.0.2:"+port), "", 403},
		{"text/plain without browser headers", "POST", "/api/v1/bans", hdr("Content-Type", "text/plain"), ban, 415},
		{"no content type", "POST", "/api/v1/drain", hdr(), "", 415},
		{"json-like type", "POST", "/api/v1/bans", hdr("Content-Type", "application/jsonp"), ban, 415},
		{"DELETE without anything", "DELETE", "/api/v1/calls/c0ffee", hdr(), "", 415},
		{"DELETE with a text body", "DELETE", "/api/v1/calls/c0ffee", hdr("Authorization", "Bearer x", "Content-Type", "text/plain"), "x", 415},
		{"PUT text/plain", "PUT", "/api/v1/bans", hdr("Content-Type", "text/plain"), ban, 415},

		// What operators' tools send.
		{"curl ban", "POST", "/api/v1/bans", hdr("Content-Type", json), `{"addr":"203.0.113.9"}`, 201},
		{"json with charset", "POST", "/api/v1/trace", hdr("Content-Type", "application/json; charset=utf-8"), `{"target":"bob"}`, 201},
		{"drain with {}", "POST", "/api/v1/drain", hdr("Content-Type", json), `{}`, 202},
		{"drain with a field", "POST", "/api/v1/drain", hdr("Content-Type", json), `{"now":true}`, 400},
		{"DELETE with json type", "DELETE", "/api/v1/trace/bob", hdr("Content-Type", json), "", 200},
		{"DELETE with Authorization", "DELETE", "/api/v1/calls/c0ffee", hdr("Authorization", "Bearer anything"), "", 200},
		{"localhost", "GET", "/api/v1/calls", hdr("Host", "localhost:"+port), "", 200},
		{"configured name, any case, trailing dot", "GET", "/api/v1/calls", hdr("Host", "sbc-admin.example.COM.:443"), "", 200},
		{"configured IP", "GET", "/api/v1/calls", hdr("Host", "192.0.2.80"), "", 200},
		{"own origin", "POST", "/api/v1/bans", hdr("Content-Type", json, "Origin", "http://"+addr, "Sec-Fetch-Site", "same-origin"), `{"addr":"203.0.113.10"}`, 201},
		{"typed in the address bar", "GET", "/metrics", hdr("Sec-Fetch-Site", "none"), "", 200},
		{"unknown path", "GET", "/api/v1/nothing", hdr(), "", 404},
	}
}

// TestGuardWithToken: with a token, a DELETE's Authorization header must
// be the token, and the token is checked before the content type.
func TestGuardWithToken(t *testing.T) {
	opt, _, _, _ := fullOptions()
	base := startServer(t, opt)
	for _, tt := range []struct {
		name, method, path string
		h                  http.Header
		want               int
	}{
		{"DELETE with the token", "DELETE", "/api/v1/calls/c0ffee", hdr("Authorization", "Bearer s3cret"), 200},
		{"DELETE with another token", "DELETE", "/api/v1/calls/c0ffee", hdr("Authorization", "Bearer x"), 401},
		{"POST text/plain without token", "POST", "/api/v1/drain", hdr("Content-Type", "text/plain"), 401},
		{"POST text/plain with token", "POST", "/api/v1/drain", hdr("Content-Type", "text/plain", "Authorization", "Bearer s3cret"), 415},
		{"foreign Origin with token", "POST", "/api/v1/drain",
			hdr("Content-Type", "application/json", "Authorization", "Bearer s3cret", "Origin", "http://evil.example"), 403},
	} {
		if code, doc := doHeaders(t, tt.method, base+tt.path, tt.h, ""); code != tt.want {
			t.Errorf("%s: status %d, want %d: %v", tt.name, code, tt.want, doc)
		}
	}
}

// TestHostOnEveryAddress: listening on every address, any IP literal is
// the server's (a rebinding name never is), and localhost too.
func TestHostOnEveryAddress(t *testing.T) {
	opt, _, _, _ := fullOptions()
	s := New(opt)
	addr, err := s.Start("0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	_, port, _ := net.SplitHostPort(addr.String())
	base := "http://127.0.0.1:" + port
	for host, want := range map[string]int{"10.1.2.3:" + port: 200, "[2001:db8::1]:" + port: 200, "localhost": 200,
		"attacker.example:" + port: 403, "127.0.0.1.nip.io": 403} {
		if code, doc := doHeaders(t, "GET", base+"/api/v1/calls", hdr("Host", host, "Authorization", "Bearer s3cret"), ""); code != want {
			t.Errorf("Host %s: status %d, want %d: %v", host, code, want, doc)
		}
	}
}

// TestStartNeedsTokenBeyondLoopback: without a token the server listens on
// loopback only.
func TestStartNeedsTokenBeyondLoopback(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", "[::]:0"} {
		_, err := New(Options{}).Start(addr)
		if !errors.Is(err, ErrNoToken) || !strings.Contains(err.Error(), "admin.token") {
			t.Errorf("Start(%s) without token: %v, want ErrNoToken", addr, err)
		}
	}
	for _, addr := range []string{"127.0.0.1:0", "[::1]:0"} {
		s := New(Options{})
		if _, err := s.Start(addr); err != nil {
			t.Errorf("Start(%s) without token: %v", addr, err)
		}
		_ = s.Close(context.Background())
	}
	s := New(Options{Token: "t"})
	if _, err := s.Start("0.0.0.0:0"); err != nil {
		t.Errorf("Start(0.0.0.0:0) with token: %v", err)
	}
	_ = s.Close(context.Background())
}

func TestIsPowerOf10(t *testing.T) {
	for n, want := range map[uint64]bool{0: false, 1: true, 2: false, 10: true, 11: false, 100: true, 1000: true, 1010: false} {
		if isPowerOf10(n) != want {
			t.Errorf("isPowerOf10(%d) = %v", n, !want)
		}
	}
}
