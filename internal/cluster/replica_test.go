package cluster

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/sbc-project/sbc/test/redistest"
)

// Replicated calls (replica.go) on a real Redis on 127.0.15.46: a node's
// states are written as saved and forgotten; when it dies, exactly one
// of two survivors claims them, runs the takeover hook first, and
// restores each remaining call once; a clean stop leaves nothing.

// restorer records what a survivor restored and when its hook ran.
type restorer struct {
	mu    sync.Mutex
	log   []string // "hook <node>", "<state> from <node>"
	calls int
}

func (r *restorer) spec() ReplicaSpec {
	return ReplicaSpec{
		Restore: func(st []byte, from string) error {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.log = append(r.log, fmt.Sprintf("%s from %s", st, from))
			r.calls++
			return nil
		},
		Takeover: func(_ context.Context, dead string) error {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.log = append(r.log, "hook "+dead)
			return nil
		},
	}
}

func (r *restorer) got() ([]string, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.log), r.calls
}

func TestReplicaTakeover(t *testing.T) {
	rs := redistest.Start(t, "127.0.15.46")
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	node := func(id string, spec ReplicaSpec) (*Node, *CallReplica) {
		n := New(testSpec(id, rs.Addr, ""), Local{}, nil)
		t.Cleanup(func() { _ = n.Close() })
		r := ReplicateCalls(n, spec)
		wg.Add(2)
		go func() { defer wg.Done(); n.Run(ctx) }()
		go func() { defer wg.Done(); r.Run(ctx) }()
		return n, r
	}
	// The dead node: beats and replicates in its own context, which the
	// test never cancels cleanly: it stops beating (a crash) by closing
	// its client.
	dctx, die := context.WithCancel(context.Background())
	dead := New(testSpec("dead", rs.Addr, ""), Local{}, nil)
	dr := ReplicateCalls(dead, ReplicaSpec{})
	dead.Beat(dctx)
	waitFor(t, "the dead node up", dead.RedisUp)
	var dwg sync.WaitGroup
	dwg.Add(1)
	go func() { defer dwg.Done(); dr.Run(dctx) }()
	dr.Save("c1", []byte(`{"n":1}`))
	dr.Save("c2", []byte(`{"n":2}`))
	dr.Save("c1", []byte(`{"n":11}`))
	dr.Save("c3", []byte(`{"n":3}`))
	dr.Forget("c3")
	key := dead.Key("replica:dead")
	rc := New(testSpec("checker", rs.Addr, ""), Local{}, nil).Client()
	t.Cleanup(func() { _ = rc.Close() })
	waitFor(t, "the dead node's calls in Redis", func() bool { return rc.HLen(ctx, key).Val() == 2 })
	if st := rc.HGet(ctx, key, "c1").Val(); st != `{"n":11}` {
		t.Fatalf("c1's state %q, want the last saved", st)
	}
	// A crash: no more heartbeats or writes; its Run must not delete the
	// hash as a clean stop does, so the client goes first.
	_ = dead.Close()
	die()
	dwg.Wait()
	if n := rc.HLen(ctx, key).Val(); n != 2 {
		t.Fatalf("the crashed node's hash has %d calls", n)
	}
	index := dead.Key("replica-nodes")
	if !rc.SIsMember(ctx, index, "dead").Val() {
		t.Fatalf("the crashed node is not in the replica index %s: peers would not find its calls", index)
	}

	a, b := &restorer{}, &restorer{}
	node("a", a.spec())
	node("b", b.spec())
	waitFor(t, "the calls restored", func() bool {
		_, na := a.got()
		_, nb := b.got()
		return na+nb >= 2
	})
	la, na := a.got()
	lb, nb := b.got()
	winner := la
	if nb > 0 {
		winner = lb
	}
	if na*nb != 0 || len(winner) != 3 || winner[0] != "hook dead" ||
		!slices.Contains(winner, `{"n":11} from dead`) || !slices.Contains(winner, `{"n":2} from dead`) {
		t.Fatalf("a did %q, b did %q: want one of them to run the hook, then restore c1 and c2", la, lb)
	}
	if n := rc.Exists(ctx, key).Val(); n != 0 {
		t.Errorf("the dead node's hash is still there")
	}
	waitFor(t, "the dead node out of the replica index", func() bool { return !rc.SIsMember(ctx, index, "dead").Val() })
}

