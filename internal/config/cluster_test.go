package config

import (
	"strings"
	"testing"
	"time"
)

func goodCluster(c *Config) {
	c.Cluster = Cluster{Redis: ClusterRedis{Addrs: []string{"10.0.0.7:6379"}}, InternalAddr: "10.0.0.11:5070",
		Secret: "0123456789abcdef"}
}

func TestValidateCluster(t *testing.T) {
	with := func(f func(c *Config)) func(c *Config) {
		return func(c *Config) { goodCluster(c); f(c) }
	}
	runValidateCases(t, []validateCase{
		{"no cluster", func(c *Config) {}, nil},
		{"cluster", goodCluster, nil},
		{"redis by name", with(func(c *Config) { c.Cluster.Redis.Addrs = []string{"redis.internal:6379"} }), nil},
		{"only a secret", func(c *Config) { c.Cluster.Secret = "0123456789abcdef" }, nil},
		{"only redis", func(c *Config) { c.Cluster.Redis.Addrs = []string{"10.0.0.7:6379"} },
			[]string{"cluster.internal_addr: required in a cluster", "cluster.secret: required in a cluster"}},
		{"redis without port", with(func(c *Config) { c.Cluster.Redis.Addrs = []string{"10.0.0.7"} }), []string{"cluster.redis.addrs[0]: want host:port"}},
		{"short secret", with(func(c *Config) { c.Cluster.Secret = "short" }), []string{"cluster.secret: required in a cluster: at least 16 bytes"}},
		{"internal addr unspecified", with(func(c *Config) { c.Cluster.InternalAddr = "0.0.0.0:5070" }), []string{"cluster.internal_addr: want the address peers reach"}},
		{"internal addr by name", with(func(c *Config) { c.Cluster.InternalAddr = "node1:5070" }), []string{"cluster.internal_addr: want ip:port"}},
		{"ttl below two heartbeats", with(func(c *Config) { c.Cluster.Heartbeat, c.Cluster.NodeTTL = time.Second, 1500*time.Millisecond }),
			[]string{"cluster.node_ttl: want at least two heartbeats (2s)"}},
		{"negative timeout", with(func(c *Config) { c.Cluster.Redis.ReadTimeout = -time.Second }), []string{"cluster.redis.read_timeout: want a positive duration"}},
		{"ca without tls", with(func(c *Config) { c.Cluster.Redis.CAFile = "/etc/ssl/redis.pem" }), []string{"cluster.redis.ca_file: set only with cluster.redis.tls: true"}},
		{"prefix with a brace", with(func(c *Config) { c.Cluster.Redis.KeyPrefix = "sbc{1}:" }), []string{"cluster.redis.key_prefix: must not contain spaces, braces"}},
		{"listener named cluster", with(func(c *Config) { c.SIP.Listeners[0].Name = "cluster" }), []string{"sip.listeners[0].name: is the cluster's own listener"}},
		{"negative db", with(func(c *Config) { c.Cluster.Redis.DB = -1 }), []string{"cluster.redis.db: want 0 or more"}},
		{"replicated calls", with(func(c *Config) {
			c.Cluster.ReplicateCalls, c.Cluster.TakeoverCommand = true, []string{"/usr/local/bin/move-vip", "10.0.0.10/24"}
		}), nil},
		{"replicated calls without a cluster", func(c *Config) { c.Cluster.ReplicateCalls = true },
			[]string{"cluster.replicate_calls: set only in a cluster"}},
		{"takeover command without replication", with(func(c *Config) { c.Cluster.TakeoverCommand = []string{"/bin/true"} }),
			[]string{"cluster.takeover_command: set only with cluster.replicate_calls: true"}},
		{"takeover command empty program", with(func(c *Config) {
			c.Cluster.ReplicateCalls, c.Cluster.TakeoverCommand = true, []string{""}
		}), []string{"cluster.takeover_command[0]: want the program to run"}},
		{"negative takeover timeout", with(func(c *Config) { c.Cluster.ReplicateCalls, c.Cluster.TakeoverTimeout = true, -time.Second }),
			[]string{"cluster.takeover_timeout: want a positive duration"}},
	})
}

// The secret never shows: not in a problem, not in the redacted config.
func TestClusterSecretRedacted(t *testing.T) {
	c := Default()
	goodCluster(c)
	c.Cluster.Secret = "hunter2-hunter2-hunter2"
	c.Cluster.Redis.Password = "redis-password-1"
	red := c.Redacted()["cluster"].(map[string]any)
	if red["secret"] != "(redacted)" || red["redis"].(map[string]any)["password"] != "(redacted)" {
		t.Fatalf("redacted cluster: %v", red)
	}
	c.Cluster.Secret = "hunter2\x01hunter2-hunter2"
	if err := c.Validate(); err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("Validate = %v: want a problem that does not show the secret", err)
	}
}

// Every key is reachable from the environment (SBC_CLUSTER_...).
func TestClusterFromEnvironment(t *testing.T) {
	c, err := Load("", []string{"SBC_CLUSTER_REDIS_ADDRS=10.0.0.7:6379,10.0.0.8:6379", "SBC_CLUSTER_INTERNAL_ADDR=10.0.0.11:5070",
		"SBC_CLUSTER_SECRET=0123456789abcdef", "SBC_CLUSTER_REDIS_KEY_PREFIX=east:", "SBC_CLUSTER_HEARTBEAT=2s",
		"SBC_CLUSTER_REPLICATE_CALLS=true", "SBC_CLUSTER_TAKEOVER_COMMAND=/usr/local/bin/move-vip,10.0.0.10/24"})
	if err != nil {
		t.Fatal(err)
	}
	cl := c.Cluster
	if !cl.Enabled() || len(cl.Redis.Addrs) != 2 || cl.Redis.Addrs[1] != "10.0.0.8:6379" || cl.Redis.KeyPrefix != "east:" ||
		cl.Heartbeat != 2*time.Second || cl.WithDefaults().NodeTTL != 6*time.Second ||
		!cl.ReplicateCalls || len(cl.TakeoverCommand) != 2 || cl.TakeoverCommand[1] != "10.0.0.10/24" {
		t.Fatalf("cluster from the environment: %+v", cl)
	}
}
