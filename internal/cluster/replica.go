package cluster

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// CallReplica keeps this node's answered calls' states in Redis so that a
// peer continues them when this node dies (issue 19), and takes over the
// calls of a peer that died. The states are b2bua.CallState JSON, opaque
// here: <prefix>replica:<node> is a hash, record id → state, written as
// the B2BUA hands changes over (Save, Forget: queued, coalesced, written
// by Run) and kept alive by each heartbeat for ReplicaTTL times the
// node TTL: a peer has that long after the node's entry expired to claim
// them.
//
// A takeover: at each heartbeat, the hashes of nodes without a live entry
// are claimed, each by one node only (read and deleted in one MULTI);
// the claiming node runs the operator's hook (Takeover, which moves the
// service address to it), then restores each call (Restore). A call
// restored is saved under the claiming node's own hash by its B2BUA. A
// node's own hash left by its previous life (a crash and restart within
// the TTL, before a peer took it) is deleted when Run starts: its CDR
// journal has recorded those calls (sbc_restart).
type CallReplica struct {
	n    *Node
	spec ReplicaSpec
	wake chan struct{}
	keep atomic.Bool // hand the calls over: Run's end keeps the hash

	mu      sync.Mutex
	pending map[string][]byte // id → state to write; nil: to delete
}

// ReplicaTTL is the replica hash's TTL in node TTLs.
const ReplicaTTL = 3

// ReplicaSpec is what a node does with the calls it takes over.
type ReplicaSpec struct {
	// Restore continues one call from its state; from is the node it
	// was taken from. nil: this node replicates its calls but takes over
	// none.
	Restore func(state []byte, from string) error
	// Takeover runs before the dead node's calls are restored: the
	// operator's command that moves the service address here. nil: none.
	// An error is logged and the calls are restored all the same (the
	// address may be here already).
	Takeover func(ctx context.Context, dead string) error
}

// ReplicateCalls wires the node's call states to Redis; Run does the work.
func ReplicateCalls(n *Node, spec ReplicaSpec) *CallReplica {
	return &CallReplica{n: n, spec: spec, wake: make(chan struct{}, 1), pending: make(map[string][]byte)}
}

func (r *CallReplica) key(node string) string { return r.n.Key("replica:" + node) }

// index is the set of the nodes that may have a replica hash: each node
// adds itself at every heartbeat, a claim or a clean stop removes it.
// Peers read it rather than scan the keyspace (a SCAN per heartbeat
// walks every registration and ban key, and on a Redis Cluster sees one
// shard only). A member without a hash is harmless: its claim finds
// nothing and removes it.
func (r *CallReplica) index() string { return r.n.Key("replica-nodes") }

// Save queues a call's state for writing; it never blocks (b2bua.Replicator).
func (r *CallReplica) Save(id string, state []byte) { r.queue(id, state) }

// Forget queues the deletion of an ended call's state (b2bua.Replicator).
func (r *CallReplica) Forget(id string) { r.queue(id, nil) }

