package cluster

import (
	"context"
	"net/netip"
	"net/url"
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
//
// With ShareCalls, the admission stage's per-user and per-trunk call
// rates (user_cps, trunk_cps) are shared the same way, on channel
// <prefix>cps ("u n user" or "t n trunk" lines, the name query-escaped),
// with the same bound for their rate and burst.
type RateShare struct {
	n        *Node
	src      RateSource
	calls    CallRateSource // nil: call rates stay per node
	interval time.Duration
	lastBad  atomic.Int64 // Unix ns of the last bad message logged
}

// CallRateSource is the node's admission stage: its call-rate tokens.
type CallRateSource interface {
	ShareCPS()
	CPSTaken() []policy.CPSTaken
	CPSDrain([]policy.CPSTaken)
}

// ShareCalls shares the admission stage's call rates too; call it before
// Run.
func (s *RateShare) ShareCalls(src CallRateSource) {
	src.ShareCPS()
	s.calls = src
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
	rateKey, cpsKey := s.n.Key("rate"), s.n.Key("cps")
	keys := []string{rateKey}
	if s.calls != nil {
		keys = append(keys, cpsKey)
	}
	sub := s.n.Client().Subscribe(ctx, keys...)
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
			if m.Channel == cpsKey {
				s.receivedCalls(m.Channel, m.Payload)
			} else {
				s.received(m.Channel, m.Payload)
			}
		case <-t.C:
			s.publish(ctx, rateKey, rateLines(s.src.RateTaken()))
			if s.calls != nil {
				s.publish(ctx, cpsKey, cpsLines(s.calls.CPSTaken()))
			}
		}
	}
}

// publish sends this node's id and lines on channel key.
func (s *RateShare) publish(ctx context.Context, key string, lines []string) {
	if len(lines) == 0 || !s.n.RedisUp() {
		return // nothing taken, or nowhere to say it: each node limits alone
	}
	msg := s.n.ID() + "\n" + strings.Join(lines, "\n")
	cctx, cancel := context.WithTimeout(ctx, s.n.spec.WriteTimeout)
	defer cancel()
	if err := s.n.Client().Publish(cctx, key, msg).Err(); err != nil {
		s.n.observe(ctx, err)
	}
}

func rateLines(taken []policy.RateTaken) []string {
	out := make([]string, 0, len(taken))
	for _, t := range taken {
		out = append(out, t.Src.String()+" "+strconv.Itoa(int(t.Kind))+" "+strconv.Itoa(t.N))
	}
	return out
}

func cpsLines(taken []policy.CPSTaken) []string {
	out := make([]string, 0, len(taken))
	for _, t := range taken {
		kind := "u"
		if t.Trunk {
			kind = "t"
		}
		out = append(out, kind+" "+strconv.Itoa(t.N)+" "+url.QueryEscape(t.Key))
	}
	return out
}

// received applies a peer's tokens.
func (s *RateShare) received(channel, payload string) {
	node, rest, _ := strings.Cut(payload, "\n")
	if node == s.n.ID() {
		return
	}
	taken, ok := parseTaken(rest)
	if !ok || node == "" {
		s.logBad(channel, payload)
	}
	s.src.RateDrain(taken)
}

// receivedCalls applies a peer's call-rate tokens.
func (s *RateShare) receivedCalls(channel, payload string) {
	node, rest, _ := strings.Cut(payload, "\n")
	if node == s.n.ID() {
		return
	}
	taken, ok := parseCPS(rest)
	if !ok || node == "" {
		s.logBad(channel, payload)
	}
	s.calls.CPSDrain(taken)
}

// parseCPS reads "u n user" and "t n trunk" lines; ok is false if any
// does not parse (the others are returned).
func parseCPS(lines string) (out []policy.CPSTaken, ok bool) {
	ok = true
	for line := range strings.SplitSeq(lines, "\n") {
		f := strings.Fields(line)
		if len(f) != 3 || (f[0] != "u" && f[0] != "t") {
			ok = false
			continue
		}
		n, err1 := strconv.Atoi(f[1])
		key, err2 := url.QueryUnescape(f[2])
		if err1 != nil || err2 != nil || n <= 0 || key == "" {
			ok = false
			continue
		}
		out = append(out, policy.CPSTaken{Trunk: f[0] == "t", Key: key, N: n})
	}
	return out, ok
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
func (s *RateShare) logBad(channel, payload string) {
	now := time.Now().UnixNano()
	last := s.lastBad.Load()
	if now-last < int64(time.Minute) || !s.lastBad.CompareAndSwap(last, now) {
		return
	}
	s.n.log.Error("cluster: unreadable rate-limit tokens from a peer; the readable lines applied", "channel", channel, "payload", truncate(payload, 200))
}
