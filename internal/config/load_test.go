package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// writeConfig writes text to a config file in a temporary directory.
func writeConfig(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "sbc.yaml")
	writeFile(t, path, []byte(text))
	return path
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// wantProblems checks that err lists exactly the problems want, each given
// as "key" or "key: reason substring", in order.
func wantProblems(t *testing.T, err error, want ...string) {
	t.Helper()
	if len(want) == 0 {
		if err != nil {
			t.Fatalf("unexpected problems:\n%v", err)
		}
		return
	}
	if err == nil {
		t.Fatalf("no error, want problems %q", want)
	}
	var ps Problems
	if !errors.As(err, &ps) {
		t.Fatalf("error %v (%T), want Problems", err, err)
	}
	if len(ps) != len(want) {
		t.Fatalf("got %d problems, want %d (%q):\n%v", len(ps), len(want), want, err)
	}
	for i, w := range want {
		key, reason, _ := strings.Cut(w, ": ")
		if ps[i].Key != key || !strings.Contains(ps[i].Reason, reason) {
			t.Errorf("problem %d = %q, want key %q with reason containing %q", i, ps[i].String(), key, reason)
		}
	}
}

func TestLoadMerges(t *testing.T) {
	tests := []struct {
		name  string
		yaml  string
		check func(t *testing.T, c *Config)
	}{
		{
			name:  "empty file keeps defaults",
			yaml:  "",
			check: func(t *testing.T, c *Config) { equal(t, c, Default()) },
		},
		{
			name: "listeners list replaces the default list",
			yaml: "sip:\n  listeners:\n    - {transport: udp, addr: 127.0.0.1:5070}\n",
			check: func(t *testing.T, c *Config) {
				equal(t, c.SIP.Listeners, []Listener{{Name: "udp", Transport: "udp", Addr: "127.0.0.1:5070", Symmetric: true}})
				equal(t, c.SIP.UserAgent, DefaultUserAgent) // the rest of sip is kept
			},
		},
		{
			name: "routes list replaces the default list",
			yaml: "routes:\n  - {name: all, target: registered}\n",
			check: func(t *testing.T, c *Config) {
				equal(t, c.Routes, []Route{{Name: "all", Target: TargetRegistered}})
			},
		},
		{
			name:  "empty routes list removes the echo route",
			yaml:  "routes: []\n",
			check: func(t *testing.T, c *Config) { equal(t, len(c.Routes), 0) },
		},
		{
			name: "cdr list replaces the default list, items get defaults",
			yaml: "cdr:\n  - type: csv\n  - {}\n  - {type: postgres, dsn: 'postgres://x'}\n",
			check: func(t *testing.T, c *Config) {
				file := func(typ string) CDRWriter {
					return CDRWriter{Name: typ, Type: typ, Dir: DefaultCDRDir, MaxBytes: DefaultCDRMaxBytes, RotateEvery: DefaultCDRRotateEvery}
				}
				equal(t, c.CDR, []CDRWriter{file(CDRCSV), file(CDRJSONL), {Name: CDRPostgres, Type: CDRPostgres, DSN: "postgres://x"}})
			},
		},
		{
			name: "mapping merges key by key",
			yaml: "sip:\n  public_addr: 203.0.113.7\n  tls:\n    cert_file: /c.pem\n",
			check: func(t *testing.T, c *Config) {
				equal(t, c.SIP.PublicAddr, "203.0.113.7")
				equal(t, c.SIP.TLS, TLS{CertFile: "/c.pem", ReloadInterval: DefaultTLSReloadInterval})
				equal(t, c.SIP.Listeners, Default().SIP.Listeners)
			},
		},
		{
			name: "trunk items get defaults, explicit zero kept",
			yaml: "trunks:\n  - {name: a, uri: 'sip:192.0.2.1'}\n  - {name: b, uri: 'sip:192.0.2.2', options_interval: 0, failure_threshold: 5}\n",
			check: func(t *testing.T, c *Config) {
				equal(t, c.Trunks, []Trunk{
					{Name: "a", URI: "sip:192.0.2.1", OptionsInterval: DefaultOptionsInterval,
						OptionsTimeout: DefaultOptionsTimeout, FailureThreshold: DefaultFailureThreshold, Media: MediaRTP, DTMF: DTMFRFC4733},
					{Name: "b", URI: "sip:192.0.2.2", OptionsInterval: 0,
						OptionsTimeout: DefaultOptionsTimeout, FailureThreshold: 5, Media: MediaRTP, DTMF: DTMFRFC4733},
				})
			},
		},
		{
			name: "listener name defaults to transport, explicit name kept",
			yaml: "sip:\n  listeners:\n    - {transport: wss, addr: '[::]:443'}\n    - {name: public, transport: udp, addr: '0.0.0.0:5060'}\n",
			check: func(t *testing.T, c *Config) {
				equal(t, c.SIP.Listeners, []Listener{
					{Name: "wss", Transport: "wss", Addr: "[::]:443", Symmetric: true},
					{Name: "public", Transport: "udp", Addr: "0.0.0.0:5060", Symmetric: true},
				})
			},
		},
		{
			name: "listener symmetric defaults to true, explicit false kept",
			yaml: "sip:\n  listeners:\n    - {name: access, transport: udp, addr: '0.0.0.0:5060'}\n    - {name: trunk, transport: udp, addr: '0.0.0.0:5070', symmetric: false}\n",
			check: func(t *testing.T, c *Config) {
				equal(t, c.SIP.Listeners, []Listener{
					{Name: "access", Transport: "udp", Addr: "0.0.0.0:5060", Symmetric: DefaultSymmetric},
					{Name: "trunk", Transport: "udp", Addr: "0.0.0.0:5070", Symmetric: false},
				})
			},
		},
		{
			name: "durations and numbers",
			yaml: "sip:\n  min_se: 2m\n  session_expires: 1h30m\n  max_headers: 64\nmedia:\n  timeout: 500ms\n",
			check: func(t *testing.T, c *Config) {
				equal(t, c.SIP.MinSE, 2*time.Minute)
				equal(t, c.SIP.SessionExpires, 90*time.Minute)
				equal(t, c.SIP.MaxHeaders, 64)
				equal(t, c.Media.Timeout, 500*time.Millisecond)
			},
		},
		{
			name: "null list means empty",
			yaml: "trunks:\nsip:\n  header_whitelist:\n",
			check: func(t *testing.T, c *Config) {
				equal(t, len(c.Trunks), 0)
				equal(t, len(c.SIP.HeaderWhitelist), 0)
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Load(writeConfig(t, tt.yaml), nil)
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, c)
		})
	}
}

