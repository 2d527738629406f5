package main

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"sync"
	"sync/atomic"
	"time"
)

// caller is one call of either mode as the runner drives it.
type caller interface {
	// sendFrame sends the next 20 ms audio packet; only the pacer calls it.
	sendFrame(now time.Time)
	// hangup sends BYE if the call was answered.
	hangup(ctx context.Context, timeout time.Duration) error
	// close releases sockets and goroutines.
	close()
	stats() *base
}

// base is what both kinds of call share: the dialog, the timings and the
// RTP stream state.
type base struct {
	d        *dialog
	answered bool
	setup    time.Duration // INVITE sent to 200 received
	ice      time.Duration // 200 received to ICE connected (WebRTC)
	dtls     time.Duration // ICE connected to DTLS connected (WebRTC)
	sent     atomic.Int64  // RTP packets the caller sent
	recv     atomic.Int64  // RTP packets the caller received
	echo     *echoStats    // the same call at the echo

	// the outgoing stream; pacer goroutine only
	start time.Time
	frame int64
	seq   uint16
	index uint32 // packets sent so far, written into each payload
	ts0   uint32
	ssrc  uint32
}

func (b *base) stats() *base { return b }

// nextFrame returns the sequence number, timestamp and index of the next
// packet: the sequence number counts packets, the timestamp counts the
// 20 ms frames elapsed since the first packet (a late tick advances it by
// the time that passed, as a real sender's clock does), and the index
// (from 0) goes in the payload.
func (b *base) nextFrame(now time.Time) (uint16, uint32, uint32) {
	if b.start.IsZero() {
		var r [10]byte
		_, _ = rand.Read(r[:])
		b.start, b.frame = now, -1
		b.seq = binary.BigEndian.Uint16(r[0:])
		b.ts0 = binary.BigEndian.Uint32(r[2:])
		b.ssrc = binary.BigEndian.Uint32(r[6:])
	}
	f := int64(now.Sub(b.start) / frameInterval)
	if f <= b.frame {
		f = b.frame + 1
	}
	b.frame = f
	b.seq++
	b.index++
	return b.seq, b.ts0 + uint32(f)*pcmuFrame, b.index - 1
}

const frameInterval = 20 * time.Millisecond

// callerTx counts every RTP packet the callers sent.
var callerTx atomic.Int64

// pacer sends every call's packets from a few goroutines, one ticker per
// batch of calls rather than one timer per call.
type pacer struct {
	batchSize int
	on        atomic.Bool
	stop      chan struct{}
	wg        sync.WaitGroup

	mu      sync.Mutex
	current *batch
}

type batch struct {
	mu    sync.Mutex
	calls []caller
}

func newPacer(batchSize int) *pacer {
	p := &pacer{batchSize: max(batchSize, 1), stop: make(chan struct{})}
	p.on.Store(true)
	return p
}

// add starts sending c's packets at the next tick of its batch.
func (p *pacer) add(c caller) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.current == nil || len(p.current.calls) >= p.batchSize {
		b := &batch{}
		p.current = b
		p.wg.Go(func() { p.run(b) })
	}
	p.current.mu.Lock()
	p.current.calls = append(p.current.calls, c)
	p.current.mu.Unlock()
}

func (p *pacer) run(b *batch) {
	t := time.NewTicker(frameInterval)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case now := <-t.C:
			if !p.on.Load() {
				continue
			}
			b.mu.Lock()
			calls := b.calls
			b.mu.Unlock()
			for _, c := range calls {
				c.sendFrame(now)
			}
		}
	}
}

// silence stops sending; close stops the goroutines.
func (p *pacer) silence() { p.on.Store(false) }

func (p *pacer) close() {
	close(p.stop)
	p.wg.Wait()
}
