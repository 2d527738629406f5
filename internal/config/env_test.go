package config

import (
	"testing"
	"time"
)

func TestEnvOverrides(t *testing.T) {
	tests := []struct {
		name  string
		yaml  string // "" for no file
		env   []string
		check func(t *testing.T, c *Config)
	}{
		{
			name: "scalars",
			env: []string{"SBC_NODE_ID=edge-2", "SBC_SIP_PUBLIC_ADDR=203.0.113.7", "SBC_MEDIA_RTP_PORTS=30000-31000",
				"SBC_ADMIN_ADDR=127.0.0.1:9191", "SBC_SIP_TLS_CERT_FILE=/etc/c.pem", "SBC_LOG_LEVEL=debug"},
			check: func(t *testing.T, c *Config) {
				equal(t, c.NodeID, "edge-2")
				equal(t, c.SIP.PublicAddr, "203.0.113.7")
				equal(t, c.Media.RTPPorts, "30000-31000")
				equal(t, c.Admin.Addr, "127.0.0.1:9191")
				equal(t, c.SIP.TLS.CertFile, "/etc/c.pem")
				equal(t, c.Log.Level, "debug")
			},
		},
		{
			name: "numbers and durations from text",
			env:  []string{"SBC_SIP_IDLE_TIMEOUT=30s", "SBC_SIP_MAX_HEADERS=64", "SBC_MEDIA_WEBRTC_PORT=40000", "SBC_SIP_MIN_SE=2m"},
			check: func(t *testing.T, c *Config) {
				equal(t, c.SIP.IdleTimeout, 30*time.Second)
				equal(t, c.SIP.MaxHeaders, 64)
				equal(t, c.Media.WebRTCPort, 40000)
				equal(t, c.SIP.MinSE, 2*time.Minute)
			},
		},
		{
			name: "listeners as JSON",
			env:  []string{`SBC_SIP_LISTENERS=[{"transport":"udp","addr":"127.0.0.1:5070"}]`},
			check: func(t *testing.T, c *Config) {
				equal(t, c.SIP.Listeners, []Listener{{Name: "udp", Transport: "udp", Addr: "127.0.0.1:5070", Symmetric: true}})
			},
		},
		{
			name: "a listener's symmetric from the environment",
			env:  []string{`SBC_SIP_LISTENERS=[{"name":"trunk","transport":"udp","addr":"127.0.0.1:5070","symmetric":false}]`},
			check: func(t *testing.T, c *Config) {
				equal(t, c.SIP.Listeners, []Listener{{Name: "trunk", Transport: "udp", Addr: "127.0.0.1:5070"}})
			},
		},
		{
			name: "trunks and routes as YAML, with item defaults",
			env: []string{
				"SBC_TRUNKS=[{name: pbx, uri: 'sip:192.0.2.10', trusted: true}]",
				"SBC_ROUTES=- {name: out, target: trunks, trunks: [pbx]}\n- {name: echo, target: echo}",
			},
			check: func(t *testing.T, c *Config) {
				equal(t, c.Trunks, []Trunk{{Name: "pbx", URI: "sip:192.0.2.10", Trusted: true,
					OptionsInterval: DefaultOptionsInterval, OptionsTimeout: DefaultOptionsTimeout,
					FailureThreshold: DefaultFailureThreshold, Media: MediaRTP, DTMF: DTMFRFC4733}})
				equal(t, c.Routes, []Route{{Name: "out", Target: TargetTrunks, Trunks: []string{"pbx"}}, {Name: "echo", Target: TargetEcho}})
			},
		},
		{
			name:  "empty list text empties the list",
			env:   []string{"SBC_CDR=", "SBC_ROUTES=[]"},
			check: func(t *testing.T, c *Config) { equal(t, len(c.CDR), 0); equal(t, len(c.Routes), 0) },
		},
		{
			name: "string lists comma-separated or as a list",
			env:  []string{"SBC_SIP_HEADER_WHITELIST= X-A, X-B,", `SBC_POLICY_BLACKLIST_URIS=["^sip:100@", "x,y"]`},
			check: func(t *testing.T, c *Config) {
				equal(t, c.SIP.HeaderWhitelist, []string{"X-A", "X-B"})
				equal(t, c.Policy.Blacklist.URIs, []string{"^sip:100@", "x,y"})
			},
		},
		{
			name: "environment wins over the file, the file over defaults",
			yaml: "node_id: from-file\nsip:\n  user_agent: file-ua\n  public_addr: file.example\n",
			env:  []string{"SBC_NODE_ID=from-env", "SBC_SIP_PUBLIC_ADDR=env.example"},
			check: func(t *testing.T, c *Config) {
				equal(t, c.NodeID, "from-env")
				equal(t, c.SIP.UserAgent, "file-ua")
				equal(t, c.SIP.PublicAddr, "env.example")
				equal(t, c.SIP.MaxHeaders, DefaultMaxHeaders)
			},
		},
		{
			name: "env list replaces a file list",
			yaml: "sip:\n  listeners: [{transport: tcp, addr: '127.0.0.1:5080'}]\n",
			env:  []string{`SBC_SIP_LISTENERS=[{"name":"x","transport":"ws","addr":"127.0.0.1:8081"}]`},
			check: func(t *testing.T, c *Config) {
				equal(t, c.SIP.Listeners, []Listener{{Name: "x", Transport: "ws", Addr: "127.0.0.1:8081", Symmetric: true}})
			},
		},
		{
			name:  "a later duplicate wins",
			env:   []string{"SBC_NODE_ID=first", "SBC_NODE_ID=second"},
			check: func(t *testing.T, c *Config) { equal(t, c.NodeID, "second") },
		},
		{
			name:  "other variables are ignored",
			env:   []string{"PATH=/bin", "SBCX_NODE_ID=x", "sbc_node_id=x", "NOEQUALS", "SBC_NODE_ID"},
			check: func(t *testing.T, c *Config) { equal(t, c, Default()) },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := ""
			if tt.yaml != "" {
				path = writeConfig(t, tt.yaml)
			}
			c, err := Load(path, tt.env)
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, c)
		})
	}
}

