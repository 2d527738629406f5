package cluster

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"sync/atomic"
	"time"
)

// TakeoverHook runs the operator's takeover command
// (cluster.takeover_command): before a node restores a dead peer's calls,
// the command moves the dead node's service address here (a cloud
// provider's floating IP API, or `ip addr add` where keepalived does not
// do it itself). Its Run is a ReplicaSpec.Takeover.
type TakeoverHook struct {
	Command []string          // program and arguments, no shell; empty runs nothing
	Timeout time.Duration     // the command is killed past it (0: 10 s)
	Self    string            // this node's id (SBC_NODE_ID)
	Addrs   map[string]string // node id → service address (SBC_SERVICE_ADDR); nil: not set
	Log     *slog.Logger

	runs, failures atomic.Uint64
}

// takeoverOutput bounds the command's output kept for the log.
const takeoverOutput = 4096

// Run runs the command for the dead node, with SBC_DEAD_NODE,
// SBC_NODE_ID and SBC_SERVICE_ADDR in its environment, bounded by the
// timeout (a child that keeps the command's output open does not hold it
// longer). A failure (exit status, timeout, no such program) is logged
// with the command's output, counted, and returned.
func (h *TakeoverHook) Run(ctx context.Context, dead string) error {
	if len(h.Command) == 0 {
		return nil
	}
	h.runs.Add(1)
	timeout := h.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, h.Command[0], h.Command[1:]...)
	cmd.Env = append(os.Environ(), "SBC_DEAD_NODE="+dead, "SBC_NODE_ID="+h.Self, "SBC_SERVICE_ADDR="+h.Addrs[dead])
	out := &limitedBuffer{max: takeoverOutput}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.WaitDelay = time.Second // a child that keeps the output open does not hold Run
	start := time.Now()
	err := cmd.Run()
	log := h.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("timed out after %s: %w", timeout, err)
		}
		h.failures.Add(1)
		log.Error("cluster: takeover command failed", "dead_node", dead, "service_addr", h.Addrs[dead],
			"err", err, "output", out.String())
		return fmt.Errorf("takeover command for node %s: %w", dead, err)
	}
	log.Info("cluster: takeover command done", "dead_node", dead, "service_addr", h.Addrs[dead],
		"ms", time.Since(start).Milliseconds(), "output", out.String())
	return nil
}

// Counts returns how many times the command ran and how many of those
// failed.
func (h *TakeoverHook) Counts() (runs, failures uint64) { return h.runs.Load(), h.failures.Load() }

// limitedBuffer keeps the first max bytes written to it.
type limitedBuffer struct {
	bytes.Buffer
	max int
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if room := b.max - b.Len(); room > 0 {
		b.Buffer.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}
