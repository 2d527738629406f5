package app

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"

	"github.com/sbc-project/sbc/b2bua"
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
