package b2bua

import (
	"net/netip"

	"github.com/sbc-project/sbc/b2bua/transport"
	"github.com/sbc-project/sbc/b2bua/trunkreg"
)

// TrunkRegistrations returns a manager of the registrations the SBC keeps
// at trunks, sending through this server's transaction layer with the
// Contact and Via of its listeners. The caller drives it (Apply, Close);
// close it before the server, so its de-REGISTERs still go out.
func (s *Server) TrunkRegistrations(cfg trunkreg.Config, onChange func(trunkreg.Status)) *trunkreg.Manager {
	if cfg.UserAgent == "" {
		cfg.UserAgent = s.cfg.UserAgent
	}
	return trunkreg.New(cfg, trunkreg.Deps{
		Tx: s.tx,
		Host: func(k transport.Kind, dst netip.Addr) (string, uint16, error) {
			return s.hostFor(k, netip.AddrPort{}, dst)
		},
		Log:      s.log.With("part", "trunkreg"),
		OnChange: onChange,
	})
}