func TestLoadProblems(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		env  []string
		want []string // "key: reason substring", in order
	}{
		{
			name: "unknown keys everywhere",
			yaml: "bogus: 1\nsip:\n  bogus: x\n  listeners:\n    - {transport: udp, addr: '127.0.0.1:5060', port: 5}\n" +
				"routes:\n  - name: r\n    target: echo\n    match: {user: x}\n",
			want: []string{"bogus: unknown key", "routes[0].match.user: unknown key",
				"sip.bogus: unknown key", "sip.listeners[0].port: unknown key"},
		},
		{
			name: "keys are case-sensitive",
			yaml: "Node_ID: x\n",
			want: []string{"Node_ID: unknown key"},
		},
		{
			name: "scalar where a section belongs",
			yaml: "sip: 5\nmedia:\n  bind_ip: 127.0.0.1\nlog: [a]\n",
			want: []string{"log: want a mapping", "sip: want a mapping"},
		},
		{
			name: "scalar where a list belongs",
			yaml: "routes: echo\ncdr:\n  - jsonl\n",
			want: []string{"cdr[0]: want a mapping", "routes: want a list"},
		},
		{
			name: "wrong scalar types",
			yaml: "sip:\n  max_headers: many\n  listeners: [{transport: udp, addr: {a: 1}}]\ntrunks: [{name: t, uri: 'sip:h', trusted: maybe}]\n",
			want: []string{"sip.listeners[0].addr: want a string", "sip.max_headers: want a whole number",
				"trunks[0].trusted: want true or false"},
		},
		{
			name: "listener symmetric is a boolean",
			yaml: "sip:\n  listeners: [{transport: udp, addr: '127.0.0.1:5060', symmetric: nat}]\n",
			want: []string{"sip.listeners[0].symmetric: want true or false"},
		},
		{
			name: "durations need a unit",
			yaml: "media:\n  timeout: 60\nsip:\n  min_se: soon\n",
			want: []string{"sip.min_se: want a duration", "media.timeout: want a duration"},
		},
		{
			name: "file and environment problems together",
			yaml: "bogus: 1\n",
			env:  []string{"SBC_NOPE=1", "SBC_SIP_MAX_HEADERS=lots"},
			want: []string{"bogus: unknown key", "SBC_NOPE: names no config key", "sip.max_headers: want a whole number"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Load(writeConfig(t, tt.yaml), tt.env)
			if c != nil {
				t.Errorf("Load returned a config with an error")
			}
			wantProblems(t, err, tt.want...)
		})
	}
}

func TestLoadProblemValue(t *testing.T) {
	_, err := Load(writeConfig(t, "sip:\n  max_headers: many\n"), nil)
	var ps Problems
	if !errors.As(err, &ps) || len(ps) != 1 {
		t.Fatalf("err %v, want one problem", err)
	}
	if got, want := ps[0].String(), `sip.max_headers: "many": want a whole number`; got != want {
		t.Errorf("problem %q, want %q", got, want)
	}
}

func TestLoadFileErrors(t *testing.T) {
	tests := []struct {
		name, path, wantErr string
	}{
		{"missing file", filepath.Join(t.TempDir(), "nope.yaml"), "no such file"},
		{"not YAML", writeConfig(t, "sip: [\n"), "parse config"},
		{"duplicate key", writeConfig(t, "node_id: a\nnode_id: b\n"), "already defined"},
		{"top level list", writeConfig(t, "- a\n- b\n"), "mapping of keys at the top level"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(tt.path, nil)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Load: %v, want error containing %q", err, tt.wantErr)
			}
			var ps Problems
			if errors.As(err, &ps) {
				t.Errorf("file error returned as Problems: %v", err)
			}
		})
	}
}

func TestLookup(t *testing.T) {
	tree := map[string]any{"sip": map[string]any{"listeners": []any{map[string]any{"addr": "x"}}}}
	tests := []struct {
		key  string
		want any
	}{
		{"sip.listeners[0].addr", "x"},
		{"sip.listeners[1].addr", nil},
		{"sip.nope", nil},
		{"sip.listeners[x]", nil},
	}
	for _, tt := range tests {
		if got := lookup(tree, tt.key); got != tt.want {
			t.Errorf("lookup(%s) = %v, want %v", tt.key, got, tt.want)
		}
	}
}

func equal[T any](t *testing.T, got, want T) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
}
