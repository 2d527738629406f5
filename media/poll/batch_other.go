//go:build !linux

package poll

// Batch is a poll loop's send queue on Linux. Off Linux there are no
// loops and no batch is ever made: every *Batch is nil.
type Batch struct{}

// Scratch returns nil: there is no batch to hold a packet.
func (*Batch) Scratch() []byte { return nil }

// Engine is the poll engine on Linux; off Linux none is ever made.
type Engine struct{}
