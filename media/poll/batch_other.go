//go:build !linux

package poll

// Batch is a poll loop's send queue on Linux. Off Linux there are no
// loops and no batch is ever made: every *Batch is nil.
type Batch struct{}

// Scratch returns nil: there is no batch to hold a packet.
func (*Batch) Scratch() []byte { return nil }

// Now returns 0: there is no loop.
func (*Batch) Now() int64 { return 0 }

// Engine is the poll engine on Linux; off Linux none is ever made.
type Engine struct{}
