package cluster

import (
	"context"
	"encoding/json"
	"time"

	"github.com/redis/go-redis/v9"
)

// CallShare lets the admin API of any node list the calls of every node:
// each heartbeat a node writes its calls in progress, id → JSON as its own
// admin API shows them, to <prefix>calls:<id>, expiring with its entry.
// A listing is at most a heartbeat old for other nodes' calls.
type CallShare struct {
	n    *Node
	list func() map[string][]byte
}

// ShareCalls wires the node's call list to the cluster; Run does the work.
func ShareCalls(n *Node, list func() map[string][]byte) *CallShare {
	return &CallShare{n: n, list: list}
}

func (s *CallShare) key(id string) string { return s.n.Key("calls:" + id) }

// Run writes the node's calls each heartbeat until ctx ends, then deletes
// them.
func (s *CallShare) Run(ctx context.Context) {
	t := time.NewTicker(s.n.spec.Heartbeat)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			dctx, cancel := context.WithTimeout(context.Background(), s.n.spec.WriteTimeout)
			_ = s.n.Client().Del(dctx, s.key(s.n.ID())).Err()
			cancel()
			return
		case <-t.C:
		}
		if !s.n.RedisUp() {
			continue
		}
		calls := s.list()
		key := s.key(s.n.ID())
		cctx, cancel := context.WithTimeout(ctx, s.n.spec.WriteTimeout)
		_, err := s.n.Client().TxPipelined(cctx, func(p redis.Pipeliner) error {
			p.Del(cctx, key)
			if len(calls) > 0 {
				args := make([]any, 0, 2*len(calls))
				for id, data := range calls {
					args = append(args, id, data)
				}
				p.HSet(cctx, key, args...)
				p.PExpire(cctx, key, s.n.spec.NodeTTL)
			}
			return nil
		})
		cancel()
		if err != nil && !isWrongType(err) {
			s.n.observe(ctx, err)
		}
	}
}

// Peers returns the calls other live nodes last wrote, by node.
func (s *CallShare) Peers(ctx context.Context) (map[string][]json.RawMessage, error) {
	peers, err := s.n.Peers(ctx)
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, p := range peers {
		if !p.Self {
			ids = append(ids, p.ID)
		}
	}
	out := make(map[string][]json.RawMessage, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	cmds, err := s.n.Client().Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, id := range ids {
			p.HVals(ctx, s.key(id))
		}
		return nil
	})
	if err != nil && !isWrongType(err) {
		return nil, err
	}
	for i, id := range ids {
		vals, err := cmds[i].(*redis.StringSliceCmd).Result()
		if err != nil {
			s.n.log.Error("cluster: unreadable call list; ignored", "key", s.key(id), "err", err)
			continue
		}
		for _, v := range vals {
			if json.Valid([]byte(v)) {
				out[id] = append(out[id], json.RawMessage(v))
			} else {
				s.n.log.Error("cluster: a call in Redis is not JSON; ignored", "key", s.key(id))
			}
		}
	}
	return out, nil
}
