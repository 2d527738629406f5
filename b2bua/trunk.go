package b2bua

import (
	"context"
	"fmt"
	"net/netip"
	"strconv"
	"time"

	"github.com/sbc-project/sbc/b2bua/outcome"
	"github.com/sbc-project/sbc/b2bua/routing"
	"github.com/sbc-project/sbc/b2bua/sipmsg"
	"github.com/sbc-project/sbc/b2bua/transport"
)

// trunkTarget is where requests to tr go: the address its host resolves to
// now, its transport and, for TLS, the name the trunk's certificate must
// carry (the host of its URI, also sent as SNI) and the trunk's own CA
// bundle and client certificate. Calls, OPTIONS probes and relayed
// REGISTERs all reach a trunk through it, so they verify it alike.
func trunkTarget(ctx context.Context, tr *routing.Trunk) (transport.Target, error) {
	addr, err := tr.Addr(ctx)
	if err != nil {
		return transport.Target{}, err
	}
	kind, err := transport.ParseKind(tr.Transport)
	if err != nil {
		return transport.Target{}, fmt.Errorf("trunk %q: %w", tr.Name, err)
	}
	return transport.Target{
		Kind: kind,
		Addr: netip.AddrPortFrom(addr.Addr().Unmap(), addr.Port()),
		Host: tr.Host,
		TLS:  tr.TLS,
	}, nil
}

// failTLS answers A when the last trunk could not be reached because its
// TLS handshake failed (its certificate not valid for its name or from an
// unknown CA, or a client certificate missing): 503, and a CDR whose
// hangup_cause says so. The details are in the log, not in the answer.
func (c *Call) failTLS() {
	c.fail(outcome.CauseTrunkTLSFailed,
		sipmsg.Generic("Retry-After", strconv.Itoa(int(c.s.cfg.RetryAfter/time.Second))),
		sipmsg.Generic("Warning", `399 sbc "TLS handshake with the trunk failed"`))
}
