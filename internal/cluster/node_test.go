package cluster

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sbc-project/sbc/test/redistest"
)

// syncBuffer is a log sink tests read while nodes write.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func testSpec(id, redisAddr, internal string) Spec {
	return Spec{NodeID: id, Addrs: []string{redisAddr}, KeyPrefix: "test:", InternalAddr: internal,
		Heartbeat: 50 * time.Millisecond, NodeTTL: 400 * time.Millisecond,
		DialTimeout: time.Second, ReadTimeout: time.Second, WriteTimeout: time.Second}
}

// waitFor polls cond until it holds or 10 s pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func peerIDs(st Status) string {
	var ids []string
	for _, p := range st.Peers {
		ids = append(ids, p.ID+"/"+p.State)
	}
	return strings.Join(ids, ",")
}

// run starts n's heartbeat and returns a function that stops it cleanly.
func run(t *testing.T, n *Node) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { n.Run(ctx); close(done) }()
	stop = func() { cancel(); <-done; _ = n.Close() }
	t.Cleanup(stop)
	return sync.OnceFunc(stop)
}

func TestNodesSeeEachOther(t *testing.T) {
	r := redistest.Start(t, "127.0.46.1")
	calls := atomic.Int64{}
	calls.Store(7)
	draining := atomic.Bool{}
	a := New(testSpec("a", r.Addr, "127.0.46.11:5070"), Local{Calls: func() int { return int(calls.Load()) }, Draining: draining.Load}, nil)
	b := New(testSpec("b", r.Addr, "127.0.46.12:5070"), Local{}, nil)
	run(t, a)
	stopB := run(t, b)
	ctx := context.Background()
	waitFor(t, "both nodes listed", func() bool { return peerIDs(a.Status(ctx)) == "a/active,b/active" })
	st := b.Status(ctx)
	if !st.RedisUp || st.NodeID != "b" {
		t.Fatalf("status %+v", st)
	}
	pa, pb := st.Peers[0], st.Peers[1]
	if pa.InternalAddr != "127.0.46.11:5070" || pa.Calls != 7 || pa.Self || !pb.Self || pa.Started.IsZero() {
		t.Fatalf("peers as b sees them: %+v", st.Peers)
	}

	draining.Store(true)
	calls.Store(2)
	waitFor(t, "a draining with 2 calls", func() bool {
		p := b.Status(ctx).Peers
		return len(p) == 2 && p[0].State == StateDraining && p[0].Calls == 2
	})

	stopB() // a clean exit removes b at once, not after node_ttl
	st = a.Status(ctx)
	if got := peerIDs(st); got != "a/draining" {
		t.Fatalf("after b left: %s", got)
	}
}

// What a node's status lists is what it routes by: a peer that joined
// after the node's last heartbeat is routable once the status shows it,
// not a heartbeat later (a script that waits for the status then sends a
// call must not find the peer missing).
func TestStatusIsTheRoutingView(t *testing.T) {
	r := redistest.Start(t, "127.0.46.1")
	a := New(testSpec("a", r.Addr, "127.0.46.11:5070"), Local{}, nil)
	b := New(testSpec("b", r.Addr, "127.0.46.12:5070"), Local{}, nil)
	t.Cleanup(func() { _ = a.Client().Close(); _ = b.Client().Close() })
	ctx := context.Background()
	a.Beat(ctx) // no heartbeat loop: a's view changes only when asked
	if got := a.activePeers(); len(got) != 0 {
		t.Fatalf("a alone routes to %+v", got)
	}
	b.Beat(ctx)
	if got := peerIDs(a.Status(ctx)); got != "a/active,b/active" {
		t.Fatalf("a's status: %s", got)
	}
	if got := a.activePeers(); len(got) != 1 || got[0].ID != "b" {
		t.Fatalf("a's status lists b, a routes to %+v", got)
	}
}

// A node that dies without leaving is gone for its peers once its entry
// expires: node_ttl after its last heartbeat.
func TestDeadNodeExpires(t *testing.T) {
	r := redistest.Start(t, "127.0.46.1")
	a := New(testSpec("a", r.Addr, "127.0.46.11:5070"), Local{}, nil)
	run(t, a)
	dead := New(testSpec("dead", r.Addr, "127.0.46.13:5070"), Local{}, nil)
	t.Cleanup(func() { _ = dead.Client().Close() })
	ctx := context.Background()
	waitFor(t, "a joined", a.RedisUp)
	dead.Beat(ctx) // one heartbeat, then silence: a crash
	if got := peerIDs(a.Status(ctx)); got != "a/active,dead/active" {
		t.Fatalf("after the dead node's heartbeat: %s", got)
	}
	beat := time.Now()
	waitFor(t, "the dead node to expire", func() bool { return peerIDs(a.Status(ctx)) == "a/active" })
	if gone := time.Since(beat); gone < 300*time.Millisecond {
		t.Fatalf("the dead node vanished %s after its heartbeat, before its node_ttl of 400ms", gone)
	}
}

