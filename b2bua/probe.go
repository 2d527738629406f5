package b2bua

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"github.com/ghettovoice/gosip/sip"

	"github.com/sbc-project/sbc/b2bua/routing"
	"github.com/sbc-project/sbc/b2bua/sipmsg"
	"github.com/sbc-project/sbc/b2bua/transport"
)

// Probe sends an OPTIONS to a trunk and waits for its answer: any final
// response but 408 and 503 proves the trunk alive (a 404 or 405 still
// means a SIP stack is there and answering). A trunk located through SRV
// is alive when any of its targets is, as calls fail over among them: each
// target in turn gets an equal share of what is left of ctx. It is a
// routing.Prober.
func (s *Server) Probe(ctx context.Context, tr *routing.Trunk) error {
	dsts, err := tr.Targets(ctx)
	if err != nil {
		return err
	}
	for i, dst := range dsts {
		pctx, cancel := ctx, context.CancelFunc(func() {})
		if deadline, ok := ctx.Deadline(); ok && i < len(dsts)-1 {
			pctx, cancel = context.WithTimeout(ctx, time.Until(deadline)/time.Duration(len(dsts)-i))
		}
		err = s.probeTarget(pctx, tr, dst)
		cancel()
		if err == nil || ctx.Err() != nil {
			return err
		}
	}
	return err
}

// probeTarget sends one OPTIONS to one of the trunk's targets.
func (s *Server) probeTarget(ctx context.Context, tr *routing.Trunk, dst transport.Target) error {
	host, port, err := s.hostFor(dst.Kind, netip.AddrPort{}, dst.Addr.Addr())
	if err != nil {
		return err
	}
	uri := sipURI(tr.RequestURI(tr.User))
	l := &leg{
		call:         &Call{s: s},
		callID:       sipmsg.NewToken(12),
		localTag:     sipmsg.NewToken(8),
		local:        &sip.Address{Uri: &sip.SipUri{FUser: sip.String{Str: "sbc"}, FHost: host, FUriParams: sipmsg.NewParams(), FHeaders: sipmsg.NewParams()}},
		remote:       &sip.Address{Uri: uri.Clone()},
		remoteTarget: uri,
		dst:          dst,
		viaHost:      host,
		viaPort:      port,
	}
	req := l.newRequest(sip.OPTIONS, "", "")
	tx, err := s.tx.Request(req, l.dst)
	if err != nil {
		return err
	}
	for {
		select {
		case res, ok := <-tx.Responses():
			if !ok {
				return fmt.Errorf("no answer to OPTIONS")
			}
			code := res.StatusCode()
			if code < 200 {
				continue
			}
			if code == 408 || code == 503 {
				return fmt.Errorf("OPTIONS answered %d %s", code, res.Reason())
			}
			return nil
		case <-ctx.Done():
			return fmt.Errorf("no answer to OPTIONS: %w", ctx.Err())
		}
	}
}
