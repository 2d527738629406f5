package cluster

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sbc-project/sbc/internal/app"
	"github.com/sbc-project/sbc/internal/config"
)

const (
	redisIP    = "127.0.0.15"
	carrierIP  = "127.0.0.16"
	attackerIP = "127.0.0.17"
	secret     = "cluster-test-secret-0123456789"
)

var nodeIPs = []string{"127.0.0.11", "127.0.0.12", "127.0.0.13"}

// node is one SBC of the cluster, in-process.
type node struct {
	id     string
	ip     string
	app    *app.App
	cfg    *config.Config
	closed bool
}

// nodeConfig is configs/cluster-node.yaml for node i (1-based) on loopback:
// WSS and UDP listeners, the cluster on redis, CDRs to dsn (none when
// empty), user bob, calls from the carrier's address to registered users.
func nodeConfig(t *testing.T, i int, redis, dsn string) *config.Config {
	t.Helper()
	cfg, err := config.Load(filepath.Join("..", "..", "configs", "cluster-node.yaml"),
		[]string{"SBC_CLUSTER_SECRET=" + secret})
	if err != nil {
		t.Fatal(err)
	}
	ip := nodeIPs[i-1]
	cfg.NodeID = "node-" + strconv.Itoa(i)
	cfg.SIP.Listeners = []config.Listener{
		{Name: "wss", Transport: "wss", Addr: ip + ":0", Symmetric: true},
		{Name: "udp", Transport: "udp", Addr: net.JoinHostPort(ip, strconv.Itoa(freePort(t, "udp", ip))), Symmetric: true},
	}
	cfg.SIP.TLS = config.TLS{} // self-signed
	cfg.SIP.PublicAddr = ip
	cfg.SIP.OverloadDelay = 0 // the race detector on two busy cores is not overload
	cfg.Media.BindIP, cfg.Media.PublicIP = ip, ip
	cfg.Cluster.Redis.Addrs = []string{redis}
	cfg.Cluster.InternalAddr = net.JoinHostPort(ip, strconv.Itoa(freePort(t, "tcp", ip)))
	cfg.Cluster.Heartbeat, cfg.Cluster.NodeTTL = 200*time.Millisecond, time.Second
	cfg.Auth.HMACSecret = ""
	cfg.Users = []config.User{{Username: "bob", Password: "bob-secret"}, {Username: "carol", Password: "carol-secret"}}
	cfg.Trunks[0].URI = "sip:" + carrierIP + ":5060"
	cfg.Trunks[0].OptionsInterval = 0
	cfg.Routes[0].Match.SourceCIDRs = []string{carrierIP + "/32"}
	dir := t.TempDir()
	cfg.CDRSpool = filepath.Join(dir, "spool")
	cfg.CDR = nil
	if dsn != "" {
		cfg.CDR = []config.CDRWriter{{Name: "pg", Type: config.CDRPostgres, DSN: dsn}}
	}
	cfg.Policy.Bans.File = filepath.Join(dir, "bans.json")
	cfg.Admin.Addr = ip + ":0"
	return cfg
}

// startNode runs cfg; it is closed when the test ends unless closed before.
func startNode(t *testing.T, cfg *config.Config) *node {
	t.Helper()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("config of %s: %v", cfg.NodeID, err)
	}
	log := slog.New(slog.NewTextHandler(testWriter{t, cfg.NodeID}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	a, err := app.New(cfg, log, app.Options{})
	if err != nil {
		t.Fatal(err)
	}
	n := &node{id: cfg.NodeID, ip: cfg.SIP.PublicAddr, app: a, cfg: cfg}
	t.Cleanup(func() { n.close(t) })
	return n
}

func (n *node) close(t *testing.T) {
	if n.closed {
		return
	}
	n.closed = true
	if err := n.app.Close(); err != nil {
		t.Errorf("close %s: %v", n.id, err)
	}
}

func (n *node) addr(t *testing.T, listener string) string {
	t.Helper()
	ap, ok := n.app.Addr(listener)
	if !ok {
		t.Fatalf("%s has no %s listener", n.id, listener)
	}
	return ap.String()
}

// testWriter sends a node's log lines to the test log, prefixed.
type testWriter struct {
	t    *testing.T
	node string
}

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(w.node + ": " + strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func freePort(t *testing.T, network, ip string) int {
	t.Helper()
	switch network {
	case "udp":
		c, err := net.ListenPacket("udp", net.JoinHostPort(ip, "0"))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.LocalAddr().(*net.UDPAddr).Port
	default:
		l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		return l.Addr().(*net.TCPAddr).Port
	}
}

// evenFreePort is a free even UDP port on ip whose odd neighbour is free
// too (SIPp echoes RTP on it and RTCP on the next).
func evenFreePort(t *testing.T, ip string) int {
	t.Helper()
	for range 50 {
		p := freePort(t, "udp", ip)
		if p%2 != 0 {
			continue
		}
		if c, err := net.ListenPacket("udp", net.JoinHostPort(ip, strconv.Itoa(p+1))); err == nil {
			c.Close()
			return p
		}
	}
	t.Fatal("no free even port on " + ip)
	return 0
}

func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// pgRecord is a CDR row as PostgreSQL holds it.
type pgRecord struct {
	NodeID, Disposition, Trunk, FromURI, SrcAddr string
	AToB, BToA                                   int64
}

func pgRecords(t *testing.T, dsn string) []pgRecord {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, "SELECT node_id, disposition, trunk, from_uri, src_addr, a_to_b_packets, b_to_a_packets FROM cdr ORDER BY start_time")
	if err != nil {
		t.Fatal(err)
	}
	recs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (pgRecord, error) {
		var x pgRecord
		err := r.Scan(&x.NodeID, &x.Disposition, &x.Trunk, &x.FromURI, &x.SrcAddr, &x.AToB, &x.BToA)
		return x, err
	})
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

func (r pgRecord) String() string {
	return fmt.Sprintf("%s %s trunk=%q from=%s src=%s packets %d/%d", r.NodeID, r.Disposition, r.Trunk, r.FromURI, r.SrcAddr, r.AToB, r.BToA)
}