// Redis killed: the node keeps working on local state with the alarm up
// and one log line; Redis back: the alarm clears, the resync hooks run and
// the node's entry is written again.
func TestRedisOutage(t *testing.T) {
	r := redistest.Start(t, "127.0.46.1")
	logs := &syncBuffer{}
	a := New(testSpec("a", r.Addr, "127.0.46.11:5070"), Local{}, slog.New(slog.NewTextHandler(logs, nil)))
	var resyncs atomic.Int32
	a.OnResync(func(context.Context) { resyncs.Add(1) })
	run(t, a)
	ctx := context.Background()
	waitFor(t, "joined", func() bool { return a.RedisUp() && resyncs.Load() == 1 })

	r.Stop()
	waitFor(t, "the alarm", func() bool { return !a.RedisUp() })
	st := a.Status(ctx)
	if st.RedisUp || peerIDs(st) != "a/active" || !st.Peers[0].Self {
		t.Fatalf("status with Redis down: %+v", st)
	}
	waitFor(t, "several failed heartbeats", func() bool { return a.Failures() >= 3 })
	if n := strings.Count(logs.String(), "Redis unreachable"); n != 1 {
		t.Fatalf("%d log lines for one outage, want 1:\n%s", n, logs.String())
	}

	if err := r.Start(); err != nil { // an empty Redis: everything was lost
		t.Fatal(err)
	}
	waitFor(t, "the alarm to clear and a resync", func() bool { return a.RedisUp() && resyncs.Load() == 2 })
	waitFor(t, "the entry back in Redis", func() bool {
		st := a.Status(ctx)
		return st.RedisUp && peerIDs(st) == "a/active"
	})
	if !strings.Contains(logs.String(), "Redis reachable again") {
		t.Fatalf("no log line for the return:\n%s", logs.String())
	}
}

// Keys holding what the SBC did not write are logged with their key and
// skipped; the node goes on.
func TestBadDataInRedis(t *testing.T) {
	r := redistest.Start(t, "127.0.46.1")
	logs := &syncBuffer{}
	a := New(testSpec("a", r.Addr, "127.0.46.11:5070"), Local{}, slog.New(slog.NewTextHandler(logs, nil)))
	run(t, a)
	ctx := context.Background()
	waitFor(t, "joined", func() bool { return peerIDs(a.Status(ctx)) == "a/active" })
	for _, cmd := range [][]string{
		{"ZADD", "test:nodes", "9999999999999", "str", "9999999999999", "garbage", "9999999999999", "addr"},
		{"SET", "test:node:str", "not a hash"},
		{"HSET", "test:node:garbage", "internal_addr", "127.0.46.14:5070", "state", "active", "calls", "many", "started", "1", "updated", "1"},
		{"HSET", "test:node:addr", "internal_addr", "nowhere", "state", "active", "calls", "1", "started", "1", "updated", "1"},
	} {
		if reply, err := r.Do(cmd...); err != nil || strings.HasPrefix(reply, "-") {
			t.Fatalf("%v: %q %v", cmd, reply, err)
		}
	}
	st := a.Status(ctx)
	if !st.RedisUp || peerIDs(st) != "a/active" {
		t.Fatalf("status with bad entries: %+v", st)
	}
	for _, want := range []string{"key=test:node:str", `key=test:node:garbage`, `calls \"many\"`, "key=test:node:addr"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %s:\n%s", want, logs.String())
		}
	}

	// The index itself of the wrong type.
	if _, err := r.Do("DEL", "test:nodes"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Do("SET", "test:nodes", "x"); err != nil {
		t.Fatal(err)
	}
	st = a.Status(ctx)
	if peerIDs(st) != "a/active" {
		t.Fatalf("status with a string index: %+v", st)
	}
	waitFor(t, "the heartbeat's complaint", func() bool { return strings.Contains(logs.String(), "heartbeat not written") })
	if !strings.Contains(logs.String(), "key=test:nodes") || !a.RedisUp() {
		t.Fatalf("bad data taken for an outage, or its key not logged (up %v):\n%s", a.RedisUp(), logs.String())
	}
}
