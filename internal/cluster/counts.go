package cluster

import (
	"context"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sbc-project/sbc/policy"
)

// CountSource is the node's admission stage (policy.Admission).
type CountSource interface {
	Local() (policy.Counts, uint64)
	SetOthers(*policy.Counts)
}

// DefaultCountsInterval is how often a node writes its calls in progress
// (when they changed) and reads its peers'.
const DefaultCountsInterval = 100 * time.Millisecond

// CountShare makes admission limits hold across the cluster: each node
// writes its calls in progress per limit key to its own hash
// (<prefix>adm:<id>, expiring with the node's entry) when they change,
// and reads every peer's each interval; the admission stage adds the sum
// of its peers' to its own.
//
// Error bound: a call a node admits counts on its peers within two
// intervals plus a round trip (250 ms at the default 100 ms). Calls
// arriving on different nodes within that window for the same key may
// together pass a limit, by at most what each other node admitted in the
// window. Calls arriving further apart are limited exactly. With Redis
// unreachable the peers' counts are forgotten and each node limits on its
// own counts: no call is refused on stale data.
type CountShare struct {
	n        *Node
	src      CountSource
	interval time.Duration

	mu        sync.Mutex
	badLogged map[string]time.Time // key → when its bad data was last logged
}

// ShareCounts wires the admission stage to the cluster; Run does the work.
func ShareCounts(n *Node, src CountSource, interval time.Duration) *CountShare {
	if interval <= 0 {
		interval = DefaultCountsInterval
	}
	return &CountShare{n: n, src: src, interval: interval, badLogged: map[string]time.Time{}}
}

// Run writes and reads until ctx ends, then deletes this node's counts.
func (s *CountShare) Run(ctx context.Context) {
	t := time.NewTicker(s.interval)
	defer t.Stop()
	var written uint64
	var wroteAt time.Time
	first := true
	for {
		select {
		case <-ctx.Done():
			s.leave()
			return
		case <-t.C:
		}
		local, v := s.src.Local()
		// Rewrite when the counts moved, and each heartbeat anyway to
		// keep the hash alive (it expires with the node's entry).
		if first || v != written || time.Since(wroteAt) >= s.n.spec.Heartbeat {
			if err := s.write(ctx, local); err != nil {
				s.src.SetOthers(nil)
				continue
			}
			written, wroteAt, first = v, time.Now(), false
		}
		others, err := s.read(ctx)
		if err != nil {
			s.src.SetOthers(nil)
			continue
		}
		s.src.SetOthers(others)
	}
}

func (s *CountShare) key(id string) string { return s.n.Key("adm:" + id) }

// write replaces this node's hash with c.
func (s *CountShare) write(ctx context.Context, c policy.Counts) error {
	key := s.key(s.n.ID())
	args := []any{"total", c.Total}
	for k, v := range c.Trunks {
		args = append(args, "t:"+k, v)
	}
	for k, v := range c.Users {
		args = append(args, "u:"+k, v)
	}
	for k, v := range c.IPs {
		args = append(args, "i:"+k.String(), v)
	}
	cctx, cancel := context.WithTimeout(ctx, s.n.spec.WriteTimeout)
	defer cancel()
	_, err := s.n.Client().TxPipelined(cctx, func(p redis.Pipeliner) error {
		p.Del(cctx, key)
		p.HSet(cctx, key, args...)
		p.PExpire(cctx, key, s.n.spec.NodeTTL)
		return nil
	})
	if isWrongType(err) {
		s.logBad(key, "", err)
		return nil
	}
	if err != nil {
		s.n.observe(ctx, err)
	}
	return err
}

// read sums the counts of every other live node.
func (s *CountShare) read(ctx context.Context) (*policy.Counts, error) {
	cctx, cancel := context.WithTimeout(ctx, s.n.spec.ReadTimeout)
	defer cancel()
	ids, err := s.n.Client().ZRange(cctx, s.n.Key("nodes"), 0, -1).Result()
	if err != nil && !isWrongType(err) {
		s.n.observe(ctx, err)
		return nil, err
	}
	sum := &policy.Counts{Trunks: map[string]int{}, Users: map[string]int{}, IPs: map[netip.Addr]int{}}
	var peers []string
	for _, id := range ids {
		if id != s.n.ID() {
			peers = append(peers, id)
		}
	}
	if len(peers) == 0 {
		return sum, nil
	}
	cmds, err := s.n.Client().Pipelined(cctx, func(p redis.Pipeliner) error {
		for _, id := range peers {
			p.HGetAll(cctx, s.key(id))
		}
		return nil
	})
	if err != nil && !isWrongType(err) {
		s.n.observe(ctx, err)
		return nil, err
	}
	for i, id := range peers {
		fields, err := cmds[i].(*redis.MapStringStringCmd).Result()
		if err != nil {
			s.logBad(s.key(id), "", err)
			continue
		}
		for f, v := range fields {
			if !addCount(sum, f, v) {
				s.logBad(s.key(id), f, nil)
			}
		}
	}
	return sum, nil
}

// maxCount is the largest count a node's hash may give for one key.
const maxCount = 1 << 24

// addCount adds one field of a node's hash to sum; false if it does not
// parse.
func addCount(sum *policy.Counts, field, value string) bool {
	n, err := strconv.Atoi(value)
	if err != nil || n < 0 || n > maxCount {
		return false // a count no node could hold: refuse it rather than every call
	}
	if field == "total" {
		sum.Total += n
		return true
	}
	kind, k, ok := strings.Cut(field, ":")
	if !ok || k == "" {
		return false
	}
	switch kind {
	case "t":
		sum.Trunks[k] += n
	case "u":
		sum.Users[k] += n
	case "i":
		ip, err := netip.ParseAddr(k)
		if err != nil {
			return false
		}
		sum.IPs[ip] += n
	default:
		return false
	}
	return true
}

// logBad logs bad data at key (and field) at most once a minute per key.
func (s *CountShare) logBad(key, field string, err error) {
	s.mu.Lock()
	last, seen := s.badLogged[key]
	now := time.Now()
	if seen && now.Sub(last) < time.Minute {
		s.mu.Unlock()
		return
	}
	if len(s.badLogged) > 1024 {
		clear(s.badLogged)
	}
	s.badLogged[key] = now
	s.mu.Unlock()
	s.n.log.Error("cluster: call counts in Redis do not parse; ignored", "key", key, "field", field, "err", err)
}

// leave deletes this node's counts at exit.
func (s *CountShare) leave() {
	ctx, cancel := context.WithTimeout(context.Background(), s.n.spec.WriteTimeout)
	defer cancel()
	_ = s.n.Client().Del(ctx, s.key(s.n.ID())).Err()
}
