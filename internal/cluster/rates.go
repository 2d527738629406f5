package cluster

import (
	"context"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sbc-project/sbc/policy"
)

// RateSource is the node's policy chain: its rate-limit stage's tokens.
type RateSource interface {
	ShareRates()
	RateTaken() []policy.RateTaken
	RateDrain([]policy.RateTaken)
}

// RateShare limits a source spread over the cluster as one: each
// interval a node publishes the tokens its sources took (channel
// <prefix>rate: a line with the node's id, then "ip kind n" per source
// and bucket), and every peer takes them from its own buckets.
//
// Error bound: a node learns of its peers' tokens within an interval plus
// a round trip, and each node's bucket of a source starts full. So over
// any window of T seconds a source spread over N nodes gets at most
// N × burst + rate × T + (N − 1) × rate × interval requests through,
// against burst + rate × T on one node, and N times that without
// sharing. With Redis unreachable the tokens are not shared and each node
// limits alone.
type RateShare struct {
	n        *Node
	src      RateSource
	interval time.Duration
	lastBad  atomic.Int64 // Unix ns of the last bad message logged
}

// ShareRates wires the chain's rate limits to the cluster.
func ShareRates(n *Node, src RateSource, interval time.Duration) *RateShare {
	if interval <= 0 {
		interval = DefaultCountsInterval
	}
	src.ShareRates()
	return &RateShare{n: n, src: src, interval: interval}
}

// Run publishes and applies until ctx ends.
func (s *RateShare) Run(ctx context.Context) {
	key := s.n.Key("rate")
	sub := s.n.Client().Subscribe(ctx, key)
	defer sub.Close()
	msgs := sub.Channel(redis.WithChannelSize(1024))
	t := time.NewTicker(s.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case m, ok := <-msgs:
			if !ok {
				return
			}
			s.received(m.Payload)
		case <-t.C:
			s.publish(ctx, key)
		}
	}
}

func (s *RateShare) publish(ctx context.Context, key string) {
	taken := s.src.RateTaken()
	if len(taken) == 0 || !s.n.RedisUp() {
		return // nothing taken, or nowhere to say it: each node limits alone
	}
	var b strings.Builder
	b.WriteString(s.n.ID())
	for _, t := range taken {
		b.WriteByte('\n')
		b.WriteString(t.Src.String())
		b.WriteByte(' ')
		b.WriteString(strconv.Itoa(int(t.Kind)))
		b.WriteByte(' ')
		b.WriteString(strconv.Itoa(t.N))
	}
	cctx, cancel := context.WithTimeout(ctx, s.n.spec.WriteTimeout)
	defer cancel()
	if err := s.n.Client().Publish(cctx, key, b.String()).Err(); err != nil {
		s.n.observe(ctx, err)
	}
}

// received applies a peer's tokens.
func (s *RateShare) received(payload string) {
	node, rest, _ := strings.Cut(payload, "\n")
	if node == s.n.ID() {
		return
	}
	taken, ok := parseTaken(rest)
	if !ok || node == "" {
		s.logBad(payload)
	}
	s.src.RateDrain(taken)
}

// parseTaken reads "ip kind n" lines; ok is false if any does not parse
// (the others are returned).
func parseTaken(lines string) (out []policy.RateTaken, ok bool) {
	ok = true
	for line := range strings.SplitSeq(lines, "\n") {
		f := strings.Fields(line)
		if len(f) != 3 {
			ok = false
			continue
		}
		ip, err1 := netip.ParseAddr(f[0])
		kind, err2 := strconv.Atoi(f[1])
		n, err3 := strconv.Atoi(f[2])
		if err1 != nil || err2 != nil || err3 != nil || kind < 0 || kind >= policy.RateKinds || n <= 0 {
			ok = false
			continue
		}
		out = append(out, policy.RateTaken{Src: ip, Kind: uint8(kind), N: n})
	}
	return out, ok
}

// logBad logs an unreadable message at most once a minute.
func (s *RateShare) logBad(payload string) {
	now := time.Now().UnixNano()
	last := s.lastBad.Load()
	if now-last < int64(time.Minute) || !s.lastBad.CompareAndSwap(last, now) {
		return
	}
	s.n.log.Error("cluster: unreadable rate-limit tokens from a peer; the readable lines applied", "channel", s.n.Key("rate"), "payload", truncate(payload, 200))
}
