package config

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestConfigsLoadAndValidate loads every example in configs/. Their
// certificate paths (/etc/sbc/tls/...) do not exist on a test machine, so
// they are validated once with a generated pair given through the
// environment (which must leave no problem at all), and once as written,
// where only the certificate files (and a cluster secret, which comes from
// the environment) may be reported.
func TestConfigsLoadAndValidate(t *testing.T) {
	files, err := filepath.Glob("../../configs/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 3 {
		t.Fatalf("found %d files in configs/, want at least default, pbx-front and carrier", len(files))
	}
	certFile, keyFile := certPair(t, t.TempDir(), time.Hour)
	env := []string{"SBC_SIP_TLS_CERT_FILE=" + certFile, "SBC_SIP_TLS_KEY_FILE=" + keyFile}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			env := env
			if data, err := os.ReadFile(file); err == nil && strings.Contains(string(data), "\ncluster:") {
				// The cluster secret comes from the environment.
				env = append(slices.Clone(env), "SBC_CLUSTER_SECRET=0123456789abcdef-example")
			}
			c, err := Load(file, env)
			if err != nil {
				t.Fatalf("Load:\n%v", err)
			}
			if err := c.Validate(); err != nil {
				t.Errorf("Validate with a generated certificate:\n%v", err)
			}

			c, err = Load(file, nil)
			if err != nil {
				t.Fatalf("Load without overrides:\n%v", err)
			}
			var ps Problems
			if err := c.Validate(); errors.As(err, &ps) {
				for _, p := range ps {
					if !strings.HasPrefix(p.Key, "sip.tls.") && p.Key != "cluster.secret" {
						t.Errorf("problem not about the certificate files: %s", p)
					}
				}
			} else if err != nil {
				t.Errorf("Validate: %v (%T), want nil or Problems", err, err)
			}
		})
	}
}

// TestConfigsExamples checks what the examples are meant to show.
func TestConfigsExamples(t *testing.T) {
	load := func(t *testing.T, name string) *Config {
		t.Helper()
		c, err := Load(filepath.Join("../../configs", name), nil)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	t.Run("pbx-front", func(t *testing.T) {
		c := load(t, "pbx-front.yaml")
		if len(c.Trunks) != 1 || !c.Trunks[0].Trusted || c.Trunks[0].OptionsInterval <= 0 {
			t.Errorf("trunks %+v, want one trusted PBX with OPTIONS keepalive", c.Trunks)
		}
		wantTargets(t, c, map[string]string{"pbx-to-web": TargetRegistered, "echo": TargetEcho, "web-to-pbx": TargetTrunks})
		wantSymmetric(t, c, map[string]bool{"udp": false, "wss": true, "tls": true})
	})
	t.Run("carrier", func(t *testing.T) {
		c := load(t, "carrier.yaml")
		if len(c.Trunks) != 2 || c.Trunks[1].Transport() != "tcp" {
			t.Errorf("trunks %+v, want two, the second over tcp", c.Trunks)
		}
		for _, tr := range c.Trunks {
			if !tr.Trusted || len(tr.PassHeaders) > 0 {
				t.Errorf("trunk %s: trusted %v, passes %v; want trusted (in the trust domain) and no whitelisted identity headers",
					tr.Name, tr.Trusted, tr.PassHeaders)
			}
		}
		if id := c.Trunks[0].Identity; id.Assert != IdentityAssertUser || id.From != IdentityFromAsserted || id.Domain == "" {
			t.Errorf("carrier-a identity %+v, want the user asserted and written in From at a domain", id)
		}
		wantTargets(t, c, map[string]string{"pstn-to-web": TargetRegistered, "web-to-pstn": TargetTrunks})
		wantSymmetric(t, c, map[string]bool{"carrier-udp": false, "wss": true})
		for _, r := range c.Routes {
			if r.Name == "web-to-pstn" && len(r.Trunks) != 2 {
				t.Errorf("web-to-pstn trunks %v, want both for failover", r.Trunks)
			}
		}
	})
}

// wantSymmetric checks the listeners' symmetric setting: false where a
// trunk is answered (RFC 3261 18.2.2), true where users behind NAT are.
func wantSymmetric(t *testing.T, c *Config, want map[string]bool) {
	t.Helper()
	got := map[string]bool{}
	for _, l := range c.SIP.Listeners {
		got[l.Name] = l.Symmetric
	}
	for name, sym := range want {
		if s, ok := got[name]; !ok || s != sym {
			t.Errorf("listener %s symmetric %v (present %v), want %v", name, s, ok, sym)
		}
	}
}

func wantTargets(t *testing.T, c *Config, want map[string]string) {
	t.Helper()
	got := map[string]string{}
	for _, r := range c.Routes {
		got[r.Name] = r.Target
	}
	for name, target := range want {
		if got[name] != target {
			t.Errorf("route %s has target %q, want %q", name, got[name], target)
		}
	}
}
