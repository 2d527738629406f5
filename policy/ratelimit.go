package policy

import (
	"context"
	"net/netip"
	"time"
)

// Rate-limit causes, one per bucket.
const (
	causeRateRequests = "rate_requests"
	causeRateInvite   = "rate_invite"
	causeRateRegister = "rate_register"
)

// Bucket kinds, indexes into limitState.
const (
	bucketRequests = iota
	bucketInvite
	bucketRegister
	bucketCount
)

var bucketCauses = [bucketCount]string{causeRateRequests, causeRateInvite, causeRateRegister}

// rateLimit is the second stage: token buckets per source (an IPv4
// address or an IPv6 /64, see sourceKey) for every request, for new
// INVITEs and for REGISTERs. A source over a limit gets 503 with
// Retry-After for its first DropAfter refused requests since its bucket
// was last full; after that it is dropped without an answer until the
// bucket has refilled completely, so a flood earns no answers (we neither amplify it nor spend
// on it). ACK, CANCEL and in-dialog requests count only against the
// requests bucket: an established call is never refused because its
// source floods new calls. Exempt sources are not limited here (trunks
// have per-trunk limits under admission).
type rateLimit struct {
	cfg     RateLimitSpec
	buckets [bucketCount]Bucket
	exempt  func(netip.Addr) bool
	hit     func(src netip.Addr, transport string) // counts a refusal toward a ban
	clock   func() int64                           // monotonic nanoseconds
	sources *table[limitState]
	share   rateShare // tokens taken, for a cluster (ratelimit_shared.go)
}

// limitState is one source's buckets.
type limitState [bucketCount]bucketState

type bucketState struct {
	tokens float64
	last   int64 // clock() when tokens was computed
	excess int   // refusals since the bucket was last full; > DropAfter: silent
	used   bool  // false: never used, start full
}

func newRateLimit(cfg RateLimitSpec, exempt func(netip.Addr) bool, hit func(netip.Addr, string), clock func() int64) *rateLimit {
	return &rateLimit{
		cfg:     cfg,
		buckets: [bucketCount]Bucket{cfg.Requests, cfg.Invite, cfg.Register},
		exempt:  exempt, hit: hit, clock: clock,
		sources: newTable[limitState](cfg.MaxSources),
	}
}

// Check implements Stage.
func (l *rateLimit) Check(_ context.Context, r *Request) Decision {
	ip := r.Src.Addr().Unmap()
	if l.exempt(ip) {
		return Pass
	}
	var kinds [2]int
	n := 0
	if l.buckets[bucketRequests].Rate > 0 {
		kinds[n], n = bucketRequests, n+1
	}
	switch {
	case r.ToTag != "": // in dialog (re-INVITE too): requests only
	case r.Method == "INVITE" && l.buckets[bucketInvite].Rate > 0:
		kinds[n], n = bucketInvite, n+1
	case r.Method == "REGISTER" && l.buckets[bucketRegister].Rate > 0:
		kinds[n], n = bucketRegister, n+1
	}
	if n == 0 {
		return Pass
	}
	now := l.clock()
	refused, silent := -1, false
	l.sources.do(sourceKey(ip), func(st *limitState, _ bool) {
		for _, k := range kinds[:n] {
			if ok, quiet := l.take(&st[k], l.buckets[k], now); !ok {
				refused, silent = k, quiet
				return
			}
		}
	})
	if refused < 0 {
		l.share.record(ip, kinds[:n])
		return Pass
	}
	l.hit(ip, r.Transport)
	d := Decision{Action: Drop, Cause: bucketCauses[refused]}
	if !silent {
		d = Decision{Action: Answer, Code: 503, Reason: "Service Unavailable",
			RetryAfter: l.cfg.RetryAfter, Cause: bucketCauses[refused]}
	}
	return d
}

// refill adds the tokens earned since the bucket was last used; a
// bucket never used starts full.
func (l *rateLimit) refill(s *bucketState, b Bucket, now int64) {
	if !s.used {
		*s = bucketState{tokens: float64(b.Burst), last: now, used: true}
	}
	if elapsed := now - s.last; elapsed > 0 {
		s.tokens = min(float64(b.Burst), s.tokens+float64(elapsed)/float64(time.Second)*b.Rate)
		s.last = now
	}
}

// take refills b and takes one token. ok false: over the limit; quiet
// true: and past DropAfter, so say nothing.
func (l *rateLimit) take(s *bucketState, b Bucket, now int64) (ok, quiet bool) {
	l.refill(s, b, now)
	if s.tokens >= float64(b.Burst) {
		// A full bucket: the source has calmed down, its refusals are
		// forgiven. Nothing else resets them: a source that gets a token
		// now and then while flooding at a few times its rate must still
		// go silent after DropAfter refusals.
		s.excess = 0
	}
	if s.excess > l.cfg.DropAfter {
		// Silent until the bucket has refilled. Each ignored request still
		// costs a token (down to a debt of one burst), so the bucket fills
		// only once the source sends slower than the rate, not merely
		// because ignoring it is free.
		s.tokens = max(s.tokens-1, -float64(b.Burst))
		return false, true
	}
	if s.tokens >= 1 {
		s.tokens--
		return true, false
	}
	s.excess++
	return false, s.excess > l.cfg.DropAfter
}