func (r *CallReplica) queue(id string, state []byte) {
	r.mu.Lock()
	r.pending[id] = state
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// HandOver writes what is queued now and makes Run's end keep the hash
// rather than delete it, for a peer to take the calls over as soon as
// this node has left the cluster (a drain with migration). The calls
// must have been let go first (b2bua Server.Abandon): a state saved
// after a peer claimed the hash would be restored twice.
func (r *CallReplica) HandOver(ctx context.Context) error {
	r.keep.Store(true)
	if r.flush(ctx) {
		return nil
	}
	return errors.New("cluster: the calls' last states could not be written to Redis")
}

// Run writes the queued states as they come and, each heartbeat, renews
// the hash's TTL and takes over dead peers' calls, until ctx ends; then
// it deletes the hash (a node that stops cleanly has ended its calls),
// unless Keep was called.
func (r *CallReplica) Run(ctx context.Context) {
	t := time.NewTicker(r.n.spec.Heartbeat)
	defer t.Stop()
	// Before this life's first write: what is in the hash is the last
	// life's (a crash, then a restart within the TTL). Not restored: the
	// CDR journal has recorded those calls at start (sbc_restart), and
	// a restored call would be recorded twice.
	r.dropPreviousLife(ctx)
	r.renew(ctx) // in the index before this life's first call is saved
	for {
		select {
		case <-ctx.Done():
			if r.keep.Load() {
				return
			}
			dctx, cancel := context.WithTimeout(context.Background(), r.n.spec.WriteTimeout)
			_ = r.n.Client().Del(dctx, r.key(r.n.ID())).Err()
			_ = r.n.Client().SRem(dctx, r.index(), r.n.ID()).Err()
			cancel()
			return
		case <-r.wake:
			r.flush(ctx)
		case <-t.C:
			if !r.n.RedisUp() {
				continue
			}
			r.flush(ctx)
			r.renew(ctx)
			if r.spec.Restore != nil {
				r.takeOver(ctx)
			}
		}
	}
}

// flush writes what is queued, and reports whether Redis took it; what
// it did not take is queued again unless a newer state came meanwhile.
func (r *CallReplica) flush(ctx context.Context) bool {
	r.mu.Lock()
	batch := r.pending
	if len(batch) == 0 {
		r.mu.Unlock()
		return true
	}
	r.pending = make(map[string][]byte, len(batch))
	r.mu.Unlock()
	key := r.key(r.n.ID())
	cctx, cancel := context.WithTimeout(ctx, r.n.spec.WriteTimeout)
	defer cancel()
	_, err := r.n.Client().TxPipelined(cctx, func(p redis.Pipeliner) error {
		for id, st := range batch {
			if st == nil {
				p.HDel(cctx, key, id)
			} else {
				p.HSet(cctx, key, id, st)
			}
		}
		p.PExpire(cctx, key, ReplicaTTL*r.n.spec.NodeTTL)
		return nil
	})
	if err == nil {
		return true
	}
	r.n.observe(ctx, ignoreWrongType(err))
	r.mu.Lock()
	for id, st := range batch {
		if _, newer := r.pending[id]; !newer {
			r.pending[id] = st
		}
	}
	r.mu.Unlock()
	return false
}

func (r *CallReplica) renew(ctx context.Context) {
	cctx, cancel := context.WithTimeout(ctx, r.n.spec.WriteTimeout)
	defer cancel()
	r.n.observe(ctx, ignoreWrongType(r.n.Client().PExpire(cctx, r.key(r.n.ID()), ReplicaTTL*r.n.spec.NodeTTL).Err()))
	r.n.observe(ctx, r.n.Client().SAdd(cctx, r.index(), r.n.ID()).Err())
}

// takeOver claims the hashes of nodes without a live entry and restores
// their calls.
func (r *CallReplica) takeOver(ctx context.Context) {
	peers, err := r.n.Peers(ctx)
	if err != nil {
		return
	}
	live := make(map[string]bool, len(peers))
	for _, p := range peers {
		live[p.ID] = true
	}
	for _, node := range r.replicaNodes(ctx) {
		if node != r.n.ID() && !live[node] {
			r.claim(ctx, node)
		}
	}
}

// dropPreviousLife deletes this node's hash left by its previous life.
func (r *CallReplica) dropPreviousLife(ctx context.Context) {
	cctx, cancel := context.WithTimeout(ctx, r.n.spec.WriteTimeout)
	defer cancel()
	key := r.key(r.n.ID())
	var n *redis.IntCmd
	_, err := r.n.Client().TxPipelined(cctx, func(p redis.Pipeliner) error {
		n = p.HLen(cctx, key)
		p.Del(cctx, key)
		return nil
	})
	if err == nil && n.Val() > 0 {
		r.n.log.Warn("cluster: calls of this node's previous life not restored (its CDR journal recorded them: sbc_restart)",
			"calls", n.Val())
	}
}

// TakenTTL is how long a node's calls taken over are remembered for
// its restart (TakenOver).
const TakenTTL = 7 * 24 * time.Hour

func (r *CallReplica) takenKey(node string) string { return r.n.Key("taken:" + node) }

// noteTaken remembers which calls of node this node took over, for its
// CDR journal when it comes back (TakenOver): it must not record them.
func (r *CallReplica) noteTaken(ctx context.Context, node string, calls map[string]string) {
	ids := make([]any, 0, len(calls))
	for id := range calls {
		ids = append(ids, id)
	}
	key := r.takenKey(node)
	_, err := r.n.Client().TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.SAdd(ctx, key, ids...)
		p.Expire(ctx, key, TakenTTL)
		return nil
	})
	if err != nil {
		r.n.log.Warn("cluster: calls taken over not noted; the dead node records them again if it comes back", "node", node, "err", err)
	}
}

