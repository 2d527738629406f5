package app

import (
	"crypto/tls"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sbc-project/sbc/internal/config"
)

func TestWebPhoneServed(t *testing.T) {
	wss := []config.Listener{
		{Name: "udp", Transport: "udp", Addr: "127.0.0.1:0"},
		{Name: "ws", Transport: "ws", Addr: "127.0.0.1:0"},
		{Name: "wss", Transport: "wss", Addr: "127.0.0.1:0"},
	}
	tests := []struct {
		name     string
		web      config.WebPhone
		pageOn   []string // listeners serving the page
		own      bool     // on its own HTTPS server
		notFound []string // listeners answering 404
	}{
		{"on the websocket listeners", config.WebPhone{Enabled: true}, []string{"ws", "wss"}, false, nil},
		{"own address", config.WebPhone{Enabled: true, Addr: "127.0.0.1:0"}, nil, true, []string{"ws", "wss"}},
		{"off", config.WebPhone{Enabled: false}, nil, false, []string{"ws", "wss"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.SIP.Listeners = wss
			cfg.WebPhone = tt.web
			a, err := New(cfg, slog.New(slog.DiscardHandler), Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			url := func(name string) string {
				ap, ok := a.Addr(name)
				if !ok {
					t.Fatalf("no listener %s", name)
				}
				if name == "wss" {
					return "https://" + ap.String() + "/"
				}
				return "http://" + ap.String() + "/"
			}
			for _, name := range tt.pageOn {
				checkPage(t, url(name), http.StatusOK)
			}
			for _, name := range tt.notFound {
				checkPage(t, url(name), http.StatusNotFound)
			}
			switch addr := a.WebPhoneAddr(); {
			case tt.own && addr == nil:
				t.Fatal("no web phone server")
			case tt.own:
				checkPage(t, "https://"+addr.String()+"/", http.StatusOK)
			case addr != nil:
				t.Errorf("web phone server on %s, want none", addr)
			}
			if err := a.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
			if addr := a.WebPhoneAddr(); tt.own {
				c := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
				if res, err := c.Get("https://" + addr.String() + "/"); err == nil {
					res.Body.Close()
					t.Error("web phone server still answers after Close")
				}
			}
		})
	}
}

func TestEchoUser(t *testing.T) {
	tests := []struct {
		name   string
		routes []config.Route
		want   string
	}{
		{"default route", config.Default().Routes, "echo"},
		{"other literal", []config.Route{{Target: config.TargetEcho, Match: config.Match{RURIUser: "^test-echo$"}}}, "test-echo"},
		{"pattern", []config.Route{{Target: config.TargetEcho, Match: config.Match{RURIUser: "^(echo|e)$"}}}, "echo"},
		{"trunk route first", []config.Route{
			{Target: config.TargetTrunks, Match: config.Match{RURIUser: "^9999$"}},
			{Target: config.TargetEcho, Match: config.Match{RURIUser: "^9196$"}},
		}, "9196"},
		{"no echo route", nil, "echo"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := echoUser(tt.routes); got != tt.want {
				t.Errorf("echoUser = %q, want %q", got, tt.want)
			}
		})
	}
}

// checkPage gets url (trusting any certificate: the store is self-signed)
// and checks the status and, for 200, that it is the web phone.
func checkPage(t *testing.T, url string, status int) {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	res, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != status {
		t.Fatalf("GET %s: status %d, want %d", url, res.StatusCode, status)
	}
	if status == http.StatusOK && !strings.Contains(string(body), `id="test-call"`) {
		t.Errorf("GET %s: not the web phone", url)
	}
}
