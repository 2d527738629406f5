package policy

import (
	"time"
)

// cpsBuckets are token buckets by key (user or trunk name) for the
// admission stage's call rates. Not safe for concurrent use: Admission
// holds its lock around every call.
//
// Memory is bounded by max keys. A bucket that has refilled completely
// tells nothing a new bucket would not, so when the map is full such idle
// buckets are dropped; if none is idle, the new key is refused (fail
// closed: more than max keys placing calls within one refill period is an
// attack or a misconfiguration, not traffic to serve).
type cpsBuckets struct {
	rate  float64
	burst float64
	max   int
	m     map[string]*cpsBucket
}

type cpsBucket struct {
	tokens float64
	last   time.Time
}

func newCPSBuckets(b Bucket, max int) *cpsBuckets {
	burst := float64(b.Burst)
	if burst < 1 {
		burst = 1
	}
	return &cpsBuckets{rate: b.Rate, burst: burst, max: max, m: make(map[string]*cpsBucket)}
}

// enabled reports whether the rate is limited at all.
func (c *cpsBuckets) enabled() bool { return c.rate > 0 }

// has refills key's bucket to now and reports whether it holds a token.
// A key it has no room for holds none.
func (c *cpsBuckets) has(key string, now time.Time) bool {
	b, ok := c.m[key]
	if !ok {
		if len(c.m) >= c.max && !c.sweep(now) {
			return false
		}
		b = &cpsBucket{tokens: c.burst, last: now}
		c.m[key] = b
	}
	if dt := now.Sub(b.last).Seconds(); dt > 0 {
		b.tokens = min(c.burst, b.tokens+dt*c.rate)
		b.last = now
	}
	return b.tokens >= 1
}

// take spends one token of key's bucket; call it only after has said yes.
func (c *cpsBuckets) take(key string) {
	if b, ok := c.m[key]; ok {
		b.tokens--
	}
}

// sweep drops the buckets that are full again by now and reports whether
// there is room for a new one.
func (c *cpsBuckets) sweep(now time.Time) bool {
	for k, b := range c.m {
		if b.tokens+now.Sub(b.last).Seconds()*c.rate >= c.burst {
			delete(c.m, k)
		}
	}
	return len(c.m) < c.max
}