// TakenOver returns the ids of this node's calls other nodes took over
// after it died (within TakenTTL): what its CDR journal must not record
// at start (cdr.Config.TakenOver). It asks Redis once, within the write
// timeout.
func TakenOver(n *Node) func() (map[string]bool, error) {
	return func() (map[string]bool, error) {
		ctx, cancel := context.WithTimeout(context.Background(), n.spec.WriteTimeout)
		defer cancel()
		ids, err := n.Client().SMembers(ctx, n.Key("taken:"+n.ID())).Result()
		if err != nil {
			return nil, fmt.Errorf("cluster: calls taken over: %w", err)
		}
		out := make(map[string]bool, len(ids))
		for _, id := range ids {
			out[id] = true
		}
		return out, nil
	}
}

// replicaNodes lists the nodes that may have a replica hash (index).
func (r *CallReplica) replicaNodes(ctx context.Context) []string {
	cctx, cancel := context.WithTimeout(ctx, r.n.spec.ReadTimeout)
	defer cancel()
	nodes, err := r.n.Client().SMembers(cctx, r.index()).Result()
	if err != nil {
		r.n.log.Warn("cluster: listing replicated calls", "err", err)
	}
	return nodes
}

// claim takes node's calls, if no other node did first, and restores them.
func (r *CallReplica) claim(ctx context.Context, node string) {
	key := r.key(node)
	var all *redis.MapStringStringCmd
	_, err := r.n.Client().TxPipelined(ctx, func(p redis.Pipeliner) error {
		all = p.HGetAll(ctx, key)
		p.Del(ctx, key)
		return nil
	})
	if err != nil {
		if !isWrongType(err) {
			r.n.log.Warn("cluster: claiming a dead node's calls", "node", node, "err", err)
		}
		return
	}
	calls := all.Val()
	// The hash is gone now (claimed here or by another node, or expired):
	// the node leaves the index until it comes back.
	if err := r.n.Client().SRem(ctx, r.index(), node).Err(); err != nil {
		r.n.log.Warn("cluster: a dead node left in the replica index; claimed again at the next heartbeat", "node", node, "err", err)
	}
	if len(calls) == 0 {
		return // claimed by another node, or expired, meanwhile
	}
	start := time.Now()
	r.n.log.Warn("cluster: taking over the calls of a node gone", "node", node, "calls", len(calls))
	r.noteTaken(ctx, node, calls)
	if r.spec.Takeover != nil {
		if err := r.spec.Takeover(ctx, node); err != nil {
			r.n.log.Error("cluster: takeover hook failed; restoring the calls all the same", "node", node, "err", err)
		}
	}
	restored := 0
	for id, st := range calls {
		if err := r.spec.Restore([]byte(st), node); err != nil {
			r.n.log.Error("cluster: call not restored", "node", node, "id", id, "err", err)
			continue
		}
		restored++
	}
	r.n.log.Warn("cluster: calls taken over", "node", node, "restored", restored, "of", len(calls),
		"took", time.Since(start).Round(time.Millisecond))
}
