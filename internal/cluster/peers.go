package cluster

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Node states.
const (
	StateActive   = "active"   // takes new calls
	StateDraining = "draining" // finishes its calls, takes no new ones
)

// Peer is one node of the cluster as its last heartbeat described it.
type Peer struct {
	ID           string    `json:"id"`
	InternalAddr string    `json:"internal_addr"`
	State        string    `json:"state"`
	Calls        int       `json:"calls"`
	Started      time.Time `json:"started"`
	Updated      time.Time `json:"updated"`
	Self         bool      `json:"self"`

	expires time.Time // when the entry expires, by this node's clock
}

// Status is the cluster as this node sees it.
type Status struct {
	NodeID  string `json:"node_id"`
	RedisUp bool   `json:"redis_up"`
	// Peers are every node with a live entry, this one included, in id
	// order; when Redis is down, only this node, from local state.
	Peers []Peer `json:"nodes"`
}

// Status reads every node's entry. Entries that do not parse are logged
// with their key and left out; Redis down gives this node alone.
func (n *Node) Status(ctx context.Context) Status {
	st := Status{NodeID: n.spec.NodeID}
	peers, err := n.Peers(ctx)
	if err != nil {
		st.Peers = []Peer{n.self()}
		return st
	}
	st.RedisUp = true
	st.Peers = peers
	// What the status shows is what the node routes by from now on: a
	// read fresher than the last heartbeat's (the first one may still be
	// under way when an operator or a script sees the node listed).
	n.peers.Store(&peers)
	return st
}

// self is this node's entry from local state.
func (n *Node) self() Peer {
	return Peer{ID: n.spec.NodeID, InternalAddr: n.spec.InternalAddr, State: n.state(), Calls: n.calls(),
		Started: n.started.UTC().Truncate(time.Millisecond), Updated: time.Now().UTC().Truncate(time.Millisecond), Self: true}
}

// Peers reads the live nodes from Redis, in id order.
func (n *Node) Peers(ctx context.Context) ([]Peer, error) {
	ids, err := n.rdb.ZRange(ctx, n.Key("nodes"), 0, -1).Result()
	n.observe(ctx, ignoreWrongType(err))
	if err != nil {
		if isWrongType(err) {
			n.log.Error("cluster: Redis key holds the wrong type; ignored", "key", n.Key("nodes"), "err", err)
			return []Peer{n.self()}, nil
		}
		return nil, err
	}
	cmds, err := n.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, id := range ids {
			p.HGetAll(ctx, n.Key("node:"+id))
			p.PTTL(ctx, n.Key("node:"+id))
		}
		return nil
	})
	if err != nil && !isWrongType(err) {
		n.observe(ctx, err)
		return nil, err
	}
	read := time.Now()
	var out []Peer
	for i, id := range ids {
		key := n.Key("node:" + id)
		fields, err := cmds[2*i].(*redis.MapStringStringCmd).Result()
		if err != nil {
			n.log.Error("cluster: unreadable node entry; ignored", "key", key, "err", err)
			continue
		}
		if len(fields) == 0 {
			continue // expired: the node is gone
		}
		p, err := parsePeer(id, fields)
		if err != nil {
			n.log.Error("cluster: node entry does not parse; ignored", "key", key, "err", err)
			continue
		}
		p.Self = id == n.spec.NodeID
		if ttl, err := cmds[2*i+1].(*redis.DurationCmd).Result(); err == nil && ttl > 0 {
			p.expires = read.Add(ttl)
		}
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b Peer) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

// parsePeer reads a node:<id> hash.
func parsePeer(id string, f map[string]string) (Peer, error) {
	p := Peer{ID: id, InternalAddr: f["internal_addr"], State: f["state"]}
	if _, err := netip.ParseAddrPort(p.InternalAddr); err != nil {
		return p, fmt.Errorf("internal_addr %q: want ip:port", p.InternalAddr)
	}
	if p.State != StateActive && p.State != StateDraining {
		return p, fmt.Errorf("state %q: want %s or %s", p.State, StateActive, StateDraining)
	}
	calls, err := strconv.Atoi(f["calls"])
	if err != nil || calls < 0 {
		return p, fmt.Errorf("calls %q: want a count", f["calls"])
	}
	p.Calls = calls
	for _, t := range []struct {
		name string
		to   *time.Time
	}{{"started", &p.Started}, {"updated", &p.Updated}} {
		ms, err := strconv.ParseInt(f[t.name], 10, 64)
		if err != nil || ms <= 0 {
			return p, fmt.Errorf("%s %q: want Unix milliseconds", t.name, f[t.name])
		}
		*t.to = time.UnixMilli(ms).UTC()
	}
	return p, nil
}

// isWrongType reports a WRONGTYPE error: the key exists but is not what
// the SBC writes there. Redis answered, so it is not a Redis fault.
func isWrongType(err error) bool {
	var re redis.Error
	return errors.As(err, &re) && len(re.Error()) >= 9 && re.Error()[:9] == "WRONGTYPE"
}

func ignoreWrongType(err error) error {
	if isWrongType(err) || errors.Is(err, redis.Nil) {
		return nil
	}
	return err
}
