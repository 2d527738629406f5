package poll

// Failer learns of a queued send that failed: the counters that took it
// as sent are corrected. tag and size are those given to Batch.Queue.
// Called on the loop's goroutine; it must not block.
type Failer interface {
	SendFailed(tag, size int)
}
