package app

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/sbc-project/sbc/b2bua"
	"github.com/sbc-project/sbc/b2bua/transport"
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
// limits, call rates and admission counts; Close stops them, which removes the node's entries.
func (a *App) runCluster(ctx context.Context) {
	if a.cluster == nil {
		return
	}
	if a.regShare != nil {
		a.wg.Go(func() { a.regShare.Run(ctx) })
	}
	if a.bans != nil {
		share := cluster.ShareBans(a.cluster, a.bans)
		a.wg.Go(func() { share.Run(ctx) })
	}
	rates := cluster.ShareRates(a.cluster, a.policy, 0)
	if adm := a.policy.Admission(); adm != nil {
		rates.ShareCalls(adm)
		counts := cluster.ShareCounts(a.cluster, adm, 0)
		a.wg.Go(func() { counts.Run(ctx) })
	}
	a.wg.Go(func() { rates.Run(ctx) })
	a.callShare = cluster.ShareCalls(a.cluster, a.localCallsJSON)
	a.wg.Go(func() { a.callShare.Run(ctx) })
	if a.replica != nil {
		a.wg.Go(func() { a.replica.Run(ctx) })
	}
	a.wg.Go(func() { a.cluster.Run(ctx) })
}

// localCallsJSON is this node's calls as its admin API shows them, for
// the other nodes' listings.
func (a *App) localCallsJSON() map[string][]byte {
	calls := adminCalls{a.server}.Calls()
	out := make(map[string][]byte, len(calls))
	for _, c := range calls {
		c.Node = a.cluster.ID()
		if data, err := json.Marshal(c); err == nil {
			out[c.ID] = data
		}
	}
	return out
}

// clusterCalls serves /api/v1/calls?scope=cluster: this node's calls as
// they are, the others' as their last heartbeat wrote them.
func (a *App) clusterCalls(ctx context.Context) ([]admin.Call, error) {
	calls := adminCalls{a.server}.Calls()
	for i := range calls {
		calls[i].Node = a.cluster.ID()
	}
	peers, err := a.callShare.Peers(ctx)
	if err != nil {
		return nil, err
	}
	for node, raws := range peers {
		for _, raw := range raws {
			var c admin.Call
			if err := json.Unmarshal(raw, &c); err != nil {
				continue
			}
			c.Node = node
			calls = append(calls, c)
		}
	}
	return calls, nil
}

// clusterStats feeds the cluster metrics.
func (a *App) clusterStats() metrics.ClusterStats {
	st := metrics.ClusterStats{RedisUp: a.cluster.RedisUp(), Failures: a.cluster.Failures()}
	if adm := a.policy.Admission(); adm != nil {
		st.PeerCalls = adm.OthersTotal()
	}
	return st
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

// listenCluster binds the TCP listener other nodes send SIP to.
func (a *App) listenCluster(cfg *config.Config) error {
	if a.cluster == nil {
		return nil
	}
	addr := cfg.Cluster.InternalAddr
	bound, err := a.server.Listen(config.ClusterListener, transport.TCP, addr, transport.ListenOptions{})
	if err != nil {
		if lerr := asListenError(err, "cluster.internal_addr", "the cluster listener", "tcp", addr); lerr != err {
			return lerr
		}
		return fmt.Errorf("cluster.internal_addr (tcp %s): %w", addr, err)
	}
	a.addrs[config.ClusterListener] = bound
	a.bound = append(a.bound, config.Listener{Name: config.ClusterListener, Transport: "tcp", Addr: addr})
	return nil
}

// clusterPeers is the B2BUA's view of the other nodes; nil on a single
// node.
func (a *App) clusterPeers(cfg *config.Config) b2bua.Peers {
	if a.cluster == nil {
		return nil
	}
	p := peers{signer: cluster.NewSigner(cfg.NodeID, cfg.Cluster.Secret)}
	if a.bindings != nil {
		p.regs = cluster.ShareRegistrations(a.cluster, a.bindings)
	}
	a.regShare = p.regs
	return p
}

// peers adapts internal/cluster to b2bua.Peers.
type peers struct {
	signer *cluster.Signer
	regs   *cluster.RegShare // nil without a registrar
}

func (peers) Listener() string { return config.ClusterListener }

func (peers) ProofHeader() string { return cluster.AuthHeader }

func (p peers) Verify(proof, callID, ruri string) error {
	_, err := p.signer.Verify(proof, callID, ruri)
	return err
}

func (p peers) Sign(callID, ruri string) string { return p.signer.Sign(callID, ruri) }

func (p peers) Bindings(ctx context.Context, aor, user string) []b2bua.PeerBinding {
	if p.regs == nil {
		return nil
	}
	var out []b2bua.PeerBinding
	for _, r := range p.regs.Bindings(ctx, aor, user) {
		out = append(out, b2bua.PeerBinding{Node: r.Node, Addr: r.Addr, Token: r.Token, AOR: r.AOR,
			Contact: r.Contact, Registered: r.Registered})
	}
	return out
}
