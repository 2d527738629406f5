package cluster

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Spec is what a node needs to join a cluster, translated from the
// config's cluster section by internal/app.
type Spec struct {
	NodeID       string
	Addrs        []string
	Username     string
	Password     string
	DB           int
	TLS          *tls.Config // nil: plain TCP
	KeyPrefix    string
	InternalAddr string
	Heartbeat    time.Duration
	NodeTTL      time.Duration
	DialTimeout  time.Duration
	ReadTimeout  time.Duration
	WriteTimeout time.Duration
}

// TLSConfig builds the TLS configuration toward Redis: verified against
// the PEM certificates in caFile (empty: the system roots) for serverName
// (empty: the host of the address dialled).
func TLSConfig(caFile, serverName string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: serverName}
	if caFile == "" {
		return cfg, nil
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("cluster.redis.ca_file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("cluster.redis.ca_file: %s: no PEM certificate in it", caFile)
	}
	cfg.RootCAs = pool
	return cfg, nil
}

// Local is what the node reports about itself with each heartbeat.
type Local struct {
	Calls    func() int  // calls in progress; nil: 0
	Draining func() bool // nil: never
}

// Node is this node's membership: its heartbeat, the Redis health alarm,
// and the view of its peers.
type Node struct {
	spec    Spec
	log     *slog.Logger
	rdb     redis.UniversalClient
	local   Local
	started time.Time

	up       atomic.Bool // Redis answered the last command
	known    atomic.Bool // up has been set once (the first failure logs)
	failures atomic.Uint64
	badData  atomic.Bool // the last heartbeat met a key of the wrong type

	mu       sync.Mutex
	onResync []func(context.Context)

	peers atomic.Pointer[[]Peer] // the last heartbeat's view; nil: unknown
}

// New connects lazily: it returns at once, and the first heartbeat (Run)
// tells whether Redis answers.
func New(spec Spec, local Local, log *slog.Logger) *Node {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	opt := &redis.UniversalOptions{
		Addrs:        spec.Addrs,
		Username:     spec.Username,
		Password:     spec.Password,
		DB:           spec.DB,
		TLSConfig:    spec.TLS,
		DialTimeout:  spec.DialTimeout,
		ReadTimeout:  spec.ReadTimeout,
		WriteTimeout: spec.WriteTimeout,
		// A down Redis must cost a heartbeat, not a stall: one attempt,
		// the next heartbeat is the retry.
		MaxRetries: -1,
		ClientName: "sbc-" + spec.NodeID,
		// RESP2 keeps the client off commands (HELLO 3, CLIENT
		// SETINFO) an older Redis or a proxy refuses.
		Protocol:              2,
		DisableIdentity:       true,
		ContextTimeoutEnabled: true,
	}
	return &Node{spec: spec, log: log.With("component", "cluster"), rdb: redis.NewUniversalClient(opt), local: local, started: time.Now()}
}

// Close closes the Redis client.
func (n *Node) Close() error { return n.rdb.Close() }

// Client is the Redis client, for the parts of the SBC that share state.
func (n *Node) Client() redis.UniversalClient { return n.rdb }

// ID is this node's id.
func (n *Node) ID() string { return n.spec.NodeID }

// Key returns the full Redis key of name under the configured prefix.
func (n *Node) Key(name string) string { return n.spec.KeyPrefix + name }

// RedisUp reports whether Redis answered the node's last command.
func (n *Node) RedisUp() bool { return n.up.Load() }

// Failures is how many heartbeats Redis did not take.
func (n *Node) Failures() uint64 { return n.failures.Load() }

// OnResync registers f to run each time Redis answers again after it did
// not (and once after the first successful heartbeat): the moment to
// write local state Redis may have missed and read what peers wrote.
func (n *Node) OnResync(f func(context.Context)) {
	n.mu.Lock()
	n.onResync = append(n.onResync, f)
	n.mu.Unlock()
}

// Run beats until ctx ends, then removes the node's entry (a clean exit
// leaves no ghost for its peers). Close the client after Run and every
// sharing part have returned.
func (n *Node) Run(ctx context.Context) {
	t := time.NewTicker(n.spec.Heartbeat)
	defer t.Stop()
	n.Beat(ctx)
	for {
		select {
		case <-ctx.Done():
			n.leave()
			return
		case <-t.C:
			n.Beat(ctx)
		}
	}
}

