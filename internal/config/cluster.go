package config

import (
	"net"
	"strconv"
	"strings"
	"time"
)

// Cluster defaults.
const (
	DefaultClusterKeyPrefix    = "sbc:"           // cluster.redis.key_prefix
	DefaultClusterRedisTimeout = 2 * time.Second  // cluster.redis.dial_timeout, read_timeout, write_timeout
	DefaultClusterHeartbeat    = time.Second      // cluster.heartbeat
	MinClusterSecret           = 16               // bytes of cluster.secret
	DefaultTakeoverTimeout     = 10 * time.Second // cluster.takeover_timeout
)

// ClusterListener names the TCP listener a cluster node binds on
// cluster.internal_addr for SIP from its peers; no sip.listeners entry may
// take the name.
const ClusterListener = "cluster"

// Cluster makes this node one of several sharing state in Redis. The zero
// value (no cluster section) is a single node that needs no Redis.
type Cluster struct {
	Redis ClusterRedis `mapstructure:"redis"`
	// InternalAddr is the ip:port other nodes send this node SIP on
	// (node-to-node hops), advertised in Redis with the heartbeat.
	InternalAddr string `mapstructure:"internal_addr"`
	// Secret authenticates node-to-node requests; the same on every node,
	// at least MinClusterSecret bytes (SBC_CLUSTER_SECRET).
	Secret string `mapstructure:"secret"`
	// Heartbeat is how often the node refreshes its entry in Redis.
	// Default DefaultClusterHeartbeat.
	Heartbeat time.Duration `mapstructure:"heartbeat"`
	// NodeTTL is how long a node's entry outlives its last heartbeat: a
	// node silent this long is gone for its peers. Default 3 heartbeats.
	NodeTTL time.Duration `mapstructure:"node_ttl"`
	// ReplicateCalls keeps each answered call's state in Redis at each
	// change, so that a peer continues the call if this node dies, and
	// makes this node take over the calls of a peer that died (issue 19).
	// Default false: a node pays nothing for it.
	ReplicateCalls bool `mapstructure:"replicate_calls"`
	// TakeoverCommand is run (argv, no shell; SBC_DEAD_NODE and
	// SBC_NODE_ID in its environment) when this node takes over a dead
	// peer's calls, before it restores them: it moves the service
	// address here (keepalived, a cloud floating IP). Empty: none.
	TakeoverCommand []string `mapstructure:"takeover_command"`
	// TakeoverTimeout bounds TakeoverCommand. Default
	// DefaultTakeoverTimeout.
	TakeoverTimeout time.Duration `mapstructure:"takeover_timeout"`
}

// ClusterRedis is how a node reaches Redis (or Valkey).
type ClusterRedis struct {
	// Addrs are host:port addresses of the Redis server (one), or of a
	// Redis Cluster's seed nodes (several).
	Addrs    []string `mapstructure:"addrs"`
	Username string   `mapstructure:"username"`
	Password string   `mapstructure:"password"`
	// DB is the database number (single server only). Default 0.
	DB int `mapstructure:"db"`
	// TLS turns TLS on toward Redis, verified against CAFile (else the
	// system roots) for ServerName (else the address's host).
	TLS        bool   `mapstructure:"tls"`
	CAFile     string `mapstructure:"ca_file"`
	ServerName string `mapstructure:"server_name"`
	// KeyPrefix starts every key the SBC writes, so several clusters can
	// share one Redis. Default DefaultClusterKeyPrefix.
	KeyPrefix string `mapstructure:"key_prefix"`
	// Timeouts of one connection attempt and one command. Default
	// DefaultClusterRedisTimeout each.
	DialTimeout  time.Duration `mapstructure:"dial_timeout"`
	ReadTimeout  time.Duration `mapstructure:"read_timeout"`
	WriteTimeout time.Duration `mapstructure:"write_timeout"`
}

// Enabled reports whether the node is in a cluster: Redis's address or
// the internal address is set (the secret alone, from a shared
// environment, is not).
func (c Cluster) Enabled() bool { return len(c.Redis.Addrs) > 0 || c.InternalAddr != "" }

