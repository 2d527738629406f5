package app

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/sbc-project/sbc/b2bua"
	"github.com/sbc-project/sbc/internal/admin"
	"github.com/sbc-project/sbc/internal/cluster"
	"github.com/sbc-project/sbc/internal/config"
	"github.com/sbc-project/sbc/media"
)

// Calls that survive their node (cluster.replicate_calls, issue 19): the
// B2BUA hands each answered call's state to the cluster's CallReplica,
// which keeps it in Redis and, on a peer's death, claims the peer's calls,
// runs cluster.takeover_command and restores them through the B2BUA
// (Server.Restore) and the media manager (Manager.Restore).

// newReplica makes the call replica when the config asks for it; nil
// otherwise (a single node, or a cluster that does not replicate calls).
func (a *App) newReplica(cfg *config.Config) *cluster.CallReplica {
	if a.cluster == nil || !cfg.Cluster.ReplicateCalls {
		return nil
	}
	c := cfg.Cluster.WithDefaults()
	spec := cluster.ReplicaSpec{Restore: a.restoreCall}
	if len(c.TakeoverCommand) > 0 {
		spec.Takeover = takeoverCommand(c, cfg.NodeID)
	}
	return cluster.ReplicateCalls(a.cluster, spec)
}

// takenOver is the CDR journal's question at start (cdr.Config.TakenOver):
// which calls this node left up at its death peers took over; nil when
// calls are not replicated.
func (a *App) takenOver(cfg *config.Config) func() (map[string]bool, error) {
	if a.cluster == nil || !cfg.Cluster.ReplicateCalls {
		return nil
	}
	return cluster.TakenOver(a.cluster)
}

// replicator is the B2BUA's Replicate hook: nil (an interface without a
// value) when calls are not replicated.
func (a *App) replicator() b2bua.Replicator {
	if a.replica == nil {
		return nil
	}
	return a.replica
}

// restoreCall continues a call another node left.
func (a *App) restoreCall(state []byte, from string) error {
	return a.server.Restore(state, from)
}

// restoreMedia opens a restored call's media session from the state its
// node replicated (media.Session.ReplicaState).
func (a *App) restoreMedia(_ string, state []byte) (b2bua.MediaSession, error) {
	if len(state) == 0 {
		return nil, errors.New("no media state replicated")
	}
	s, err := a.media.RestoreJSON(state)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// A media session hands its state over as the B2BUA replicates it.
var _ b2bua.MediaReplica = (*media.Session)(nil)

// takeoverCommand runs cluster.takeover_command, bounded by
// cluster.takeover_timeout, with the dead node's id in SBC_DEAD_NODE.
func takeoverCommand(c config.Cluster, self string) func(context.Context, string) error {
	return func(ctx context.Context, dead string) error {
		ctx, cancel := context.WithTimeout(ctx, c.TakeoverTimeout)
		defer cancel()
		cmd := exec.CommandContext(ctx, c.TakeoverCommand[0], c.TakeoverCommand[1:]...)
		cmd.Env = append(os.Environ(), "SBC_DEAD_NODE="+dead, "SBC_NODE_ID="+self)
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("cluster.takeover_command %s: %w: %s", c.TakeoverCommand[0], err, strings.TrimSpace(string(out)))
		}
		return nil
	}
}

// Migrate is a drain that hands every call over to the cluster at once
// (POST /api/v1/drain?migrate=true), for an upgrade: new calls get 503,
// the calls up are let go without BYE or record (b2bua Server.Abandon)
// with their last states written to Redis, and Drained closes, so the
// sbc command closes the App, whose node leaves the cluster: a peer takes
// the calls over at its next heartbeat, runs cluster.takeover_command
// and restores them, as after a crash but without waiting for
// cluster.node_ttl. It refuses, changing nothing, when calls are not
// replicated or Redis does not answer; its error after the hand-over
// says Redis did not take the calls' last states (their earlier ones
// are there, as after a crash).
func (a *App) Migrate() (admin.DrainStatus, error) {
	if a.replica == nil {
		return admin.DrainStatus{}, errors.New("cluster.replicate_calls is off: no peer can take the calls over")
	}
	if !a.cluster.RedisUp() {
		return admin.DrainStatus{}, errors.New("redis unreachable: no peer could take the calls over")
	}
	a.ops.drainMu.Lock()
	defer a.ops.drainMu.Unlock()
	st := admin.DrainStatus{Draining: true, Deadline: time.Now().UTC()}
	if a.ops.migrated {
		return st, nil
	}
	a.ops.migrated, a.ops.draining = true, true
	a.server.Drain(true)
	a.metrics.SetDraining(true)
	n := a.server.ActiveCalls()
	a.server.Abandon()
	ctx, cancel := context.WithTimeout(context.Background(), DrainTimeout)
	err := a.replica.HandOver(ctx)
	cancel()
	a.log.Warn("drain with migration: calls handed over to the cluster; stopping", "calls", n, "err", err)
	a.endDrain()
	return st, err
}
