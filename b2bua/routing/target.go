package routing

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/sbc-project/sbc/b2bua/transport"
)

// Target is where requests to the trunk go: the address its host resolves
// to now, its transport and, for TLS, the name the trunk's certificate must
// carry (the host of its URI, also sent as SNI) and the trunk's own CA
// bundle and client certificate. Calls, OPTIONS probes and relayed
// REGISTERs all reach a trunk through it, so they verify it alike.
func (t *Trunk) Target(ctx context.Context) (transport.Target, error) {
	addr, err := t.Addr(ctx)
	if err != nil {
		return transport.Target{}, err
	}
	kind, err := transport.ParseKind(t.Transport)
	if err != nil {
		return transport.Target{}, fmt.Errorf("trunk %q: %w", t.Name, err)
	}
	return transport.Target{
		Kind: kind,
		Addr: netip.AddrPortFrom(addr.Addr().Unmap(), addr.Port()),
		Host: t.Host,
		TLS:  t.TLS,
	}, nil
}