func TestEnvProblems(t *testing.T) {
	tests := []struct {
		name string
		env  []string
		want []string
	}{
		{"unknown variable", []string{"SBC_SIP_PUBLICADDR=x"}, []string{"SBC_SIP_PUBLICADDR: names no config key"}},
		{"a section is not one variable", []string{"SBC_SIP_TLS=x"}, []string{"SBC_SIP_TLS: names no config key"}},
		{"keys inside lists are not variables", []string{"SBC_TRUNKS_0_PASSWORD=x"}, []string{"SBC_TRUNKS_0_PASSWORD: names no config key"}},
		{
			"unknown key inside a list",
			[]string{`SBC_SIP_LISTENERS=[{"transport":"udp","addr":"127.0.0.1:5070","bogus":1}]`},
			[]string{"sip.listeners[0].bogus: unknown key (from SBC_SIP_LISTENERS)"},
		},
		{"list item not a mapping", []string{"SBC_ROUTES=[echo]"}, []string{"routes[0]: want a mapping"}},
		{"not a list", []string{"SBC_ROUTES={name: x}"}, []string{"routes: want a YAML or JSON list"}},
		{"not YAML", []string{"SBC_CDR=[{"}, []string{"cdr: parse as a YAML or JSON list"}},
		{"bad string list", []string{"SBC_SIP_HEADER_WHITELIST=[a"}, []string{"sip.header_whitelist: parse as a YAML"}},
		{"duration without unit", []string{"SBC_MEDIA_TIMEOUT=60"}, []string{"media.timeout: want a duration with a unit, such as 500ms, 30s or 5m (from SBC_MEDIA_TIMEOUT)"}},
		{"not a number", []string{"SBC_SIP_MAX_HEADERS=lots"}, []string{"sip.max_headers: want a whole number (from SBC_SIP_MAX_HEADERS)"}},
		{"wrong type inside an env list", []string{"SBC_TRUNKS=[{name: t, uri: 'sip:h', trusted: maybe}]"},
			[]string{"trunks[0].trusted: want true or false (from SBC_TRUNKS)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load("", tt.env)
			wantProblems(t, err, tt.want...)
		})
	}
}

func TestEnvKeys(t *testing.T) {
	keys := envKeys()
	want := map[string]string{
		"SBC_NODE_ID":                "node_id",
		"SBC_LOG_FORMAT":             "log.format",
		"SBC_SIP_LISTENERS":          "sip.listeners",
		"SBC_SIP_TLS_CERT_FILE":      "sip.tls.cert_file",
		"SBC_SIP_TLS_KEY_FILE":       "sip.tls.key_file",
		"SBC_SIP_PUBLIC_ADDR":        "sip.public_addr",
		"SBC_SIP_HEADER_WHITELIST":   "sip.header_whitelist",
		"SBC_MEDIA_RTP_PORTS":        "media.rtp_ports",
		"SBC_TRUNKS":                 "trunks",
		"SBC_ROUTES":                 "routes",
		"SBC_USERS":                  "users",
		"SBC_AUTH_REALM":             "auth.realm",
		"SBC_POLICY_BLACKLIST_CIDRS": "policy.blacklist.cidrs",
		"SBC_CDR":                    "cdr",
		"SBC_ADMIN_ADDR":             "admin.addr",
		"SBC_ADMIN_TOKEN":            "admin.token",
		"SBC_SIP_MAX_CONNS_PER_IP":   "sip.max_conns_per_ip",
		"SBC_SIP_HANDSHAKE_TIMEOUT":  "sip.handshake_timeout",
	}
	for name, path := range want {
		if got := keys[name].path; got != path {
			t.Errorf("%s overrides %q, want %q", name, got, path)
		}
	}
	for _, absent := range []string{"SBC_SIP", "SBC_SIP_TLS", "SBC_MEDIA", "SBC_TRUNKS_NAME"} {
		if _, ok := keys[absent]; ok {
			t.Errorf("%s is a variable; sections and list items are not", absent)
		}
	}
	for name, k := range keys {
		if EnvName(k.path) != name {
			t.Errorf("EnvName(%s) = %s, want %s", k.path, EnvName(k.path), name)
		}
	}
}