// WithDefaults returns c with every zero duration and the key prefix set
// to their defaults.
func (c Cluster) WithDefaults() Cluster {
	if c.Heartbeat == 0 {
		c.Heartbeat = DefaultClusterHeartbeat
	}
	if c.NodeTTL == 0 {
		c.NodeTTL = 3 * c.Heartbeat
	}
	if c.TakeoverTimeout == 0 {
		c.TakeoverTimeout = DefaultTakeoverTimeout
	}
	r := &c.Redis
	if r.KeyPrefix == "" {
		r.KeyPrefix = DefaultClusterKeyPrefix
	}
	for _, d := range []*time.Duration{&r.DialTimeout, &r.ReadTimeout, &r.WriteTimeout} {
		if *d == 0 {
			*d = DefaultClusterRedisTimeout
		}
	}
	return c
}

// validate checks the cluster section; nothing when it is absent.
func (c Cluster) validate(ps *Problems) {
	c.validateTakeover(ps)
	if !c.Enabled() {
		return
	}
	if len(c.Redis.Addrs) == 0 {
		ps.add("cluster.redis.addrs", "", "required in a cluster: the Redis server's host:port, such as 10.0.0.7:6379")
	}
	for i, a := range c.Redis.Addrs {
		host, port, err := net.SplitHostPort(a)
		if n, perr := strconv.Atoi(port); err != nil || perr != nil || n < 1 || n > 65535 || host == "" {
			ps.add("cluster.redis.addrs["+strconv.Itoa(i)+"]", a, "want host:port, such as 10.0.0.7:6379")
		}
	}
	if c.Redis.DB < 0 {
		ps.add("cluster.redis.db", strconv.Itoa(c.Redis.DB), "want 0 or more")
	}
	if hasControl(c.Redis.KeyPrefix) || strings.ContainsAny(c.Redis.KeyPrefix, " \t{}") {
		ps.add("cluster.redis.key_prefix", c.Redis.KeyPrefix, "must not contain spaces, braces or control characters")
	}
	if c.Redis.CAFile != "" && !c.Redis.TLS {
		ps.add("cluster.redis.ca_file", c.Redis.CAFile, "set only with cluster.redis.tls: true")
	}
	if c.InternalAddr == "" {
		ps.add("cluster.internal_addr", "", "required in a cluster: the ip:port peers send this node SIP on, such as 10.0.0.11:5070")
	} else if ap, err := parseBindAddr(c.InternalAddr); err != nil {
		ps.add("cluster.internal_addr", c.InternalAddr, err.Error())
	} else if ap.Addr().IsUnspecified() || ap.Port() == 0 {
		ps.add("cluster.internal_addr", c.InternalAddr, "want the address peers reach this node at: a specific IP and port")
	}
	if len(c.Secret) < MinClusterSecret {
		ps.add("cluster.secret", "(redacted)", "required in a cluster: at least "+strconv.Itoa(MinClusterSecret)+" bytes, the same on every node (SBC_CLUSTER_SECRET)")
	} else if hasControl(c.Secret) {
		ps.add("cluster.secret", "(redacted)", "must not contain control characters")
	}
	for _, k := range []struct {
		name string
		d    time.Duration
	}{{"heartbeat", c.Heartbeat}, {"node_ttl", c.NodeTTL}, {"redis.dial_timeout", c.Redis.DialTimeout},
		{"redis.read_timeout", c.Redis.ReadTimeout}, {"redis.write_timeout", c.Redis.WriteTimeout}} {
		if k.d < 0 {
			ps.add("cluster."+k.name, k.d.String(), "want a positive duration (0: the default)")
		}
	}
	d := c.WithDefaults()
	if d.NodeTTL < 2*d.Heartbeat {
		ps.add("cluster.node_ttl", d.NodeTTL.String(), "want at least two heartbeats ("+(2*d.Heartbeat).String()+")")
	}
}

// validateTakeover checks the keys of calls that survive their node.
func (c Cluster) validateTakeover(ps *Problems) {
	if c.ReplicateCalls && !c.Enabled() {
		ps.add("cluster.replicate_calls", "true", "set only in a cluster (cluster.redis.addrs): the calls' states live in Redis")
	}
	if len(c.TakeoverCommand) > 0 && !c.ReplicateCalls {
		ps.add("cluster.takeover_command", strings.Join(c.TakeoverCommand, " "), "set only with cluster.replicate_calls: true")
	} else if len(c.TakeoverCommand) > 0 && c.TakeoverCommand[0] == "" {
		ps.add("cluster.takeover_command[0]", "", "want the program to run, such as /usr/local/bin/move-vip")
	}
	if c.TakeoverTimeout < 0 {
		ps.add("cluster.takeover_timeout", c.TakeoverTimeout.String(), "want a positive duration (0: the default)")
	}
}