// Beat writes the node's entry once and updates the Redis alarm.
func (n *Node) Beat(ctx context.Context) {
	now := time.Now()
	ms := now.UnixMilli()
	key := n.Key("node:" + n.spec.NodeID)
	cctx, cancel := context.WithTimeout(ctx, n.spec.Heartbeat+n.spec.WriteTimeout)
	defer cancel()
	_, err := n.rdb.TxPipelined(cctx, func(p redis.Pipeliner) error {
		p.HSet(cctx, key, "internal_addr", n.spec.InternalAddr, "state", n.state(),
			"calls", n.calls(), "started", n.started.UnixMilli(), "updated", ms)
		p.PExpire(cctx, key, n.spec.NodeTTL)
		p.ZAdd(cctx, n.Key("nodes"), redis.Z{Score: float64(ms), Member: n.spec.NodeID})
		// Members silent for ten lifetimes are ghosts of nodes that
		// died: their hashes expired long ago.
		p.ZRemRangeByScore(cctx, n.Key("nodes"), "-inf", strconv.FormatInt(ms-10*n.spec.NodeTTL.Milliseconds(), 10))
		return nil
	})
	if isWrongType(err) {
		// Redis answered: bad data, not an outage. Said once until a
		// heartbeat goes through again.
		if !n.badData.Swap(true) {
			n.log.Error("cluster: heartbeat not written: a Redis key holds the wrong type", "key", key, "index", n.Key("nodes"), "err", err)
		}
		err = nil
	} else if err == nil {
		n.badData.Store(false)
	}
	n.observe(ctx, err)
	if err != nil {
		n.peers.Store(nil) // stale: route to no peer until Redis answers
		return
	}
	if peers, err := n.Peers(cctx); err == nil {
		n.peers.Store(&peers)
	} else {
		n.peers.Store(nil)
	}
}

// activePeers are the other nodes, active, as the last heartbeat read them,
// without those whose entry has expired since (node_ttl after their last
// heartbeat, by the entry's TTL, so clocks need not agree): a node that
// died is left out when Redis drops it, not up to a heartbeat later.
func (n *Node) activePeers() []Peer {
	p := n.peers.Load()
	if p == nil {
		return nil
	}
	var out []Peer
	now := time.Now()
	for _, x := range *p {
		if !x.Self && x.State == StateActive && now.Before(x.expires) {
			out = append(out, x)
		}
	}
	return out
}

// observe records the outcome of a command on Redis: the alarm goes up on
// the first failure and down on the first success after, each with one
// log line; a return runs the resync hooks.
func (n *Node) observe(ctx context.Context, err error) {
	if err != nil && ctx.Err() != nil {
		return // shutting down, not a Redis fault
	}
	if err != nil {
		n.failures.Add(1)
		if n.up.Swap(false) || !n.known.Swap(true) {
			n.log.Error("cluster: Redis unreachable; serving with local state", "redis", n.spec.Addrs, "err", err)
		}
		return
	}
	wasUp := n.up.Swap(true)
	first := !n.known.Swap(true)
	if wasUp {
		return
	}
	if !first {
		n.log.Warn("cluster: Redis reachable again; resynchronizing", "redis", n.spec.Addrs)
	} else {
		n.log.Info("cluster: joined", "node", n.spec.NodeID, "redis", n.spec.Addrs, "internal_addr", n.spec.InternalAddr)
	}
	n.mu.Lock()
	hooks := slices.Clone(n.onResync)
	n.mu.Unlock()
	for _, f := range hooks {
		f(ctx)
	}
}

func (n *Node) state() string {
	if n.local.Draining != nil && n.local.Draining() {
		return StateDraining
	}
	return StateActive
}

func (n *Node) calls() int {
	if n.local.Calls == nil {
		return 0
	}
	return n.local.Calls()
}

// leave deletes the node's entry, bounded by the write timeout.
func (n *Node) leave() {
	ctx, cancel := context.WithTimeout(context.Background(), n.spec.WriteTimeout)
	defer cancel()
	_, err := n.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Del(ctx, n.Key("node:"+n.spec.NodeID))
		p.ZRem(ctx, n.Key("nodes"), n.spec.NodeID)
		return nil
	})
	if err != nil && !errors.Is(err, redis.ErrClosed) {
		n.log.Warn("cluster: could not remove this node's entry; peers drop it after node_ttl", "err", err)
	}
}

// go-redis logs its connection pool's dial failures on its own; the node
// logs the outage once itself (observe), so the library's lines go.
func init() { redis.SetLogger(quietLogger{}) }

type quietLogger struct{}

func (quietLogger) Printf(context.Context, string, ...any) {}
