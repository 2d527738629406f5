package poll

import "time"

// epoch is the origin of Monotonic.
var epoch = time.Now()

// Monotonic is the process's monotonic clock in ns, the Config.Clock of
// the media's loops, so that a packet's arrival time read once per
// wake-up (Batch.Now) means the same in every package that relays it.
func Monotonic() int64 { return int64(time.Since(epoch)) }
