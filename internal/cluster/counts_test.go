package cluster

import (
	"context"
	"log/slog"
	"net/netip"
	"strings"
	"testing"

	"github.com/sbc-project/sbc/policy"
	"github.com/sbc-project/sbc/test/redistest"
)

type countingNode struct {
	*Node
	adm *policy.Admission
}

func startCounting(t *testing.T, id, redisAddr string, limit policy.AdmissionSpec, logs *syncBuffer) countingNode {
	t.Helper()
	var log *slog.Logger
	if logs != nil {
		log = slog.New(slog.NewTextHandler(logs, nil))
	}
	n := New(testSpec(id, redisAddr, "127.0.46.11:5070"), Local{}, log)
	adm := policy.NewAdmission(limit)
	s := ShareCounts(n, adm, 0)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{}, 2)
	go func() { s.Run(ctx); done <- struct{}{} }()
	go func() { n.Run(ctx); done <- struct{}{} }()
	t.Cleanup(func() { cancel(); <-done; <-done; _ = n.Close() })
	waitFor(t, id+" joined", n.RedisUp)
	return countingNode{n, adm}
}

// call asks node's admission stage for a call of user from src; the
// release function ends it.
func call(t *testing.T, n countingNode, user, src string) (policy.Decision, func()) {
	t.Helper()
	r := &policy.Request{User: user, Target: policy.TargetTrunks, Trunk: "pbx", Src: netip.MustParseAddrPort(src + ":5060")}
	d := n.adm.Check(context.Background(), r)
	if d.Action != policy.Continue {
		return d, func() {}
	}
	return d, r.Admitted
}

func othersOf(n countingNode, user string) int {
	// The admission stage's view of the peers shows in what it refuses;
	// the counts themselves are read here from Redis through a fresh read.
	c, err := ShareCounts(n.Node, n.adm, 0).read(context.Background())
	if err != nil {
		return -1
	}
	return c.Users[user]
}

// A user's limit of 2 concurrent calls holds when the calls arrive on
// different nodes; a call ending on one node frees a place on another.
func TestUserLimitAcrossNodes(t *testing.T) {
	r := redistest.Start(t, "127.0.46.1")
	limit := policy.AdmissionSpec{MaxCallsPerUser: 2}
	n1 := startCounting(t, "n1", r.Addr, limit, nil)
	n2 := startCounting(t, "n2", r.Addr, limit, nil)
	n3 := startCounting(t, "n3", r.Addr, limit, nil)

	if d, _ := call(t, n1, "alice", "192.0.2.1"); d.Action != policy.Continue {
		t.Fatalf("alice's first call on node 1: %+v", d)
	}
	d, end2 := call(t, n2, "alice", "192.0.2.2")
	if d.Action != policy.Continue {
		t.Fatalf("alice's second call on node 2: %+v", d)
	}
	waitFor(t, "node 3 to see alice's 2 calls", func() bool { return othersOf(n3, "alice") == 2 })
	waitFor(t, "node 3 to refuse alice's third call", func() bool {
		d, end := call(t, n3, "alice", "192.0.2.3")
		end()
		return d.Cause == "max_calls_user" && d.Code == 503
	})
	if d, end := call(t, n3, "bob", "192.0.2.3"); d.Action != policy.Continue {
		t.Fatalf("bob on node 3: %+v", d)
	} else {
		end()
	}

	end2()
	waitFor(t, "node 3 to take alice's call once one ended", func() bool {
		d, _ := call(t, n3, "alice", "192.0.2.3")
		return d.Action == policy.Continue
	})
	waitFor(t, "node 1 to refuse a third call", func() bool {
		d, end := call(t, n1, "alice", "192.0.2.1")
		end()
		return d.Cause == "max_calls_user"
	})
}

// Redis down: the peers' counts are forgotten and each node limits on its
// own; a dead node's counts expire with its entry.
func TestCountsWithoutRedis(t *testing.T) {
	r := redistest.Start(t, "127.0.46.1")
	limit := policy.AdmissionSpec{MaxCallsPerUser: 1}
	n1 := startCounting(t, "n1", r.Addr, limit, nil)
	n2 := startCounting(t, "n2", r.Addr, limit, nil)
	if d, _ := call(t, n1, "alice", "192.0.2.1"); d.Action != policy.Continue {
		t.Fatalf("alice on node 1: %+v", d)
	}
	waitFor(t, "node 2 to refuse alice", func() bool {
		d, end := call(t, n2, "alice", "192.0.2.2")
		end()
		return d.Cause == "max_calls_user"
	})
	r.Stop()
	waitFor(t, "node 2 to limit alone", func() bool {
		d, end := call(t, n2, "alice", "192.0.2.2")
		end()
		return d.Action == policy.Continue
	})
}

func TestCountsBadData(t *testing.T) {
	r := redistest.Start(t, "127.0.46.1")
	logs := &syncBuffer{}
	n1 := startCounting(t, "n1", r.Addr, policy.AdmissionSpec{MaxCallsPerUser: 2}, logs)
	for _, cmd := range [][]string{
		{"ZADD", "test:nodes", "9999999999999", "ghost", "9999999999999", "str"},
		{"HSET", "test:adm:ghost", "u:alice", "1", "u:bob", "many", "x:what", "1", "i:not-ip", "1"},
		{"SET", "test:adm:str", "text"},
	} {
		if reply, err := r.Do(cmd...); err != nil || strings.HasPrefix(reply, "-") {
			t.Fatalf("%v: %q %v", cmd, reply, err)
		}
	}
	waitFor(t, "alice's call on the ghost node to count", func() bool { return othersOf(n1, "alice") == 1 })
	waitFor(t, "the bad data logged", func() bool {
		l := logs.String()
		return strings.Contains(l, "key=test:adm:ghost field=") && strings.Contains(l, "key=test:adm:str")
	})
	if !n1.RedisUp() {
		t.Fatal("bad data taken for an outage")
	}
}
