package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sbc-project/sbc/security"
)

// BanStore is the node's own bans (security.Bans).
type BanStore interface {
	OnChange(func(security.BanChange))
	Apply(security.BanEntry) error
	Lift(addr string) bool
	List() []security.BanEntry
}

// Ban sharing keys: the hash bans (address → sharedBan JSON) holds every
// ban in force in the cluster, for a node that joins or comes back; the
// channel bans carries each change as it is made, so peers apply it within
// the publish's round trip.
const (
	bansKey     = "bans"
	banQueue    = 4096             // changes waiting to be published
	banBatch    = 256              // changes published in one round trip
	bansSweepEv = 5 * time.Minute  // how often expired entries leave the hash
	bansTimeout = 10 * time.Second // bound of one resync or sweep
)

// sharedBan is a ban as it stands in Redis and on the channel.
type sharedBan struct {
	Node    string `json:"node"`
	Removed bool   `json:"removed,omitempty"`
	security.BanEntry
}

// BanShare keeps the node's bans and the cluster's the same: a ban made
// or lifted here is published, one made or lifted on a peer is applied
// here. A change that cannot be published (Redis down, queue full) is
// made good when Redis answers again: the node then reads every ban in
// Redis and writes back those it has that Redis lacks. A lift made while
// Redis was down is not replayed: the ban comes back from its peers
// until it ends or is lifted again.
type BanShare struct {
	n       *Node
	bans    BanStore
	out     chan sharedBan
	pushAll atomic.Bool // a change was lost: write every local ban
	Applied atomic.Uint64
	Lost    atomic.Uint64
}

// ShareBans wires bans to the cluster; Run does the work.
func ShareBans(n *Node, bans BanStore) *BanShare {
	s := &BanShare{n: n, bans: bans, out: make(chan sharedBan, banQueue)}
	bans.OnChange(s.changed)
	n.OnResync(s.resync)
	return s
}

// changed queues a local change without blocking the request path.
func (s *BanShare) changed(c security.BanChange) {
	select {
	case s.out <- sharedBan{Node: s.n.ID(), Removed: c.Removed, BanEntry: c.Entry}:
	default:
		s.Lost.Add(1)
		s.pushAll.Store(true)
	}
}

// Run publishes local changes and applies peers' until ctx ends.
func (s *BanShare) Run(ctx context.Context) {
	sub := s.n.Client().Subscribe(ctx, s.n.Key(bansKey))
	defer sub.Close()
	msgs := sub.Channel(redis.WithChannelSize(banQueue))
	sweep := time.NewTicker(bansSweepEv)
	defer sweep.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case c := <-s.out:
			s.publish(ctx, c)
		case m, ok := <-msgs:
			if !ok {
				return
			}
			s.received(m.Payload)
		case <-sweep.C:
			s.sweep(ctx)
		}
	}
}

// publish writes c and what else is queued in one round trip.
func (s *BanShare) publish(ctx context.Context, first sharedBan) {
	batch := []sharedBan{first}
	for len(batch) < banBatch {
		select {
		case c := <-s.out:
			batch = append(batch, c)
			continue
		default:
		}
		break
	}
	key := s.n.Key(bansKey)
	_, err := s.n.Client().Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, c := range batch {
			data, _ := json.Marshal(c)
			if c.Removed {
				p.HDel(ctx, key, c.Addr)
			} else {
				p.HSet(ctx, key, c.Addr, data)
			}
			p.Publish(ctx, key, data)
		}
		return nil
	})
	if err != nil && !isWrongType(err) {
		s.pushAll.Store(true) // the resync on Redis's return writes them
		s.n.observe(ctx, err)
		return
	}
	if isWrongType(err) {
		s.n.log.Error("cluster: bans not shared: a Redis key holds the wrong type", "key", key, "err", err)
	}
	if s.pushAll.Swap(false) {
		s.pushLocal(ctx, nil)
	}
}

// received applies a change a peer published.
func (s *BanShare) received(payload string) {
	var c sharedBan
	if err := json.Unmarshal([]byte(payload), &c); err != nil || c.Addr == "" {
		s.n.log.Error("cluster: unreadable ban change; ignored", "channel", s.n.Key(bansKey), "payload", truncate(payload, 200), "err", err)
		return
	}
	if c.Node == s.n.ID() {
		return
	}
	s.apply(c, "channel", s.n.Key(bansKey))
}

func (s *BanShare) apply(c sharedBan, where, key string) {
	if c.Removed {
		if s.bans.Lift(c.Addr) {
			s.Applied.Add(1)
		}
		return
	}
	if err := s.bans.Apply(c.BanEntry); err != nil {
		s.n.log.Error("cluster: ban from a peer refused", where, key, "node", c.Node, "err", err)
		return
	}
	s.Applied.Add(1)
}

// resync reads every ban in Redis, applies those in force and deletes the
// expired ones, then writes the local bans Redis lacks.
func (s *BanShare) resync(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, bansTimeout)
	defer cancel()
	remote, err := s.read(ctx)
	if err != nil {
		return
	}
	for _, c := range remote {
		s.apply(c, "key", s.n.Key(bansKey))
	}
	s.pushLocal(ctx, remote)
}

// read returns the bans in force in Redis by address, deleting the
// expired ones and logging (and leaving) those that do not parse.
func (s *BanShare) read(ctx context.Context) (map[string]sharedBan, error) {
	key := s.n.Key(bansKey)
	all, err := s.n.Client().HGetAll(ctx, key).Result()
	if isWrongType(err) {
		s.n.log.Error("cluster: bans not shared: a Redis key holds the wrong type", "key", key, "err", err)
		return nil, err
	}
	if err != nil {
		s.n.observe(ctx, err)
		return nil, err
	}
	now := time.Now()
	out := make(map[string]sharedBan, len(all))
	var expired []string
	for field, v := range all {
		var c sharedBan
		if err := json.Unmarshal([]byte(v), &c); err != nil || c.Addr != field {
			s.n.log.Error("cluster: unreadable ban in Redis; ignored", "key", key, "field", field, "err", err)
			continue
		}
		if c.Until != nil && !now.Before(*c.Until) {
			expired = append(expired, field)
			continue
		}
		out[field] = c
	}
	if len(expired) > 0 {
		s.n.Client().HDel(ctx, key, expired...)
	}
	return out, nil
}

// pushLocal writes the local bans that remote (nil: read it) lacks or
// holds ending sooner.
func (s *BanShare) pushLocal(ctx context.Context, remote map[string]sharedBan) {
	if remote == nil {
		var err error
		if remote, err = s.read(ctx); err != nil {
			s.pushAll.Store(true)
			return
		}
	}
	key := s.n.Key(bansKey)
	var args []any
	for _, e := range s.bans.List() {
		if r, ok := remote[e.Addr]; ok && !security.EndsLater(e.Until, r.Until) {
			continue
		}
		data, _ := json.Marshal(sharedBan{Node: s.n.ID(), BanEntry: e})
		args = append(args, e.Addr, data)
	}
	if len(args) == 0 {
		return
	}
	if err := s.n.Client().HSet(ctx, key, args...).Err(); err != nil && !errors.Is(err, context.Canceled) {
		s.pushAll.Store(true)
		s.n.log.Warn("cluster: local bans not written to Redis; retried when it answers", "key", key, "err", err)
	}
}

// sweep drops expired bans from the hash.
func (s *BanShare) sweep(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, bansTimeout)
	defer cancel()
	_, _ = s.read(ctx)
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}
