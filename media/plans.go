package media

import (
	"sync"

	"github.com/sbc-project/sbc/media/rtpproc"
)

// Flow plans are shared. A plan is never changed once a flow holds it
// (signaling stores a new one), and calls that negotiate the same codecs
// have equal plans: a flowPlan is 288 bytes, two a stream, and each call
// used to keep its own, besides the initial plan of each new flow.

// initialPlan is every flow's plan until an answer applies one.
var initialPlan = &flowPlan{pt: rtpproc.IdentityPTMap(), eventPT: -1, outEvent: -1, clockRate: 8000, codec: "PCMU"}

// maxPlans bounds the distinct plans a manager keeps to share; past it a
// flow gets a plan of its own.
const maxPlans = 1024

// planCache holds one copy of each distinct plan sessions use.
type planCache struct {
	mu sync.Mutex
	m  map[flowPlan]*flowPlan
}

// intern returns the shared copy of p, adding it if there is room.
func (c *planCache) intern(p flowPlan) *flowPlan {
	c.mu.Lock()
	defer c.mu.Unlock()
	if q, ok := c.m[p]; ok {
		return q
	}
	q := &p
	if len(c.m) < maxPlans {
		if c.m == nil {
			c.m = make(map[flowPlan]*flowPlan)
		}
		c.m[p] = q
	}
	return q
}