// TestReplicaCleanStop: a node that stops cleanly deletes its hash (its
// calls ended), and its hash lives ReplicaTTL node TTLs, renewed.
func TestReplicaCleanStop(t *testing.T) {
	rs := redistest.Start(t, "127.0.15.46")
	n := New(testSpec("n", rs.Addr, ""), Local{}, nil)
	t.Cleanup(func() { _ = n.Close() })
	r := ReplicateCalls(n, ReplicaSpec{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	n.Beat(ctx)
	go func() { defer close(done); r.Run(ctx) }()
	r.Save("c1", []byte("{}"))
	key := n.Key("replica:n")
	rc := n.Client()
	waitFor(t, "the call in Redis", func() bool { return rc.HLen(context.Background(), key).Val() == 1 })
	ttl := ReplicaTTL * testSpec("", "", "").NodeTTL
	if v := rc.PTTL(context.Background(), key).Val(); v <= 0 || v > ttl {
		t.Errorf("the hash's TTL is %v, want at most %v", v, ttl)
	}
	if !rc.SIsMember(context.Background(), n.Key("replica-nodes"), "n").Val() {
		t.Errorf("the node is not in the replica index")
	}
	cancel()
	<-done
	if v := rc.Exists(context.Background(), key).Val(); v != 0 {
		t.Errorf("a clean stop left the hash")
	}
	if rc.SIsMember(context.Background(), n.Key("replica-nodes"), "n").Val() {
		t.Errorf("a clean stop left the node in the replica index")
	}
}

// TestReplicaOwnPreviousLife: a node that crashed and restarts within the
// hash's TTL, before a peer took its calls, deletes its previous life's
// hash when it starts, restoring nothing (its CDR journal recorded those
// calls: a restored one would be recorded twice); its new calls are
// replicated as usual.
func TestReplicaOwnPreviousLife(t *testing.T) {
	rs := redistest.Start(t, "127.0.15.46")
	ctx, cancel := context.WithCancel(context.Background())
	first := New(testSpec("n", rs.Addr, ""), Local{}, nil)
	r1 := ReplicateCalls(first, ReplicaSpec{})
	first.Beat(ctx)
	done := make(chan struct{})
	go func() { defer close(done); r1.Run(ctx) }()
	r1.Save("old", []byte(`{"n":1}`))
	key := first.Key("replica:n")
	rc := New(testSpec("checker", rs.Addr, ""), Local{}, nil).Client()
	t.Cleanup(func() { _ = rc.Close() })
	waitFor(t, "the call in Redis", func() bool { return rc.HLen(context.Background(), key).Val() == 1 })
	_ = first.Close() // the crash
	cancel()
	<-done

	rest := &restorer{}
	n := New(testSpec("n", rs.Addr, ""), Local{}, nil)
	t.Cleanup(func() { _ = n.Close() })
	r2 := ReplicateCalls(n, rest.spec())
	ctx2, cancel2 := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel2(); wg.Wait() })
	wg.Go(func() { n.Run(ctx2) })
	wg.Go(func() { r2.Run(ctx2) })
	r2.Save("new", []byte(`{"n":2}`))
	waitFor(t, "the new call in Redis", func() bool { return rc.HGet(context.Background(), key, "new").Val() == `{"n":2}` })
	if rc.HExists(context.Background(), key, "old").Val() {
		t.Error("the previous life's call is still replicated")
	}
	if log, k := rest.got(); k != 0 {
		t.Errorf("restored %q, want nothing", log)
	}
}
