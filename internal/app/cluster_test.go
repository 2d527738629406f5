package app

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/sbc-project/sbc/internal/config"
	"github.com/sbc-project/sbc/policy"
	"github.com/sbc-project/sbc/test/redistest"
)

const testClusterSecret = "0123456789abcdef-test"

func clusterApp(t *testing.T, id, redisAddr, internalIP string) *App {
	t.Helper()
	ln, err := net.Listen("tcp", internalIP+":0")
	if err != nil {
		t.Fatal(err)
	}
	internal := ln.Addr().String()
	ln.Close()
	c := testConfig()
	c.NodeID = id
	c.Admin.Addr = "127.0.0.1:0"
	c.Cluster = config.Cluster{Redis: config.ClusterRedis{Addrs: []string{redisAddr}, KeyPrefix: "apptest:"},
		InternalAddr: internal, Secret: testClusterSecret, Heartbeat: 50 * time.Millisecond, NodeTTL: 500 * time.Millisecond}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	a, err := New(c, slog.New(slog.DiscardHandler), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}

// adminGet fetches path from a's admin server.
func adminGet(t *testing.T, a *App, path string) (int, string) {
	t.Helper()
	addr, ok := a.AdminAddr()
	if !ok {
		t.Fatal("no admin server")
	}
	resp, err := http.Get("http://" + addr.String() + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// clusterNodes is "id/state,..." as a's /api/v1/cluster lists them.
func clusterNodes(t *testing.T, a *App) (string, bool) {
	t.Helper()
	code, body := adminGet(t, a, "/api/v1/cluster")
	if code != http.StatusOK {
		t.Fatalf("/api/v1/cluster: %d %s", code, body)
	}
	var st struct {
		RedisUp bool `json:"redis_up"`
		Nodes   []struct{ ID, State string }
	}
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	var ids []string
	for _, n := range st.Nodes {
		ids = append(ids, n.ID+"/"+n.State)
	}
	return strings.Join(ids, ","), st.RedisUp
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Two nodes on one Redis list each other on the admin API; a draining
// node is seen draining by its peer, a closed one leaves; Redis killed
// raises the alarm metric while the node stays ready, and clears when
// Redis returns.
func TestClusterNodesOnAdminAPI(t *testing.T) {
	r := redistest.Start(t, "127.0.46.1")
	a1 := clusterApp(t, "node-1", r.Addr, "127.0.46.11")
	a2 := clusterApp(t, "node-2", r.Addr, "127.0.46.12")
	eventually(t, "both nodes listed by node 2", func() bool {
		ids, up := clusterNodes(t, a2)
		return up && ids == "node-1/active,node-2/active"
	})
	if _, body := adminGet(t, a2, "/metrics"); !strings.Contains(body, "sbc_cluster_redis_up 1") {
		t.Fatalf("metrics without sbc_cluster_redis_up 1:\n%s", grepLines(body, "cluster"))
	}

	a1.Drain()
	eventually(t, "node 1 draining for node 2", func() bool {
		ids, _ := clusterNodes(t, a2)
		return ids == "node-1/draining,node-2/active"
	})
	if err := a1.Close(); err != nil {
		t.Fatal(err)
	}
	if ids, _ := clusterNodes(t, a2); ids != "node-2/active" {
		t.Fatalf("after node 1 closed, node 2 lists %s", ids)
	}

	r.Stop()
	eventually(t, "the Redis alarm", func() bool {
		_, body := adminGet(t, a2, "/metrics")
		return strings.Contains(body, "sbc_cluster_redis_up 0")
	})
	if code, body := adminGet(t, a2, "/readyz"); code != http.StatusOK || !strings.Contains(body, "serving with local state") {
		t.Fatalf("/readyz with Redis down: %d %s", code, body)
	}
	if ids, up := clusterNodes(t, a2); up || ids != "node-2/active" {
		t.Fatalf("with Redis down node 2 lists %s (redis_up %v)", ids, up)
	}
	if err := r.Start(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the alarm to clear", func() bool {
		ids, up := clusterNodes(t, a2)
		return up && ids == "node-2/active"
	})
}

// A node started while Redis is down starts and serves, with the alarm up.
func TestClusterNodeStartsWithoutRedis(t *testing.T) {
	r := redistest.Start(t, "127.0.46.1")
	r.Stop()
	a := clusterApp(t, "node-1", r.Addr, "127.0.46.11")
	eventually(t, "the Redis alarm", func() bool {
		_, body := adminGet(t, a, "/metrics")
		return strings.Contains(body, "sbc_cluster_redis_up 0")
	})
	if code, _ := adminGet(t, a, "/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz: %d", code)
	}
}

func TestSingleNodeHasNoClusterAPI(t *testing.T) {
	c := testConfig()
	c.Admin.Addr = "127.0.0.1:0"
	a, err := New(c, slog.New(slog.DiscardHandler), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	code, body := adminGet(t, a, "/api/v1/cluster")
	if code != http.StatusNotFound || !strings.Contains(body, "not in a cluster") {
		t.Fatalf("/api/v1/cluster on a single node: %d %s", code, body)
	}
	if code, body := adminGet(t, a, "/api/v1/calls?scope=cluster"); code != http.StatusNotFound || !strings.Contains(body, "not in a cluster") {
		t.Fatalf("cluster calls on a single node: %d %s", code, body)
	}
	if code, body := adminGet(t, a, "/api/v1/calls?scope=planet"); code != http.StatusBadRequest || !strings.Contains(body, "want node (the default) or cluster") {
		t.Fatalf("a bad scope: %d %s", code, body)
	}
	if _, body := adminGet(t, a, "/metrics"); strings.Contains(body, "sbc_cluster") {
		t.Fatalf("a single node exports cluster metrics:\n%s", grepLines(body, "cluster"))
	}
}

func grepLines(s, sub string) string {
	var out []string
	for l := range strings.SplitSeq(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// The admission limits of two nodes hold across them once wired by the
// App: a user's one allowed call on node 1 makes node 2 refuse a second.
func TestClusterAdmissionWired(t *testing.T) {
	r := redistest.Start(t, "127.0.46.1")
	mk := func(id, internal string) *App {
		c := testConfig()
		c.NodeID = id
		c.Policy.Admission.MaxCallsPerUser = 1
		c.Cluster = config.Cluster{Redis: config.ClusterRedis{Addrs: []string{r.Addr}, KeyPrefix: "apptest:"},
			InternalAddr: internal, Secret: testClusterSecret, Heartbeat: 50 * time.Millisecond, NodeTTL: 500 * time.Millisecond}
		a, err := New(c, slog.New(slog.DiscardHandler), Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { a.Close() })
		return a
	}
	a1, a2 := mk("node-1", "127.0.46.11:0"), mk("node-2", "127.0.46.12:0") // not validated: any free port
	call := func(a *App) policy.Decision {
		r := &policy.Request{User: "alice", Target: policy.TargetTrunks, Trunk: "x", Src: netip.MustParseAddrPort("192.0.2.1:5060")}
		return a.policy.Admission().Check(context.Background(), r)
	}
	if d := call(a1); d.Action != policy.Continue {
		t.Fatalf("alice's call on node 1: %+v", d)
	}
	eventually(t, "node 2 refusing alice's second call", func() bool { return call(a2).Cause == "max_calls_user" })
}
