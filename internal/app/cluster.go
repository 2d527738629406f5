package app

import (
	"context"
	"strconv"

	"github.com/sbc-project/sbc/internal/admin"
	"github.com/sbc-project/sbc/internal/cluster"
	"github.com/sbc-project/sbc/internal/config"
	"github.com/sbc-project/sbc/internal/metrics"
)

// newCluster joins the cluster the config's cluster section names; nil
// without one (a single node, no Redis).
func (a *App) newCluster(cfg *config.Config) (*cluster.Node, error) {
	if !cfg.Cluster.Enabled() {
		return nil, nil
	}
	c := cfg.Cluster.WithDefaults()
	spec := cluster.Spec{NodeID: cfg.NodeID, Addrs: c.Redis.Addrs, Username: c.Redis.Username,
		Password: c.Redis.Password, DB: c.Redis.DB, KeyPrefix: c.Redis.KeyPrefix,
		InternalAddr: c.InternalAddr, Heartbeat: c.Heartbeat, NodeTTL: c.NodeTTL,
		DialTimeout: c.Redis.DialTimeout, ReadTimeout: c.Redis.ReadTimeout, WriteTimeout: c.Redis.WriteTimeout}
	if c.Redis.TLS {
		tc, err := cluster.TLSConfig(c.Redis.CAFile, c.Redis.ServerName)
		if err != nil {
			return nil, err
		}
		spec.TLS = tc
	}
	local := cluster.Local{
		Calls:    func() int { return a.server.ActiveCalls() },
		Draining: func() bool { return a.server.Draining() },
	}
	return cluster.New(spec, local, a.log.With("part", "cluster")), nil
}

// runCluster starts the node's heartbeat and the sharing of bans, rate
// limits and admission counts; Close stops them, which removes the node's entries.
func (a *App) runCluster(ctx context.Context) {
	if a.cluster == nil {
		return
	}
	if a.bans != nil {
		share := cluster.ShareBans(a.cluster, a.bans)
		a.wg.Go(func() { share.Run(ctx) })
	}
	rates := cluster.ShareRates(a.cluster, a.policy, 0)
	a.wg.Go(func() { rates.Run(ctx) })
	if adm := a.policy.Admission(); adm != nil {
		counts := cluster.ShareCounts(a.cluster, adm, 0)
		a.wg.Go(func() { counts.Run(ctx) })
	}
	a.wg.Go(func() { a.cluster.Run(ctx) })
}

// clusterStats feeds the cluster metrics.
func (a *App) clusterStats() metrics.ClusterStats {
	return metrics.ClusterStats{RedisUp: a.cluster.RedisUp(), Failures: a.cluster.Failures()}
}

// checkCluster is the readiness check of a cluster node: always passing
// (a node without Redis serves with its local state), its detail says
// whether Redis answers.
func (a *App) checkCluster() admin.Check {
	if a.cluster.RedisUp() {
		return admin.Check{Name: "cluster", OK: true, Detail: "redis up"}
	}
	return admin.Check{Name: "cluster", OK: true, Detail: "redis unreachable after " +
		strconv.FormatUint(a.cluster.Failures(), 10) + " failed heartbeats: serving with local state"}
}

// clusterStatus serves /api/v1/cluster.
func (a *App) clusterStatus(ctx context.Context) any { return a.cluster.Status(ctx) }
