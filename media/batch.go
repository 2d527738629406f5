package media

import "github.com/sbc-project/sbc/media/poll"

// sendBatch is a poll loop's queue of sends (io_uring, Linux): a flow's
// packet read by a loop is queued in the loop's batch and sent with the
// others of its wake-up. Off Linux no flow has one.
type sendBatch = poll.Batch

// Tags of a queued send: which of a flow's counters it was counted in.
const (
	tagRTP = iota
	tagRTCP
)

// SendFailed takes back a queued send the kernel refused from the
// counters that took it as relayed, and counts it as a drop.
func (c *flowCounters) SendFailed(tag, size int) {
	if tag == tagRTCP {
		c.rtcpPackets.Add(^uint64(0))
		c.rtcpBytes.Add(-uint64(size))
	} else {
		c.packets.Add(^uint64(0))
		c.bytes.Add(-uint64(size))
	}
	c.dropped.Add(1)
}
